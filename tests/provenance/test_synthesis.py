"""Synthesis jobs on the real services: a trained checkpoint writes documents into a synthetic
source whose generator it is, each with the record that regenerates it; a killed run resumes
without writing a record twice; bad options are refused by name."""

import pytest
from django.core.exceptions import ValidationError

from provenance.models import DataSource, LedgerEntry, SynthesisJob, SyntheticRecord
from provenance.services.synthesis import BATCH, synthesis_job_create, synthesis_run
from provenance.services.training import training_run_create, training_run_execute
from tests.factories import RightsHolderFactory
from tests.helpers import TINY_MODEL, words

pytestmark = pytest.mark.django_db
TINY = {**TINY_MODEL, "batch_size": 8, "epochs": 2, "warmup_steps": 2, "checkpoint_every": 5}
INPUTS = ["the river", "a lantern", "the old mill"]


@pytest.fixture
def checkpoint(make_source, ingest_texts, publish_version):
    source = make_source(license_expression="CC-BY-NC-4.0")
    ingest_texts(source, [words(i, 60) for i in range(30)])
    version = publish_version("teacher", intended_use="academic")
    run = training_run_create(version=version, actor=None, config=TINY, enqueue=False)
    return training_run_execute(run_id=run.pk).checkpoint


def make_job(checkpoint, **options):
    return synthesis_job_create(**{
        "actor": None, "checkpoint": checkpoint, "owner": RightsHolderFactory(),
        "name": "synthetic tales", "license_expression": "CC0-1.0",
        "template": "Write about {input}:", "inputs": INPUTS, "count": BATCH + 8,
        "params": {"max_new_tokens": 12}, "seed": 5, "enqueue": False, **options})


def test_a_checkpoint_writes_documents_into_a_synthetic_source_with_their_records(checkpoint):
    from provenance.engine import lm
    from provenance.engine.lm_config import DecodeParams

    job = synthesis_run(job_id=make_job(checkpoint).pk)
    assert job.state == "succeeded", job.error
    source = job.source
    assert (source.acquisition, source.generator_id) == ("synthetic", checkpoint.pk)
    records = list(SyntheticRecord.objects.filter(job=job).order_by("index"))
    assert [r.index for r in records] == list(range(BATCH + 8))
    assert records[4].prompt == "Write about a lantern:" and records[4].seed == 5 * 1_000_003 + 4
    assert source.document_count == len({r.document_id for r in records}) > 0
    assert job.documents_added == source.document_count
    occurrence = records[0].document.occurrences.get(source=source)
    assert occurrence.metadata["checkpoint_sha256"] == checkpoint.sha256
    # The record alone regenerates its document.
    model, tokenizer = lm.load(checkpoint.local_path)
    again = lm.generate(model, tokenizer, records[7].prompt,
                        DecodeParams.from_dict({**job.params, "seed": records[7].seed}))
    assert again == records[7].document.text
    events = list(LedgerEntry.objects.filter(event__startswith="synthesis_job")
                  .values_list("event", flat=True))
    assert events == ["synthesis_job.created", "synthesis_job.finished"]
    assert synthesis_run(job_id=job.pk) is None or SyntheticRecord.objects.filter(
        job=job).count() == BATCH + 8  # finished: not run again


def test_a_run_killed_after_a_batch_resumes_where_its_records_end(checkpoint):
    job = make_job(checkpoint)

    def killed(done, total):
        if done == BATCH:
            raise SystemExit("worker killed")  # not an Exception: the row stays running

    with pytest.raises(SystemExit):
        synthesis_run(job_id=job.pk, on_progress=killed)
    job.refresh_from_db()
    assert (job.state, job.position) == ("running", BATCH)
    first = dict(SyntheticRecord.objects.filter(job=job).values_list("index", "pk"))
    assert len(first) == BATCH
    done = synthesis_run(job_id=job.pk)
    assert done.state == "succeeded"
    after = dict(SyntheticRecord.objects.filter(job=job).values_list("index", "pk"))
    assert len(after) == BATCH + 8 and all(after[i] == pk for i, pk in first.items())


