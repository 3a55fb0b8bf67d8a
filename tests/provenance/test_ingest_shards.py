"""A large input cut into shards that several workers ingest at once: the same documents,
occurrences, counters and bad-row report as reading it whole, each row once, whatever order
the shards run in, however often one is interrupted, failed, retried or sent twice."""

from __future__ import annotations

import json

import pytest
from django.db import OperationalError, transaction
from django.utils import timezone

from core.jobs import TransientError
from provenance.models import IngestJob, IngestShard, LedgerEntry
from provenance.services import ingest_shards
from provenance.services.ingest import ingest_job_create, ingest_job_retry, ingest_path, ingest_run
from provenance.services.ingest_shards import shard_run
from tests.fixtures.workers import hold_lock_elsewhere
from tests.helpers import words

pytestmark = pytest.mark.django_db

COUNTS = ("rows_read", "rows_added", "rows_linked", "rows_duplicate", "rows_blocked",
          "rows_bad", "rows_metadata_dropped", "fields_kept", "errors", "total", "position")


def lines() -> list[object]:
    """600 lines: texts with metadata, repeats across the file (a repeat 300 lines on lands in
    another shard), bad JSON, empty texts."""
    out: list[object] = []
    for i in range(600):
        if i % 41 == 0:
            out.append("{broken")
        elif i % 59 == 0:
            out.append({"text": "   ", "id": f"e{i}"})
        elif i >= 300 and i % 3 == 0:
            out.append({"text": words(i - 300, 30), "id": f"r{i}"})
        else:
            out.append({"text": words(i, 30), "id": f"d{i}", "lang": "en" if i % 2 else "de"})
    return out


