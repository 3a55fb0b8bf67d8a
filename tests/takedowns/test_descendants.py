"""A takedown that follows the lineage: the synthetic text a model trained on the work wrote goes
with the work, the version holding it is republished without it, the student trained on it is
remediated, and its certificate tests the canary it could only have inherited."""

import pytest

from provenance.models import DatasetVersion, Document, RightsHolder
from provenance.services.synthesis import synthesis_job_create, synthesis_run
from provenance.services.training import training_run_create, training_run_execute
from takedowns.models import TakedownRequest, UnlearningRun
from takedowns.services.decision import decision_notice, notice_text
from takedowns.services.requests import takedown_decide, takedown_file
from takedowns.services.scoping import takedown_scope, takedown_scope_start
from takedowns.services.unlearning import unlearning_run_execute
from takedowns.services.verification import takedown_verify
from tests.fixtures.remediation import MODEL, prose

pytestmark = pytest.mark.django_db


@pytest.fixture
def student(trained, publish_version, make_source, ingest_texts):
    job = synthesis_run(job_id=synthesis_job_create(
        actor=None, checkpoint=trained["checkpoint"], owner=RightsHolder.objects.first(),
        name="distilled", license_expression="CC0-1.0", template="{input}",
        inputs=["harbour tide", "the lantern", "a quiet river", "winter letter"], count=40,
        params={"max_new_tokens": 24}, seed=3, enqueue=False).pk)
    assert job.state == "succeeded", job.error
    plain = make_source(name="plain")
    ingest_texts(plain, [prose(5000 + i) for i in range(30)])
    version = publish_version("student data", sources=[job.source_id, plain.pk],
                              holdout_fraction=0.3)
    run = training_run_execute(run_id=training_run_create(
        version=version, actor=None, enqueue=False, config={**MODEL, "epochs": 3}).pk)
    return {"job": job, "version": version, "checkpoint": run.checkpoint}


def scoped(trained) -> TakedownRequest:
    users = trained["users"]
    request = takedown_file(actor=users["holder_a"], claimed_sources=[trained["essays"]], data={
        "legal_basis": "voluntary", "claimant_name": "Ann", "claimant_email": "a@a.example",
        "works": [{"title": "Essays", "identifiers": ["essays"]}]})
    takedown_decide(request=request, actor=users["curator"], to="accepted")
    return takedown_scope(request_id=takedown_scope_start(request=request,
                                                          actor=users["curator"]).pk)