@pytest.mark.parametrize(("options", "field"), [
    ({"template": "no slot here"}, "template"),
    ({"inputs": [], "template": "Write about {input}:"}, "inputs"),
    ({"inputs": ["ok", ""]}, "inputs"),
    ({"params": {"seed": 3}}, "params"),
    ({"params": {"temperature": -1}}, "params"),
    ({"count": 0}, "count"),
    ({"license_expression": "not a licence"}, "license_expression"),
])
def test_bad_synthesis_options_are_refused_by_name_and_leave_no_source(checkpoint, options,
                                                                        field):
    with pytest.raises(ValidationError) as refused:
        make_job(checkpoint, **options)
    assert field in refused.value.message_dict
    assert not DataSource.objects.filter(acquisition="synthetic").exists()
    assert not SynthesisJob.objects.exists()


def test_the_api_starts_a_job_and_refuses_a_bad_option_by_name(checkpoint, client_as, holder_a,
                                                                django_capture_on_commit_callbacks):
    researcher = client_as("researcher")
    body = {"checkpoint": checkpoint.pk, "owner": holder_a.pk, "name": "api synthetic",
            "license_expression": "CC0-1.0", "template": "Write about {input}:",
            "inputs": INPUTS, "count": 3, "params": {"max_new_tokens": 4}}
    bad = researcher.post("/api/v1/synthesis-jobs/", {**body, "template": "no slot"},
                          format="json")
    assert bad.status_code == 400 and "template" in bad.json()
    with django_capture_on_commit_callbacks() as sent:
        made = researcher.post("/api/v1/synthesis-jobs/", body, format="json")
    assert made.status_code == 202, made.json()
    assert (made.json()["state"], made.json()["total"], len(sent)) == ("queued", 3, 1)
    assert client_as("holder_a").get("/api/v1/synthesis-jobs/").status_code == 403


def test_licence_laundering_through_a_model_is_excluded_naming_the_upstream_source(
        checkpoint, publish_version):
    """A non-commercial source -> a model -> synthetic text declared CC0 -> a commercial recipe:
    the synthetic text is left out, and the reason names the non-commercial source."""
    from django.utils import timezone

    from provenance.models import VersionExclusion
    from provenance.services import usage

    job = synthesis_run(job_id=make_job(checkpoint, count=6).pk)
    synthetic = job.source
    upstream = DataSource.objects.get(use_class="non-commercial")
    commercial = publish_version("laundered", sources=[synthetic.pk])
    assert commercial.document_count == 0
    reasons = list(VersionExclusion.objects.filter(version=commercial)
                   .values_list("reason", "detail"))
    assert reasons and {r for r, _ in reasons} == {"license"}
    detail = reasons[0][1]
    assert detail.startswith("derived from source ") and "CC-BY-NC-4.0 is non-commercial" in detail
    assert f"checkpoint {checkpoint.name}" in detail and f"version {checkpoint.version}" in detail
    assert f"{upstream.name!r} (#{upstream.pk})" in detail
    # For academic use the synthetic text is kept, until its upstream source opts out of training.
    academic = publish_version("research", intended_use="academic", sources=[synthetic.pk])
    assert academic.document_count == synthetic.document_count > 0
    usage.opt_out_signal_record(source=upstream, actor=None, kind="robots_txt",
                                url="https://nc.example/robots.txt",
                                value="User-agent: *\nContent-Signal: ai-train=no\n",
                                observed_at=timezone.now())
    refused = publish_version("refused", intended_use="academic", sources=[synthetic.pk])
    assert refused.document_count == 0
    assert {r for r, _ in VersionExclusion.objects.filter(version=refused)
            .values_list("reason", "detail")} == {"opt_out"}


def test_synthetic_text_of_a_model_trained_on_permissive_text_stays_usable(
        make_source, ingest_texts, publish_version):
    source = make_source(license_expression="CC0-1.0")
    ingest_texts(source, [words(100 + i, 60) for i in range(30)])
    version = publish_version("open teacher")
    run = training_run_create(version=version, actor=None, config=TINY, enqueue=False)
    teacher = training_run_execute(run_id=run.pk).checkpoint
    job = synthesis_run(job_id=make_job(teacher, count=4).pk)
    kept = publish_version("open synthetic", sources=[job.source.pk])
    assert kept.document_count == job.source.document_count > 0


