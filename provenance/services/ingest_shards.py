"""A large input ingested by several workers at once.

The job's own task (`shards_run`) cuts the input at record boundaries (`Reader.parts`: byte
ranges of a JSONL file, runs of files of a folder, runs of row groups of a Parquet file; a CSV
file is read whole, since a quoted field may hold a newline) and sends one task per shard, which
every worker takes from the queue. A shard ingests its part in batches through the same
transaction as a whole-file ingest (`batch_write`), which advances the job's counters and the
shard's place together: a shard whose worker dies resumes after its last batch, and no row is
counted twice. The shard that finds every shard done finishes the job (`shards_finish`).

The join is the shards' rows rather than a Celery chord: a chord counts its parts by task id in
the result backend, and a shard sent again after a lost message or a dead worker is a new task
id that the chord would wait for forever. Sending again is the job task's part: run again (by
`jobs_recover` while the job says running, or by a retry), it sends each shard that was never
sent, one queued longer than JOB_RESEND_QUEUED_AFTER, and one marked running whose lock nobody
holds; a shard that arrives twice runs once (its lock, then its state).

A shard that fails fails the job with its error; the others stop before their next batch is
written and wait, queued. A retry of the job keeps the plan and sends the unfinished shards, so
each row is still read once.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from core.conf import setting
from core.jobs import claim_row, job_lock, job_run
from core.storage import artifact_local, artifact_path
from provenance.engine.prefetch import Prefetch
from provenance.engine.prepare import prepare_batches
from provenance.engine.readers import Part, Reader, open_reader
from provenance.models import IngestJob, IngestShard
from provenance.services.ingest_write import (
    ShardStopped,
    batch_write,
    ingest_finish,
    ingest_options,
    read_scope,
)

LOCK = "ingest_shard"


def _reader(job: IngestJob, part: Part | None = None) -> Reader:
    return open_reader(artifact_local(job.path), job.format, text_field=job.text_field,
                       max_bytes=ingest_options()["max_bytes"],
                       scope=read_scope(artifact_path(job.path)), part=part)


def _pieces(reader: Reader) -> int:
    """Shards of about INGEST_SHARD_BYTES (a folder's files counted at ~1 KB each)."""
    size = reader.path.stat().st_size if reader.path.is_file() else reader.total * 1024
    per_shard = max(1, int(setting("INGEST_SHARD_BYTES")))
    return min(int(setting("INGEST_SHARDS_MAX")), size // per_shard)


def shards_plan(job: IngestJob) -> bool:
    """Cut a job's input into shards (their rows); False when it is to be read whole: small, a
    format that cannot be cut, or a job that has already read rows whole."""
    if job.rows_read:
        return False
    reader = _reader(job)
    pieces = _pieces(reader)
    parts = reader.parts(pieces) if pieces >= 2 else []
    if len(parts) < 2:
        return False
    with transaction.atomic():
        IngestShard.objects.bulk_create(
            IngestShard(job=job, number=number, start=part.start, end=part.end,
                        before=part.before, total=reader.part_total(part), unit=reader.unit)
            for number, part in enumerate(parts))
        job.total, job.unit, job.stage = reader.total, reader.unit, "shards"
        job.save(update_fields=["total", "unit", "stage", "updated_at"])
    return True


def _lock_free(shard_id: int) -> bool:
    with job_lock(LOCK, shard_id) as mine:
        return mine


def shards_run(job: IngestJob) -> bool:
    """In the job's task: plan the shards of a large input, or, for a job already cut, send the
    shards that need it and finish the job if they are all done (the last shard's own finish
    lost). False when the input is to be read whole."""
    if not job.shards.exists() and not shards_plan(job):
        return False
    from provenance.tasks import ingest_shard_task

    cutoff = timezone.now() - timedelta(seconds=int(setting("JOB_RESEND_QUEUED_AFTER")))
    _stage(job.pk)
    for shard in job.shards.exclude(state=IngestShard.State.SUCCEEDED):
        due = (shard.sent_at is None
               or (shard.state == IngestShard.State.QUEUED and shard.sent_at < cutoff)
               or (shard.state == IngestShard.State.RUNNING and _lock_free(shard.pk)))
        if due:
            IngestShard.objects.filter(pk=shard.pk).update(
                state=IngestShard.State.QUEUED, error="", sent_at=timezone.now())
            ingest_shard_task.delay(shard.pk)
    shards_finish(job.pk)
    return True


def _stage(job_id: int) -> None:
    """The jobs board's stage of a sharded job: how many shards are done (advice: two shards
    ending at once may both show the same count)."""
    shards = IngestShard.objects.filter(job_id=job_id)
    done = shards.filter(state=IngestShard.State.SUCCEEDED).count()
    IngestJob.objects.filter(pk=job_id, state=IngestJob.State.RUNNING).update(
        stage=f"shards: {done} of {shards.count()} done")


def shards_retry(job: IngestJob) -> None:
    """A retried job's unfinished shards are sent again by its task (in its transaction)."""
    job.shards.exclude(state=IngestShard.State.SUCCEEDED).update(
        state=IngestShard.State.QUEUED, error="", sent_at=None)


def _fail(shard_id: int, exc: BaseException) -> None:
    shard = IngestShard.objects.get(pk=shard_id)
    now = timezone.now()
    with transaction.atomic():
        IngestShard.objects.filter(pk=shard_id).update(
            state=IngestShard.State.FAILED, error=str(exc)[:2000], finished_at=now, updated_at=now)
        count = IngestShard.objects.filter(job_id=shard.job_id).count()
        where = f"{shard.unit} {shard.start}-{shard.end}"
        IngestJob.objects.filter(pk=shard.job_id, state=IngestJob.State.RUNNING).update(
            state=IngestJob.State.FAILED, finished_at=now, updated_at=now,
            error=f"shard {shard.number + 1} of {count} ({where}): {exc}"[:2000])


def _pause(shard_id: int) -> None:
    """The job stopped: the shard waits for its retry."""
    IngestShard.objects.filter(pk=shard_id).update(state=IngestShard.State.QUEUED,
                                                   updated_at=timezone.now())


def shard_run(*, shard_id: int) -> IngestShard | None:
    """Ingest one shard (or resume it after its last batch); safe to call twice."""
    with job_run(LOCK, shard_id, claim=claim_row(IngestShard, stage="reading", related=("job",)),
                 fail=_fail, cancelled=(ShardStopped,), cancel=_pause) as shard:
        if shard is None:
            return None
        job = shard.job
        if job.state != IngestJob.State.RUNNING:
            raise ShardStopped(f"ingest job {job.pk} is {job.state}")
        opts = ingest_options()
        reader = _reader(job, Part(shard.start, shard.end, shard.before))
        prepared = prepare_batches(reader, iter(lambda: reader.position, None),
                                   size=opts["batch_size"], max_chars=opts["batch_chars"],
                                   skip=shard.rows_read)  # the workers are the parallelism
        with Prefetch(prepared) as batches:
            for batch in batches:
                batch_write(job, batch, shard)
        IngestShard.objects.filter(pk=shard_id).update(
            state=IngestShard.State.SUCCEEDED, stage="done", position=shard.total,
            finished_at=timezone.now(), updated_at=timezone.now())
        _stage(job.pk)
    shards_finish(shard.job_id)
    shard.refresh_from_db()
    return shard


def shards_finish(job_id: int) -> bool:
    """Finish a sharded job once every shard is done (whichever shard sees it first)."""
    with transaction.atomic():
        job = (IngestJob.objects.select_for_update(of=("self",)).select_related("source")
               .filter(pk=job_id).first())
        if job is None or job.state != IngestJob.State.RUNNING or \
                job.shards.exclude(state=IngestShard.State.SUCCEEDED).exists():
            return False
        # Reported in the input's order, as a job read whole reports them.
        job.errors = sorted(job.errors, key=lambda e: (str(e.get("file")), e.get("line") or 0))
        ingest_finish(job, shards=job.shards.count())
    return True
