"""The recovery sweep: a job marked running that no runner holds (its worker died) is sent
again; one whose runner is alive, or that has finished, is left alone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery import current_app
from django.utils import timezone

from core.jobs import RECOVERABLE, jobs_recover
from provenance.models import Document, IngestJob
from tests.fixtures.workers import hold_lock_elsewhere

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, list]]:
    calls: list[tuple[str, list]] = []
    monkeypatch.setattr(current_app, "send_task",
                        lambda name, args=(), **kw: calls.append((name, list(args))))
    return calls


def test_only_running_jobs_that_nobody_runs_are_sent_again(make_source, sent):
    source = make_source()
    alive = IngestJob.objects.create(source=source, path="a", format="jsonl", state="running")
    dead = IngestJob.objects.create(source=source, path="b", format="jsonl", state="running")
    IngestJob.objects.create(source=source, path="c", format="jsonl", state="succeeded")
    IngestJob.objects.create(source=source, path="d", format="jsonl", state="queued")
    runner = hold_lock_elsewhere("ingest", alive.pk)
    try:
        assert jobs_recover() == [("ingest", dead.pk)]
    finally:
        runner.close()
    assert sent == [("provenance.ingest_run", [dead.pk])]


def test_every_kind_of_locked_job_is_covered_and_the_embedding_backlog_resumes(
        make_source, ingest_texts, sent, django_capture_on_commit_callbacks):
    assert {kind.lock for kind in RECOVERABLE} == {
        "ingest", "curation", "training", "canary_test", "generate", "span_index",
        "attribution_run", "unlearning", "takedown_scope", "takedown_verify", "embed",
        "datastore_build", "answer", "benchmark", "benchmark_trial", "synthesis"}
    with django_capture_on_commit_callbacks(execute=False):
        ingest_texts(make_source(), ["waits for its embedding"])
    assert Document.objects.filter(embedding__isnull=True).exists()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert jobs_recover() == [("embed", 0)]
    assert len(callbacks) == 1  # the embedding task, sent once this commits


def test_a_job_queued_too_long_is_sent_again_once_per_period(make_source, sent, settings):
    """Its message may have been lost by the broker: it is sent again, and not again until the
    period has passed once more; a job queued recently, or running, is left to its message."""
    settings.TRAILMARK = {**settings.TRAILMARK, "JOB_RESEND_QUEUED_AFTER": 600}
    source = make_source()
    lost = IngestJob.objects.create(source=source, path="a", format="jsonl")
    IngestJob.objects.create(source=source, path="b", format="jsonl")  # queued just now
    long_ago = timezone.now() - timedelta(minutes=11)
    IngestJob.objects.filter(pk=lost.pk).update(updated_at=long_ago)
    assert jobs_recover() == [("ingest", lost.pk)]
    assert sent == [("provenance.ingest_run", [lost.pk])]
    assert jobs_recover() == []  # touched when sent: not again within the period
    IngestJob.objects.filter(pk=lost.pk).update(updated_at=long_ago)
    assert jobs_recover() == [("ingest", lost.pk)]


def test_a_second_delivery_of_a_resent_job_does_nothing(make_source, write_jsonl):
    """Resending is safe: if the first message was only slow, the delivery that comes second
    finds the job finished and leaves it as it is."""
    from provenance.services.ingest import ingest_run

    job = IngestJob.objects.create(source=make_source(), path=str(write_jsonl([{"text": "x y"}])),
                                   format="jsonl")
    assert ingest_run(job_id=job.pk).rows_added == 1
    assert ingest_run(job_id=job.pk) is None
    job.refresh_from_db()
    assert (job.state, job.rows_read, Document.objects.count()) == ("succeeded", 1, 1)