def test_a_sources_descendants_reach_the_synthetic_text_its_model_wrote_and_the_student(
        checkpoint, publish_version, client_as):
    from provenance.services.lineage import source_descendants

    upstream = DataSource.objects.get(use_class="non-commercial")
    job = synthesis_run(job_id=make_job(checkpoint, count=6).pk)
    holding = publish_version("distilled", intended_use="academic", sources=[job.source.pk])
    run = training_run_create(version=holding, actor=None, config=TINY, enqueue=False)
    student = training_run_execute(run_id=run.pk).checkpoint
    found = source_descendants(upstream)
    assert found.versions == {checkpoint.version_id: 0, holding.pk: 1}
    assert found.checkpoints == {checkpoint.pk: 0, student.pk: 1}
    assert found.synthetic_sources == {job.source_id: 0}
    assert found.students == [student.pk]
    shown = client_as("auditor").get(f"/api/v1/sources/{upstream.pk}/descendants/").json()
    assert shown["students"] == [{"id": student.pk, "generation": 1}]
    assert {r["id"] for r in shown["synthetic_sources"]} == {job.source_id}
    unrelated = DataSource.objects.exclude(pk__in=[upstream.pk, job.source_id]).first()
    assert unrelated is None or source_descendants(unrelated).checkpoints == {}
    # The student's AI Act summary names the synthetic source's chain with its decisive link.
    from dashboards.selectors import ai_act_summary

    [share] = ai_act_summary(student).sources
    assert share.chain == (f"written by checkpoint {checkpoint.name} (sha256 "
                           f"{checkpoint.sha256[:16]}…), trained on {checkpoint.version}; "
                           f"upstream sources: {upstream.name} (CC-BY-NC-4.0, non-commercial); "
                           f"the most restrictive: {upstream.name}")
    page = client_as("auditor").get(f"/models/{student.pk}/ai-act/").content.decode()
    assert f"<small>{share.chain}</small>" in page
    assert client_as("auditor").get(f"/models/{student.pk}/ai-act.pdf").status_code == 200


def test_a_students_canary_test_names_the_teacher_that_carried_the_canary(
        make_source, ingest_texts, publish_version, pages_as):
    from provenance.models import CanaryTest
    from provenance.services.canaries import (
        canary_register,
        canary_test_run_create,
        canary_test_run_execute,
    )

    carrier = make_source(license_expression="CC0-1.0")
    canary_register(source=carrier, actor=None, spec={"copies": 4})
    ingest_texts(carrier, [words(300 + i, 60) for i in range(30)])
    run = training_run_create(version=publish_version("canaried"), actor=None, config=TINY,
                              enqueue=False)
    teacher = training_run_execute(run_id=run.pk).checkpoint
    assert str(carrier.pk) in teacher.run.marks["canaries"]
    job = synthesis_run(job_id=make_job(teacher, count=8).pk)
    run = training_run_create(version=publish_version("student data", sources=[job.source_id]),
                              actor=None, config=TINY, enqueue=False)
    student = training_run_execute(run_id=run.pk).checkpoint
    for model, inserted, inherited in ((teacher, True, []), (student, False, [teacher.pk])):
        test = canary_test_run_create(checkpoint=model, actor=None, null_size=100,
                                      enqueue=False)
        assert canary_test_run_execute(run_id=test.pk).state == "succeeded"
        result = CanaryTest.objects.get(run=test, source=carrier)
        assert (result.inserted, result.evidence["inherited_from"]) == (inserted, inherited)
    page = pages_as("auditor").get(f"/checkpoints/{student.pk}/").content.decode()
    assert f'through the text of <a href="/checkpoints/{teacher.pk}/">' in page


