"""Scoping an accepted request against the corpus: exact, near-duplicate, embedding and
claimed-source matches, lineage to versions and checkpoints, and the curator's review."""


import pytest

from attribution.services.influence import gradient_index_create
from provenance.models import DatasetVersion, Document
from provenance.services.training import training_run_create, training_run_execute
from takedowns.models import TakedownRequest
from takedowns.services.requests import takedown_decide, takedown_file
from takedowns.services.scoping import takedown_scope, takedown_scope_start
from tests.fixtures.scoping import file_and_accept, prose
from tests.helpers import TINY_MODEL, build_gradient_index

pytestmark = pytest.mark.django_db


def test_scoping_finds_the_work_its_near_duplicate_and_a_claimed_source(corpus):
    request = file_and_accept(corpus, claimed_sources=[corpus["extra"]])
    done = takedown_scope(request_id=request.pk)
    matches = {(m.document.text, m.method): m.score for m in done.matches.select_related(
        "document")}
    assert matches[(corpus["work"], "exact")] == 1.0
    assert 0.5 <= matches[(corpus["variant"], "near_duplicate")] < 1.0
    assert matches[(corpus["variant"], "embedding")] > 0.9
    claimed = {t for (t, m) in matches if m == "source"}
    assert claimed == set(Document.objects.filter(occurrences__source=corpus["extra"])
                          .values_list("text", flat=True))
    unrelated = {t for (t, _) in matches} - {corpus["work"], corpus["variant"]} - claimed
    assert not unrelated
    assert done.scope["versions"][0]["id"] == corpus["version"].pk
    assert [c["id"] for c in done.scope["checkpoints"]] == [corpus["checkpoint"].pk]
    assert done.scope["job"]["state"] == "done"
    assert takedown_scope(request_id=request.pk) is None  # a late duplicate of the task
    # Scoping again (staff) replaces the unreviewed matches with the same ones.
    takedown_scope_start(request=request, actor=corpus["users"]["curator"])
    assert takedown_scope(request_id=request.pk).matches.count() == done.matches.count()


def test_scoping_finds_a_quoted_passage_through_the_span_index_and_nothing_else(
        users, make_source, ingest_texts, publish_version):
    from attribution.services.spans import span_index_build, span_index_create

    work = prose(7, 90)
    passage = " ".join(work.split()[20:70])
    quoting = f"{prose(400, 80)} {passage} {prose(401, 80)}"  # a long quote in a longer text
    ingest_texts(make_source(owner=users["holder_a"].rights_holder), [prose(8)])
    ingest_texts(make_source(name="quotes"), [quoting] + [prose(500 + i) for i in range(6)])
    version = publish_version("quoted")
    run = training_run_execute(run_id=training_run_create(
        version=version, actor=None, enqueue=False, config={**TINY_MODEL, "epochs": 1}).pk)
    index = span_index_build(index_id=span_index_create(version=version, checkpoint=run.checkpoint,
                                                        actor=None, enqueue=False).pk)
    assert index.state == "succeeded", index.error
    request = takedown_file(actor=users["holder_a"], data={
        "legal_basis": "voluntary", "claimant_name": "Ann", "claimant_email": "a@a.example",
        "works": [{"title": "Quoted", "sample_text": work}]})
    takedown_decide(request=request, actor=users["curator"], to="accepted")
    done = takedown_scope(request_id=takedown_scope_start(request=request,
                                                          actor=users["curator"]).pk)
    found = {(m.document.text, m.method): m.score for m in done.matches.select_related(
        "document")}
    assert set(found) == {(quoting, "verbatim_span")}  # too short a share for MinHash
    assert 0.4 < found[(quoting, "verbatim_span")] < 0.7  # 50 of 90 words


def test_a_curators_review_is_kept_when_scoping_runs_again_and_shapes_the_lineage(
        corpus, client_as):
    request = file_and_accept(corpus)
    takedown_scope(request_id=request.pk)
    work = Document.objects.get(text=corpus["work"])
    variant = Document.objects.get(text=corpus["variant"])
    url = f"/api/v1/takedowns/{request.pk}/"
    curator = client_as("curator")
    both = curator.post(f"{url}review-scope/", {"confirm": [work.pk], "dismiss": [work.pk]},
                        format="json")
    assert both.status_code == 400 and "both" in str(both.json())
    reviewed = curator.post(f"{url}review-scope/", {"confirm": [work.pk],
                                                     "dismiss": [variant.pk]}, format="json")
    assert reviewed.status_code == 200
    assert reviewed.json()["scope"]["documents"] == 1
    takedown_scope(request_id=request.pk)
    rows = {(m.document_id, m.method): m.confirmed
            for m in TakedownRequest.objects.get(pk=request.pk).matches.all()}
    assert rows[(work.pk, "exact")] is True and rows[(variant.pk, "near_duplicate")] is False
    listed = curator.get(f"{url}matches/").json()
    assert listed["count"] == len(rows)
    assert client_as("holder_a").post(f"{url}review-scope/", {"confirm": []},
                                      format="json").status_code == 403