def test_remediation_takes_the_synthetic_text_and_its_student_with_the_work(
        trained, student, client_as, pages_as):
    request = scoped(trained)
    url = f"/api/v1/takedowns/{request.pk}/"
    curator = client_as("curator")
    documents = sorted({m.document_id for m in request.matches.all()})
    curator.post(f"{url}review-scope/", {"confirm": documents}, format="json")
    page = pages_as("curator").get(f"/takedowns/{request.pk}/").content.decode()
    assert 'name="descendants" value="1" checked' in page
    refused = curator.post(f"{url}remediate-data/", {"descendants": "maybe"}, format="json")
    assert refused.status_code == 400 and "descendants" in refused.json()
    done = curator.post(f"{url}remediate-data/", {"descendants": True}, format="json")
    assert done.status_code == 200, done.json()
    remediation = TakedownRequest.objects.get(pk=request.pk).scope["remediation"]
    synthetic = set(student["job"].source.occurrences.values_list("document_id", flat=True))
    assert remediation["synthetic_sources"] == [student["job"].source_id]
    assert set(remediation["synthetic_documents"]) == synthetic - set(documents)
    assert not Document.objects.filter(pk__in=synthetic, removed_at__isnull=True).exists()
    # Both datasets get a version without what was removed: the teacher's and the student's.
    changed = {v["dataset"]: v for v in remediation["versions"]}
    assert set(changed) == {trained["version"].dataset_id, student["version"].dataset_id}
    newer = DatasetVersion.objects.get(pk=changed[student["version"].dataset_id]["to"])
    assert not newer.members.filter(document_id__in=synthetic).exists()

    # The student is among the models to remediate; its forget set is the synthetic text.
    teacher, learner = trained["checkpoint"], student["checkpoint"]
    stray = curator.post(f"{url}remediate-models/", {"methods": ["retrain"],
                                                     "checkpoints": [learner.pk + 999]},
                         format="json")
    assert stray.status_code == 400
    started = curator.post(f"{url}remediate-models/", {"methods": ["retrain"],
                                                       "checkpoints": [learner.pk]},
                           format="json")
    assert started.status_code == 202, started.json()
    [run] = UnlearningRun.objects.filter(request=request)
    assert run.checkpoint_id == learner.pk
    assert set(run.forget_documents) == set(student["version"].members.filter(
        document_id__in=synthetic).values_list("document_id", flat=True))
    assert unlearning_run_execute(run_id=run.pk).state == "succeeded"
    assert UnlearningRun.objects.get(pk=run.pk).result.version_id == newer.pk

    # The certificate tests the essays' canary in the student, naming the teacher it came by.
    request = takedown_verify(request_id=request.pk)
    [entry] = request.verification["checkpoints"]
    assert entry["canary_tested"] and entry["canary_inherited_from"] == [teacher.pk]
    assert entry["original"]["canary_p"] is not None
    notice = decision_notice(request)
    assert notice["removed"]["synthetic_documents"] == len(remediation["synthetic_documents"])
    assert notice["models"][0]["canary_inherited_from"] == [teacher.name]
    text = "\n".join(notice_text(notice))
    assert "synthetic document(s) that models trained on them wrote" in text
    assert f"learned from text written by model(s) {teacher.name}, which trained on it" in text
    page = pages_as("holder_a").get(f"/takedowns/{request.pk}/").content.decode()
    assert f'href="/models/{teacher.pk}/">{teacher.pk}</a>, trained on it' in page


def test_without_descendants_the_synthetic_text_and_its_student_stay(trained, student,
                                                                     client_as):
    request = scoped(trained)
    url = f"/api/v1/takedowns/{request.pk}/"
    curator = client_as("curator")
    documents = sorted({m.document_id for m in request.matches.all()})
    curator.post(f"{url}review-scope/", {"confirm": documents}, format="json")
    assert curator.post(f"{url}remediate-data/", {}, format="json").status_code == 200
    remediation = TakedownRequest.objects.get(pk=request.pk).scope["remediation"]
    assert remediation["synthetic_documents"] == []
    assert [v["dataset"] for v in remediation["versions"]] == [trained["version"].dataset_id]
    refused = curator.post(f"{url}remediate-models/", {
        "methods": ["retrain"], "checkpoints": [student["checkpoint"].pk]}, format="json")
    assert refused.status_code == 400 and "checkpoints" in refused.json()


def test_a_student_of_nothing_but_the_removed_text_cannot_be_retrained(trained, student,
                                                                       client_as,
                                                                       publish_version):
    only = publish_version("only synthetic", sources=[student["job"].source_id])
    learner = training_run_execute(run_id=training_run_create(
        version=only, actor=None, enqueue=False, config={**MODEL, "epochs": 1}).pk).checkpoint
    request = scoped(trained)
    url = f"/api/v1/takedowns/{request.pk}/"
    curator = client_as("curator")
    curator.post(f"{url}review-scope/", {"confirm": sorted(
        {m.document_id for m in request.matches.all()})}, format="json")
    assert curator.post(f"{url}remediate-data/", {"descendants": True},
                        format="json").status_code == 200
    refused = curator.post(f"{url}remediate-models/", {
        "methods": ["retrain"], "checkpoints": [learner.pk]}, format="json")
    assert refused.status_code == 400
    assert "holds no documents" in str(refused.json()["methods"])
    assert not UnlearningRun.objects.filter(request=request).exists()
