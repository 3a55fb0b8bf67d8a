"""Tasks through the real broker on a real Celery worker process (not eager mode, not a thread)."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest
from django.db import transaction

from provenance.models import Document, IngestJob
from provenance.services.ingest import ingest_job_create
from tests.fixtures.workers import kill_pool_processes, running_worker, wait_for_row
from tests.helpers import TINY_MODEL, words

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]
ROOT = Path(__file__).resolve().parents[2]


def wait_for(job: IngestJob, states: set[str], timeout: float = 90.0) -> IngestJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.state in states:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job.pk} still {job.state} after {timeout}s")


def test_an_ingest_queued_through_the_api_service_runs_on_a_worker(worker, make_source,
                                                                   write_jsonl):
    source = make_source()
    path = write_jsonl([{"text": words(i)} for i in range(75)] + ["{bad"])
    with transaction.atomic():
        job = ingest_job_create(source=source, path=path, actor=None)
    job = wait_for(job, {"succeeded", "failed"})
    assert job.state == "succeeded", job.error
    assert (job.rows_added, job.rows_bad) == (75, 1)
    assert Document.objects.count() == 75


def ingest_started(source, write_jsonl) -> IngestJob:
    """Queue an ingest of 4,000 documents and return once a worker is part-way through it."""
    path = write_jsonl([{"text": words(i, 400)} for i in range(4000)])
    with transaction.atomic():
        job = ingest_job_create(source=source, path=path, actor=None)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.state == "running" and job.rows_read > 0:
            break
        time.sleep(0.02)
    assert job.state == "running", "the job never started"
    assert 0 < job.rows_read < 4000, "the kill must land mid-ingest"
    return job


def test_a_worker_process_killed_mid_ingest_is_replaced_and_the_job_finishes_once(
        worker, make_source, write_jsonl, settings):
    """SIGKILL the pool process while it ingests: Celery requeues the unacknowledged task
    (acks_late + reject_on_worker_lost), a new pool process resumes after the last committed
    batch, and every row lands exactly once."""
    source = make_source()
    job = ingest_started(source, write_jsonl)
    kill_pool_processes(worker)
    job = wait_for(job, {"succeeded", "failed"}, timeout=180)
    assert job.state == "succeeded", job.error
    assert (job.rows_read, job.rows_added, job.rows_duplicate) == (4000, 4000, 0)
    assert Document.objects.count() == 4000
    source.refresh_from_db()
    assert source.document_count == 4000


def test_two_workers_share_the_shards_of_one_input_and_a_kill_loses_and_doubles_nothing(
        make_source, write_jsonl, tmp_path):
    """A large input is cut into shards that both workers take from the queue; both workers'
    pool processes are killed mid-ingest, their shards are delivered again and resume after
    their last batch, and every row is counted once."""
    source = make_source()
    rows = [{"text": words(i, 400), "id": f"d{i}"} for i in range(3000)]
    path = write_jsonl([*rows, "{bad", {"text": words(7, 400), "id": "again"}])
    env = {"TRAILMARK_INGEST_SHARD_BYTES": str(path.stat().st_size // 6)}
    with running_worker(tmp_path, **env) as one, running_worker(tmp_path, **env) as two:
        with transaction.atomic():
            job = ingest_job_create(source=source, path=path, actor=None)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if job.rows_read > 0 and job.shards.filter(state="running").exists():
                break
            time.sleep(0.02)
        assert 0 < job.rows_read < 3000, "the kill must land mid-ingest"
        kill_pool_processes(one)
        kill_pool_processes(two)
        job = wait_for(job, {"succeeded", "failed"}, timeout=240)
    assert job.state == "succeeded", job.error
    assert set(job.shards.values_list("state", flat=True)) == {"succeeded"}
    assert job.shards.count() == 6
    assert (job.rows_read, job.rows_added, job.rows_duplicate, job.rows_bad) == (3002, 3000, 1, 1)
    assert job.errors == [{"file": path.name, "line": 3001, "reason": job.errors[0]["reason"]}]
    assert Document.objects.count() == 3000
    assert source.occurrences.get(document__text=words(7, 400)).external_id == "d7"  # line 8
    source.refresh_from_db()
    assert source.document_count == 3000


TINY_TRAIN = {**TINY_MODEL, "batch_size": 4, "warmup_steps": 2}


@pytest.fixture
def published_version(make_source, ingest_texts, publish_version):
    ingest_texts(make_source(license_expression="CC0-1.0"),
                 [words(i, 80).replace("w", "harbour w") for i in range(60)])
    return publish_version()


def test_training_and_generation_run_on_the_gpu_queue(worker, published_version):
    from attribution.models import ModelOutput
    from attribution.services.outputs import model_output_create
    from provenance.models import TrainingRun
    from provenance.services.training import training_run_create

    with transaction.atomic():
        run = training_run_create(version=published_version, actor=None,
                                  config={**TINY_TRAIN, "epochs": 1})
    run = wait_for_row(TrainingRun, run.pk, {"succeeded", "failed", "cancelled"})
    assert run.state == "succeeded", run.error
    with transaction.atomic():
        output = model_output_create(checkpoint=run.checkpoint, prompt="harbour w1",
                                     params={"max_new_tokens": 6}, actor=None)
    output = wait_for_row(ModelOutput, output.pk, {"succeeded", "failed"})
    assert output.state == "succeeded" and output.completion, output.error


def test_a_worker_killed_mid_training_resumes_from_its_last_checkpoint(worker,
                                                                     published_version):
    from provenance.models import LedgerEntry, ModelCheckpoint, TrainingRun
    from provenance.services.training import training_run_create

    with transaction.atomic():
        run = training_run_create(version=published_version, actor=None,
                                  config={**TINY_TRAIN, "epochs": 40, "checkpoint_every": 10})
    deadline = time.monotonic() + 180  # a loaded machine starts torch slowly
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.state == "running" and run.position >= 20:
            break
        time.sleep(0.05)
    assert run.state == "running" and run.position < run.total, "kill must land mid-run"
    kill_pool_processes(worker)
    run = wait_for_row(TrainingRun, run.pk, {"succeeded", "failed", "cancelled"}, timeout=180)
    assert run.state == "succeeded", run.error
    assert run.position == run.total
    assert ModelCheckpoint.objects.filter(run=run).count() == 1
    assert LedgerEntry.objects.filter(event="checkpoint.created").count() == 1
    # it went on from its last saved state (every 10 steps; step 20 or later was saved before
    # the kill), not from step 0: a restart would also succeed with one checkpoint
    resumed = ModelCheckpoint.objects.get(run=run).metrics["resumed_at_steps"]
    assert len(resumed) == 1 and resumed[0] >= 20 and resumed[0] % 10 == 0, resumed


def test_a_worker_killed_whole_is_replaced_and_its_ingest_resumes_at_once(
        tmp_path, make_source, write_jsonl):
    """The outside probe killed the worker's main process: the interrupted ingest stayed
    `running` for up to 2 hours (its message unacknowledged in Redis). Here the worker is
    killed with all its processes, as `make run`'s supervisor then cleans up, and a new one
    starts: it resumes the job at once (worker_ready, and the sweep every 30 s)."""
    source = make_source()
    with running_worker(tmp_path) as first:
        job = ingest_started(source, write_jsonl)
        for process in [*psutil.Process(first.pid).children(recursive=True),
                        psutil.Process(first.pid)]:
            process.kill()
        first.wait(10)
    job.refresh_from_db()
    assert job.state == "running"  # nobody is running it: only the row says so
    with running_worker(tmp_path):
        job = wait_for(job, {"succeeded", "failed"}, timeout=120)  # not 2 hours
    assert job.state == "succeeded", job.error
    assert (job.rows_read, job.rows_added, job.rows_duplicate) == (4000, 4000, 0)
    assert Document.objects.count() == 4000