def test_a_rights_holder_cannot_claim_another_holders_source(corpus, client_as, make_source):
    foreign = make_source(name="someone else's")
    answer = client_as("holder_a").post("/api/v1/takedowns/", {
        "legal_basis": "voluntary", "claimant_name": "Ann", "claimant_email": "a@a.example",
        "works": [{"title": "All of it", "sample_text": "x"}],
        "claimed_sources": [foreign.pk]}, format="json")
    assert answer.status_code == 400 and "claimed_sources" in answer.json()
    assert not TakedownRequest.objects.exists()


def test_remediation_tombstones_the_confirmed_documents_and_publishes_a_version_without_them(
        corpus, client_as):
    index = build_gradient_index(gradient_index_create(checkpoint=corpus["checkpoint"],
                                                       actor=None, enqueue=False))
    assert index.state == "succeeded", index.error
    request = file_and_accept(corpus)
    takedown_scope(request_id=request.pk)
    url = f"/api/v1/takedowns/{request.pk}/"
    curator = client_as("curator")
    early = curator.post(f"{url}remediate-data/", {}, format="json")
    assert early.status_code == 400 and "not reviewed" in str(early.json())
    work = Document.objects.get(text=corpus["work"])
    variant = Document.objects.get(text=corpus["variant"])
    curator.post(f"{url}review-scope/", {"confirm": [work.pk], "dismiss": [variant.pk]},
                 format="json")
    done = curator.post(f"{url}remediate-data/", {"purge_text": True}, format="json")
    assert done.status_code == 200, done.json()
    body = done.json()
    assert body["state"] == "data_remediated"
    work.refresh_from_db()
    variant.refresh_from_db()
    # The models are to be remediated too (remedy "both"): the erasure waits for the decision,
    # since unlearning and its verification read the text.
    assert work.removed_at and not work.text_purged
    assert body["scope"]["remediation"]["purge_pending"] is True
    assert variant.removed_at is None  # dismissed: untouched
    [change] = body["scope"]["remediation"]["versions"]
    old = corpus["version"]
    new = DatasetVersion.objects.get(pk=change["to"])
    assert new.parent_id == old.pk and new.state == "published"
    assert new.document_count == old.document_count - 1
    assert change["diff"]["removed"]["total"] == 1 and change["diff"]["added"]["total"] == 0
    assert not new.members.filter(document=work).exists()
    assert new.exclusions.get(document=work).reason == "tombstoned"
    assert body["scope"]["remediation"]["gradient_indexes"] == [{"index": index.pk,
                                                                  "generation": 2}]
    index.refresh_from_db()
    assert index.removed == [work.pk]
    again = curator.post(f"{url}remediate-data/", {}, format="json")
    assert again.status_code == 409  # done once


def test_a_dmca_counter_notice_opens_the_restore_window_and_restoring_brings_the_work_back(
        corpus, client_as, django_capture_on_commit_callbacks):
    from datetime import date

    from django.core import mail

    from takedowns.services.counter import takedown_restore

    index = build_gradient_index(gradient_index_create(checkpoint=corpus["checkpoint"],
                                                       actor=None, enqueue=False))
    request = file_and_accept(corpus, data={
        "legal_basis": "dmca_512", "authority": "owner", "postal_address": "1 Quay St",
        "signature": "Ann", "works": [{"title": "Tide", "sample_text": corpus["work"],
                                       "urls": ["https://a.example/tide"]}],
        "statements": {"good_faith": True, "accuracy": True, "authority_under_perjury": True}})
    takedown_scope(request_id=request.pk)
    work = Document.objects.get(text=corpus["work"])
    others = [m.document_id for m in request.matches.exclude(document=work)]
    url = f"/api/v1/takedowns/{request.pk}/"
    curator = client_as("curator")
    curator.post(f"{url}review-scope/", {"confirm": [work.pk], "dismiss": others},
                 format="json")
    assert curator.post(f"{url}remediate-data/", {}, format="json").status_code == 200
    assert curator.post(f"{url}decide/", {"to": "decided"}, format="json").status_code == 200
    gaps = curator.post(f"{url}counter-notice/", {"claimant_name": "Sub Scriber"},
                        format="json")
    assert gaps.status_code == 400
    assert {"material", "statements.mistake_under_perjury",
            "statements.consent_to_jurisdiction", "signature"} <= set(gaps.json())
    with django_capture_on_commit_callbacks(execute=True):
        opened = curator.post(f"{url}counter-notice/", {
            "claimant_name": "Sub Scriber", "claimant_email": "sub@b.example",
            "postal_address": "2 Mill Lane", "telephone": "+1 555 0101",
            "material": "the essay 'Tide' in the essays source", "signature": "Sub Scriber",
            "statements": {"mistake_under_perjury": True, "consent_to_jurisdiction": True}},
            format="json")
    assert opened.status_code == 200, opened.json()
    body = opened.json()
    assert body["state"] == "restore_window"
    opens = date.fromisoformat(body["deadlines"]["restore_not_before"])
    assert "Sub Scriber" in mail.outbox[-1].body and str(opens) in mail.outbox[-1].body
    early = curator.post(f"{url}restore/", {}, format="json")
    assert early.status_code == 400 and "opens on" in str(early.json())
    restored = takedown_restore(request=request, actor=corpus["users"]["curator"], today=opens)
    assert restored.state == "restored"
    work.refresh_from_db()
    assert work.removed_at is None
    [back] = restored.scope["restoration"]["versions"]
    newest = DatasetVersion.objects.get(pk=back["to"])
    assert newest.members.filter(document=work).exists()
    assert newest.document_count == corpus["version"].document_count
    assert newest.manifest_root == corpus["version"].manifest_root  # the same content again
    index.refresh_from_db()
    assert index.removed == [] and index.generation == 3