def test_the_cards_of_a_version_with_synthetic_text_show_its_chain(checkpoint, publish_version):
    import json

    from dashboards.models import VersionCard
    from dashboards.services import version_card_render

    job = synthesis_run(job_id=make_job(checkpoint, count=4).pk)
    version = publish_version("with-synthetic", intended_use="academic",
                              sources=[job.source_id])
    version_card_render(version_id=version.pk)
    card = VersionCard.objects.get(version=version)
    upstream = DataSource.objects.get(use_class="non-commercial")
    said = (f"written by checkpoint {checkpoint.name} (sha256 {checkpoint.sha256[:16]}…), "
            f"trained on {checkpoint.version}; upstream sources: {upstream.name} "
            f"(CC-BY-NC-4.0, non-commercial); the most restrictive: {upstream.name}")
    assert f"Synthetic: **synthetic tales**, {said}" in card.hf_card
    import mlcroissant as mlc

    assert said in json.loads(card.croissant)["rai:dataCollection"]
    mlc.Metadata.from_json(ctx=mlc.Context(), json_=json.loads(card.croissant))  # still valid
    graph = json.loads(card.spdx)["@graph"]
    generates = [e for e in graph if e.get("relationshipType") == "generates"]
    assert len(generates) == 1 and generates[0]["to"][0].endswith(f"source-{job.source_id}")


def test_the_version_page_shows_the_chain_of_its_synthetic_text(checkpoint, publish_version,
                                                                 client):
    job = synthesis_run(job_id=make_job(checkpoint, count=4).pk)
    version = publish_version("page-synthetic", intended_use="academic", sources=[job.source_id])
    page = client.get(f"/datasets/{version.dataset.slug}/v1/").content.decode()
    assert f"Synthetic: <strong>synthetic tales</strong>, written by checkpoint {checkpoint.name}" \
        in page


@pytest.mark.parametrize("selection", ["diversity", "uncertainty", "order"])
def test_a_label_job_labels_the_chosen_documents_of_a_version(checkpoint, selection):
    from provenance.engine import lm

    pool = checkpoint.version
    job = make_job(checkpoint, inputs=[], template="{input}\nLabel:", count=5,
                   pool_version=pool, selection=selection)
    done = synthesis_run(job_id=job.pk)
    assert done.state == "succeeded", done.error
    assert len(done.pool_documents) == len(set(done.pool_documents)) == 5
    members = list(pool.members.order_by("document__sha256")
                   .values_list("document_id", "document__text"))
    if selection == "order":
        assert done.pool_documents == [pk for pk, _ in members[:5]]
    if selection == "uncertainty":  # the checkpoint's five highest losses
        model, tokenizer = lm.load(checkpoint.local_path)
        losses = dict(zip([pk for pk, _ in members],
                          lm.sequence_loss(model, tokenizer, [t for _, t in members]),
                          strict=True))
        assert min(losses[pk] for pk in done.pool_documents) >= sorted(
            losses.values())[-5]
    texts = dict(members)
    for record in SyntheticRecord.objects.filter(job=done).select_related("document"):
        labelled = texts[record.input_document_id]
        assert record.input_document_id in done.pool_documents
        assert record.prompt == f"{labelled}\nLabel:"
        assert record.document.text == record.prompt + record.label


def test_label_job_options_are_refused_by_name(checkpoint):
    pool = checkpoint.version
    for options, field in (({"count": pool.document_count + 1}, "count"),
                           ({"selection": "vibes"}, "selection"),
                           ({"inputs": ["x"], "template": "{input}"}, "inputs")):
        with pytest.raises(ValidationError) as refused:
            make_job(checkpoint, **{"inputs": [], "template": "{input}\nLabel:", "count": 5,
                                    "pool_version": pool, **options})
        assert field in refused.value.message_dict
    with pytest.raises(ValidationError) as refused:
        make_job(checkpoint, selection="diversity")
    assert "selection" in refused.value.message_dict


def test_the_job_page_shows_its_lineage_and_records(checkpoint, pages_as):
    job = synthesis_run(job_id=make_job(checkpoint, count=3).pk)
    page = pages_as("researcher").get(f"/synthesis/{job.pk}/").content.decode()
    record = SyntheticRecord.objects.filter(job=job).order_by("index").first()
    assert checkpoint.sha256 in page and f'href="/sources/{job.source_id}/"' in page
    assert f"<td>{record.seed}</td>" in page
    listing = pages_as("auditor").get("/synthesis/").content.decode()
    assert f'href="/synthesis/{job.pk}/"' in listing
    assert pages_as("holder_a").get(f"/synthesis/{job.pk}/").status_code == 403


