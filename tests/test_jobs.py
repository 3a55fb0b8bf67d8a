"""The one job runner (core.jobs): a job's own error is recorded on its row and logged as a
key=value line; a transient database error is not recorded, leaves the job running, and its
task is retried and resumes."""

from __future__ import annotations

import logging

import pytest
from django.db import OperationalError

from core.jobs import JOB_TASK, TransientError, is_transient, job_run
from provenance.models import IngestJob
from provenance.services import ingest
from provenance.tasks import ingest_run_task

pytestmark = pytest.mark.django_db


def _queued_job(make_source, write_jsonl, texts: list[str]) -> IngestJob:
    path = write_jsonl([{"text": t} for t in texts])
    return IngestJob.objects.create(source=make_source(), path=str(path), format="jsonl",
                                    original_name=path.name)


def test_which_errors_are_transient():
    class Cause(Exception):
        sqlstate = "40P01"  # deadlock detected

    deadlock = OperationalError("deadlock detected")
    deadlock.__cause__ = Cause()
    constraint = OperationalError("disk full")
    constraint.__cause__ = type("DiskFull", (Exception,), {"sqlstate": "53100"})()
    assert is_transient(OperationalError("server closed the connection unexpectedly"))
    assert is_transient(deadlock)
    assert not is_transient(constraint)
    assert not is_transient(ValueError("bad row"))


def test_a_jobs_own_error_is_recorded_once_and_logged_as_key_value_lines(
        make_source, write_jsonl, monkeypatch, caplog):
    job = _queued_job(make_source, write_jsonl, ["one", "two"])

    def broken(job, batch):
        raise ValueError("the disk said no")

    monkeypatch.setattr(ingest, "batch_write", broken)
    with caplog.at_level(logging.INFO, logger="core.jobs"):
        ingest.ingest_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.state == "failed" and job.error == "the disk said no" and job.finished_at
    lines = [r.getMessage() for r in caplog.records if r.name == "core.jobs"]
    assert lines[0] == f"job=ingest id={job.pk} event=started"
    assert lines[1].startswith(f"job=ingest id={job.pk} event=failed seconds=")
    assert lines[1].endswith("error='the disk said no'")
    assert ingest.ingest_run(job_id=job.pk) is None  # failed is final: nothing claimed again


def test_a_transient_error_leaves_the_job_running_and_the_task_retries_it(
        make_source, write_jsonl, monkeypatch):
    job = _queued_job(make_source, write_jsonl, ["first text", "second text"])
    real, calls = ingest.batch_write, []

    def flaky(job, batch):
        calls.append(batch.rows)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(job, batch)

    monkeypatch.setattr(ingest, "batch_write", flaky)
    with pytest.raises(TransientError):
        ingest.ingest_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.state == "running" and job.error == ""  # not failed: it will be retried
    # The task is retried (eagerly here: apply() runs the retry at once) and the job resumes.
    assert ingest_run_task.autoretry_for == JOB_TASK["autoretry_for"] == (TransientError,)
    calls.clear()
    monkeypatch.setattr(ingest, "batch_write", flaky)
    result = ingest_run_task.apply(args=[job.pk])
    assert result.successful(), result.traceback
    job.refresh_from_db()
    assert job.state == "succeeded" and job.rows_added == 2 and len(calls) == 2


def test_a_locked_job_is_skipped_without_claiming_it(make_source, write_jsonl):
    job = _queued_job(make_source, write_jsonl, ["text"])
    with job_run("ingest", job.pk, model=IngestJob) as held:
        assert held is not None and held.state == "running"
        assert ingest.ingest_run(job_id=job.pk) is None  # a duplicate delivery backs off
    with pytest.raises(TypeError, match="needs a model"):
        with job_run("ingest", job.pk):
            pass