def test_only_a_decided_dmca_request_takes_a_counter_notice(corpus, client_as):
    request = file_and_accept(corpus)  # voluntary
    answer = client_as("curator").post(f"/api/v1/takedowns/{request.pk}/counter-notice/", {},
                                       format="json")
    assert answer.status_code == 409


def test_a_failed_scoping_records_its_error_and_staff_can_run_it_again(corpus, monkeypatch,
                                                                      client_as):
    """A scoping that failed stayed in "scoping" with nothing shown and no way to rerun it."""
    from takedowns.services import scoping

    request = file_and_accept(corpus)
    assert request.scope["job"]["state"] == "queued"

    def broken(samples):
        raise RuntimeError("the span index is unreadable")

    monkeypatch.setattr(scoping, "_verbatim_spans", broken)
    failed = takedown_scope(request_id=request.pk)
    assert failed.state == "scoping" and failed.scope["job"]["state"] == "failed"
    assert "span index is unreadable" in failed.scope["job"]["error"]
    shown = client_as("curator").get(f"/api/v1/takedowns/{request.pk}/").json()
    assert shown["scope"]["job"]["state"] == "failed"  # what a client polls
    monkeypatch.undo()
    rerun = client_as("curator").post(f"/api/v1/takedowns/{request.pk}/scope/", {},
                                      format="json")
    assert rerun.status_code == 202, rerun.json()
    request.refresh_from_db()
    assert request.scope["job"]["state"] == "queued"
    twice = client_as("curator").post(f"/api/v1/takedowns/{request.pk}/scope/", {},
                                      format="json")
    assert twice.status_code == 409  # queued already
    done = takedown_scope(request_id=request.pk)
    assert done.scope["job"]["state"] == "done" and done.matches.exists()


def test_scoping_names_the_documents_it_could_not_compare_by_embedding(corpus, make_source,
                                                                       ingest_texts, pages_as):
    late = ingest_texts(make_source(name="late"), [prose(900), prose(901)])
    waiting = sorted(Document.objects.filter(embedding__isnull=True).values_list("pk", flat=True))
    assert len(waiting) == 2 and late.state == "succeeded"
    request = file_and_accept(corpus)
    done = takedown_scope(request_id=request.pk)
    assert done.scope["job"]["not_embedded"] == {"count": 2, "documents": waiting}
    page = pages_as("curator").get(f"/takedowns/{request.pk}/").content.decode()
    assert "Not compared by embedding: 2 document(s)" in page
    assert f"first ids: {waiting[0]}, {waiting[1]}" in page


def test_the_scope_reaches_the_synthetic_text_a_model_of_the_work_wrote_and_its_student(
        corpus, publish_version, pages_as):
    from provenance.models import RightsHolder
    from provenance.services.synthesis import synthesis_job_create, synthesis_run

    job = synthesis_run(job_id=synthesis_job_create(
        actor=None, checkpoint=corpus["checkpoint"], owner=RightsHolder.objects.first(),
        name="distilled tales", license_expression="CC0-1.0", template="Once upon a time",
        count=4, params={"max_new_tokens": 8}, enqueue=False).pk)
    later = publish_version("distilled", sources=[job.source_id])
    student = training_run_execute(run_id=training_run_create(
        version=later, actor=None, enqueue=False, config={**TINY_MODEL, "epochs": 1}).pk)
    done = takedown_scope(request_id=file_and_accept(corpus).pk)
    found = done.scope["descendants"]
    assert [s["id"] for s in found["synthetic_sources"]] == [job.source_id]
    assert found["synthetic_sources"][0]["generator"] == corpus["checkpoint"].pk
    assert [(v["id"], v["generation"]) for v in found["versions"]] == [(later.pk, 1)]
    assert [(c["id"], c["generation"]) for c in found["students"]] == [
        (student.checkpoint.pk, 1)]
    page = pages_as("holder_a").get(f"/takedowns/{done.pk}/").content.decode()
    assert "1 synthetic source(s), held in 1 later version(s), and 1 student model(s)" in page