def test_a_source_declares_an_outside_generator_and_cannot_drop_its_lineage(client_as,
                                                                              checkpoint):
    curator = client_as("curator")
    owner = RightsHolderFactory()
    body = {"owner": owner.pk, "name": "vendor synthetic", "license_expression": "CC-BY-4.0",
            "generator_name": "Vendor LM 7B",
            "generator_terms_url": "https://vendor.example/terms"}
    made = curator.post("/api/v1/sources/", body, format="json")
    assert made.status_code == 201, made.json()
    assert (made.json()["acquisition"], made.json()["generator_name"]) == (
        "synthetic", "Vendor LM 7B")
    refused = curator.post("/api/v1/sources/", {**body, "name": "other",
                                                "acquisition": "crawled"}, format="json")
    assert refused.status_code == 400 and "acquisition" in refused.json()
    mine = curator.post("/api/v1/sources/", {**body, "name": "ours", "generator_name": "",
                                             "generator": checkpoint.pk}, format="json")
    assert mine.status_code == 201 and mine.json()["generator"] == checkpoint.pk
    dropped = curator.patch(f"/api/v1/sources/{mine.json()['id']}/", {"generator": None},
                            format="json")
    assert dropped.status_code == 400 and "generator" in dropped.json()


def test_the_most_restrictive_upstream_licence_decides_the_chain(make_source, ingest_texts,
                                                                 publish_version):
    from dashboards.selectors.cards import generator_facts

    nc = make_source(license_expression="CC-BY-NC-4.0", name="nc")
    academic = make_source(license_expression="LicenseRef-Trailmark-Academic-Only",
                           name="academic")
    ingest_texts(nc, [words(500 + i, 60) for i in range(15)])
    ingest_texts(academic, [words(600 + i, 60) for i in range(15)])
    version = publish_version("mixed teacher", intended_use="academic")
    run = training_run_create(version=version, actor=None, config=TINY, enqueue=False)
    teacher = training_run_execute(run_id=run.pk).checkpoint
    job = synthesis_run(job_id=make_job(teacher, count=2).pk)
    facts = generator_facts(job.source)
    assert {u[2] for u in facts.upstream} == {"non-commercial", "academic-only"}
    assert facts.decisive == "academic"


def test_an_ai_input_refusal_upstream_takes_the_synthetic_text_out_of_retrieval(
        checkpoint, make_source, ingest_texts, publish_version):
    from provenance.services import usage
    from retrieval.services import datastores
    from retrieval.services.search import retrieve

    # Imported synthetic text that declares the checkpoint as the model that wrote it.
    imported = make_source(acquisition="synthetic", generator=checkpoint, name="imported")
    ingest_texts(imported, ["the lantern keeper rowed across the bay at dawn to mend nets",
                            "a quiet orchard behind the mill where the bees kept winter"])
    version = publish_version("answers", sources=[imported.pk], intended_use="academic")
    store = datastores.datastore_build(datastore_id=datastores.datastore_create(
        version=version, name="synthetic", actor=None, chunk_tokens=48, overlap_tokens=8,
        enqueue=False).pk)
    query = "lantern keeper mend nets"
    assert retrieve(store, query, None, k=3)
    upstream = DataSource.objects.get(use_class="non-commercial")
    # Refusing training says nothing of answering from the text; refusing AI input does, and
    # it reaches the text a model trained on it wrote.
    usage.opt_out_signal_record(source=upstream, actor=None, kind="robots_txt",
                                value="User-agent: GPTBot\nDisallow: /\n")
    assert retrieve(store, query, None, k=3)
    usage.opt_out_signal_record(source=upstream, actor=None, kind="robots_txt",
                                value="User-agent: *\nContent-Signal: ai-input=no\n")
    assert retrieve(store, query, None, k=3) == []
    assert retrieve(store, "orchard bees winter", None, k=3) == []