@pytest.fixture
def input_file(write_jsonl, settings):
    path = write_jsonl(lines())
    # about five shards of this ~130 KB file
    settings.TRAILMARK = {**settings.TRAILMARK, "INGEST_SHARD_BYTES": path.stat().st_size // 5}
    return path


@pytest.fixture
def sent(monkeypatch) -> list[int]:
    """The shard tasks sent, in order (the broker is not needed to decide what is sent)."""
    from provenance.tasks import ingest_shard_task

    ids: list[int] = []
    monkeypatch.setattr(ingest_shard_task, "delay", ids.append)
    return ids


def whole(source, path) -> dict[str, object]:
    """What reading the file whole stores and counts (then rolled back)."""
    with transaction.atomic():
        job = ingest_path(source=source, path=path, actor=None)
        assert job.state == "succeeded" and not job.shards.exists()
        result = {**{f: getattr(job, f) for f in COUNTS}, "documents": documents(source)}
        transaction.set_rollback(True)
    return result


def documents(source) -> list[tuple[str, str]]:
    return sorted(source.occurrences.values_list("document__sha256", "external_id"))


def result(job: IngestJob) -> dict[str, object]:
    job.refresh_from_db()
    return {**{f: getattr(job, f) for f in COUNTS}, "documents": documents(job.source)}


def planned(source, path, sent) -> IngestJob:
    job = ingest_job_create(source=source, path=path, actor=None)
    ingest_run(job_id=job.pk, shards=True)
    job.refresh_from_db()
    assert job.state == "running" and job.stage == f"shards: 0 of {len(sent)} done"
    assert sent == list(job.shards.values_list("pk", flat=True)) and len(sent) >= 4
    return job


def test_shards_run_in_any_order_store_and_count_what_reading_whole_does(
        make_source, input_file, sent):
    source = make_source()
    expected = whole(source, input_file)
    job = planned(source, input_file, sent)
    assert job.total == input_file.stat().st_size and job.rows_read == 0
    for done, shard_id in enumerate(reversed(sent), start=1):  # the last shard first
        assert shard_run(shard_id=shard_id).state == "succeeded"
        job.refresh_from_db()
        assert job.stage == (f"shards: {done} of {len(sent)} done" if done < len(sent)
                             else "done")
    assert job.state == "succeeded"
    assert result(job) == expected
    texts = [row["text"] for row in lines() if isinstance(row, dict) and row["text"].strip()]
    assert expected["rows_duplicate"] == len(texts) - len(set(texts)) > 50  # the data's own
    assert expected["rows_bad"] == 600 - len(texts)
    assert [e["line"] for e in job.errors] == sorted(e["line"] for e in job.errors)
    source.refresh_from_db()
    assert source.document_count == len(expected["documents"])
    entry = LedgerEntry.objects.filter(event="ingest.finished").latest("pk")
    assert entry.payload["shards"] == len(sent) and entry.payload["read"] == 600
    assert shard_run(shard_id=sent[0]) is None  # a shard delivered again does nothing


def test_the_api_shows_each_shard_and_its_progress(make_source, input_file, sent, client_as):
    job = planned(make_source(), input_file, sent)
    shard_run(shard_id=sent[1])
    shown = client_as("auditor").get(f"/api/v1/ingest-jobs/{job.pk}/").json()
    assert shown["stage"] == f"shards: 1 of {len(sent)} done"
    assert [(s["number"], s["state"], s["percent"]) for s in shown["shards"][:3]] == [
        (0, "queued", 0.0), (1, "succeeded", 100.0), (2, "queued", 0.0)]
    assert shown["shards"][1]["rows_read"] > 0 and 0 < shown["percent"] < 100
    assert shown["shards"][-1]["end"] == input_file.stat().st_size


def test_an_interrupted_shard_resumes_after_its_last_batch_and_counts_each_row_once(
        make_source, input_file, sent, monkeypatch):
    source = make_source()
    expected = whole(source, input_file)
    job = planned(source, input_file, sent)
    real, calls = ingest_shards.batch_write, []

    def flaky(job, batch, shard):
        calls.append(batch.rows)
        if len(calls) == 2:
            raise OperationalError("server closed the connection unexpectedly")
        return real(job, batch, shard)

    monkeypatch.setattr(ingest_shards, "batch_write", flaky)
    with pytest.raises(TransientError):
        shard_run(shard_id=sent[1])
    shard = IngestShard.objects.get(pk=sent[1])
    assert shard.state == "running" and shard.rows_read == calls[0]  # its first batch is in
    # The job's task, run again (by the recovery sweep), sends the orphaned shard once more.
    ingest_run(job_id=job.pk, shards=True)
    assert sent[-1] == shard.pk and len(sent) == IngestShard.objects.count() + 1
    for shard_id in sent[:-1]:
        shard_run(shard_id=shard_id)
    assert result(job) == expected


def test_a_failed_shard_fails_the_job_stops_the_others_and_a_retry_finishes_once(
        make_source, input_file, sent, monkeypatch):
    source = make_source()
    expected = whole(source, input_file)
    job = planned(source, input_file, sent)
    real = ingest_shards.batch_write

    def broken(job, batch, shard):
        if shard.number == 2:
            raise ValueError("the disk said no")
        return real(job, batch, shard)

    monkeypatch.setattr(ingest_shards, "batch_write", broken)
    shard_run(shard_id=sent[0])
    shard_run(shard_id=sent[2])
    job.refresh_from_db()
    count = len(sent)
    assert job.state == "failed" and job.error.startswith(f"shard 3 of {count} (bytes ")
    assert job.error.endswith("the disk said no")
    read = job.rows_read
    assert shard_run(shard_id=sent[3]).state == "queued"  # stopped before writing anything
    job.refresh_from_db()
    assert job.rows_read == read
    monkeypatch.setattr(ingest_shards, "batch_write", real)
    ingest_job_retry(job=job, actor=None)
    sent.clear()
    ingest_run(job_id=job.pk, shards=True)
    assert sent == [s for s in IngestShard.objects.order_by("number").values_list("pk", flat=True)
                    if s != IngestShard.objects.get(job=job, number=0).pk]  # shard 1 was done
    for shard_id in sent:
        shard_run(shard_id=shard_id)
    job.refresh_from_db()
    assert job.state == "succeeded" and result(job) == expected


def test_the_job_task_sends_again_only_the_shards_lost_or_orphaned(make_source, input_file,
                                                                   sent):
    job = planned(make_source(), input_file, sent)
    shards = list(job.shards.all())
    sent.clear()
    ingest_run(job_id=job.pk, shards=True)
    assert sent == []  # queued moments ago: in the broker still
    long_ago = timezone.now() - timezone.timedelta(hours=1)
    IngestShard.objects.filter(pk=shards[0].pk).update(sent_at=long_ago)  # a lost message
    IngestShard.objects.filter(pk__in=[shards[1].pk, shards[2].pk]).update(state="running")
    alive = hold_lock_elsewhere(ingest_shards.LOCK, shards[1].pk)  # a live runner
    try:
        ingest_run(job_id=job.pk, shards=True)
    finally:
        alive.close()
    assert sent == [shards[0].pk, shards[2].pk]  # the lost one and the orphaned one


def test_a_small_input_and_a_csv_file_are_read_whole(make_source, write_jsonl, tmp_path,
                                                     settings, sent):
    settings.TRAILMARK = {**settings.TRAILMARK, "INGEST_SHARD_BYTES": 100}
    source = make_source()
    path = tmp_path / "in.csv"
    path.write_text("text,id\n" + "".join(f'"{words(i, 20)}",c{i}\n' for i in range(200)))
    csv_job = ingest_job_create(source=source, path=path, actor=None)
    ingest_run(job_id=csv_job.pk, shards=True)
    settings.TRAILMARK = {**settings.TRAILMARK, "INGEST_SHARD_BYTES": 10_000}
    small = ingest_job_create(source=source, actor=None,
                              path=write_jsonl([{"text": json.dumps(i)} for i in range(100)]))
    ingest_run(job_id=small.pk, shards=True)
    for job in (csv_job, small):
        job.refresh_from_db()
        assert job.state == "succeeded" and not job.shards.exists()
    assert sent == [] and csv_job.rows_added == 200
