"""The deployment of docs/deploy.md in small: a web host (this test process), a default-queue
worker and a gpu-queue worker, each a process of its own with an artifact folder of its own
(at different paths, as on different machines), sharing only the database, the broker and an
S3 endpoint (moto's server). A corpus uploaded on the web host is ingested and embedded by the
default worker, a model trained and attributed by the gpu worker, and each artifact reaches the
host that needs it through the store."""

from __future__ import annotations

import re
import time
from pathlib import Path

import boto3
import pytest
from django.db import transaction

from core.storage import artifact_path
from tests.fixtures.workers import running_worker, wait_for_row
from tests.helpers import TINY_MODEL, words

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def tasks_run(host: Path) -> set[str]:
    """The task names a worker's log says it received."""
    log = (host / "worker.log").read_text(errors="replace")
    return set(re.findall(r"Task ([\w.]+)\[[0-9a-f-]+\] received", log))


def wait_until(condition, what: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.25)


def test_web_default_and_gpu_hosts_share_only_the_database_broker_and_bucket(
        s3_store, settings, tmp_path, make_source, publish_version):
    from attribution.models import AttributionRun, ModelOutput
    from attribution.services.outputs import model_output_create
    from attribution.services.runs import attribution_run_create
    from provenance.models import Document, IngestJob, TrainingRun
    from provenance.services.ingest import ingest_job_create_from_upload
    from provenance.services.training import training_run_create

    web, cpu, gpu = (tmp_path / name for name in ("web", "cpu", "gpu"))
    for host in (web, cpu, gpu):
        host.mkdir()
    settings.ARTIFACT_DIR = web / "artifacts"
    source = make_source(license_expression="CC0-1.0")
    texts = [words(i, 60).replace("w", "harbour w") + "." for i in range(40)]
    body = "".join(f'{{"text": "{t}"}}\n' for t in texts).encode()
    with running_worker(cpu, queues="default"), running_worker(gpu, queues="gpu"):
        with transaction.atomic():
            job = ingest_job_create_from_upload(source=source, chunks=[body],
                                                name="corpus.jsonl", actor=None)
        job = wait_for_row(IngestJob, job.pk, {"succeeded", "failed"}, timeout=180)
        assert job.state == "succeeded", job.error
        wait_until(lambda: not Document.objects.filter(embedding__isnull=True).exists(),
                   "every document embedded")
        version = publish_version("topology")
        with transaction.atomic():
            run = training_run_create(version=version, actor=None,
                                      config={**TINY_MODEL, "epochs": 1})
        run = wait_for_row(TrainingRun, run.pk, {"succeeded", "failed"}, timeout=240)
        assert run.state == "succeeded", run.error
        with transaction.atomic():
            output = model_output_create(checkpoint=run.checkpoint, prompt="harbour w1",
                                         params={"max_new_tokens": 8}, actor=None)
        output = wait_for_row(ModelOutput, output.pk, {"succeeded", "failed"})
        assert output.state == "succeeded", output.error
        with transaction.atomic():
            attribution = attribution_run_create(
                output=output, actor=None, methods=["embedding", "bm25"],
                params={"embedding": {"top_k": 5, "min_similarity": 0.0}})
        attribution = wait_for_row(AttributionRun, attribution.pk, {"succeeded", "failed"})
        assert attribution.state == "succeeded", attribution.error
        assert attribution.results.filter(method="embedding").exists()

    # Each queue's work ran on its own host, and nowhere else.
    assert {"provenance.ingest_run", "provenance.embed_documents"} <= tasks_run(cpu)
    assert not {t for t in tasks_run(cpu) if t.startswith(("provenance.train", "attribution."))}
    assert {"provenance.train_run", "attribution.generate",
            "attribution.run_execute"} <= tasks_run(gpu)
    assert not {t for t in tasks_run(gpu) if t.startswith(("provenance.ingest",
                                                            "provenance.embed"))}
    # Rows name artifacts by key; each host holds what it made or fetched, not the rest.
    upload, model = job.path, run.checkpoint.path
    assert not Path(upload).is_absolute() and not Path(model).is_absolute()
    assert (web / "artifacts" / upload).is_file() and (cpu / "artifacts" / upload).is_file()
    assert not (gpu / "artifacts" / upload).exists()
    assert (gpu / "artifacts" / model / "config.json").is_file()
    assert not (cpu / "artifacts" / model).exists() and not artifact_path(model).exists()
    stored = {o["Key"] for o in boto3.client("s3").list_objects_v2(
        Bucket=s3_store["bucket"])["Contents"]}
    assert f"artifacts/{upload}" in stored and f"artifacts/{model}/config.json" in stored
