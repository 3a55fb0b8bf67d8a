"""A synthesis job through the real broker and a real Celery worker: queued by the API on
commit, run on the gpu queue, its documents in the synthetic source and its page finished."""

from __future__ import annotations

import pytest

from provenance.models import SynthesisJob, SyntheticRecord
from provenance.services.training import training_run_create, training_run_execute
from tests.fixtures.workers import wait_for_row
from tests.helpers import TINY_MODEL, words

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def test_a_synthesis_job_runs_from_the_api_on_a_worker(worker, users, client_as, make_source,
                                                       ingest_texts, publish_version,
                                                       pages_as):
    source = make_source(license_expression="CC-BY-4.0")
    ingest_texts(source, [words(i, 60) for i in range(30)])
    checkpoint = training_run_execute(run_id=training_run_create(
        version=publish_version("teacher"), actor=None, enqueue=False,
        config={**TINY_MODEL, "epochs": 1}).pk).checkpoint
    made = client_as("researcher").post("/api/v1/synthesis-jobs/", {
        "checkpoint": checkpoint.pk, "owner": users["holder_a"].rights_holder.pk,
        "name": "worked synthetic", "license_expression": "CC0-1.0",
        "template": "About {input}:", "inputs": ["the river", "a lantern"], "count": 40,
        "params": {"max_new_tokens": 8}, "seed": 2}, format="json")
    assert made.status_code == 202, made.json()
    job = wait_for_row(SynthesisJob, made.json()["id"], {"succeeded", "failed"}, timeout=180)
    assert job.state == "succeeded", job.error
    shown = client_as("auditor").get(f"/api/v1/synthesis-jobs/{job.pk}/").json()
    assert (shown["state"], shown["position"], shown["total"]) == ("succeeded", 40, 40)
    assert SyntheticRecord.objects.filter(job=job).count() == 40
    assert job.source.document_count == job.documents_added > 0
    page = pages_as("curator").get(f"/synthesis/{job.pk}/").content.decode()
    assert "worked synthetic" in page and "succeeded" in page
