"""Ingest: stream a file into documents and occurrences, in batches, with live progress.

Each batch is one transaction that also advances the job's counters, so after a crash the job row
says exactly which rows are in; a rerun skips them and goes on (no duplicates, no lost rows).
Content is deduplicated by the sha256 of its text as submitted: the same text in two sources is one
`Document` with two `Occurrence`s, and ingesting a file twice adds nothing. A text whose normalised
form matches a document removed by a takedown is blocked, whatever its layout.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from core.conf import setting
from core.errors import InvalidTransition
from core.jobs import claim_row, job_run
from core.storage import artifact_local, artifact_path, artifact_publish, artifact_ref
from provenance.engine.prefetch import Prefetch
from provenance.engine.prepare import prepare_batches
from provenance.engine.readers import IngestFileError, Reader, detect_format, open_reader
from provenance.models import DataSource, IngestJob, User
from provenance.services.ingest_shards import shards_retry, shards_run
from provenance.services.ingest_write import batch_write, ingest_finish, ingest_options, read_scope

ProgressCallback = Callable[[IngestJob], None]


def _processes(reader: Reader) -> int:
    """Processes that prepare batches: INGEST_PROCESSES (0: one per CPU), for an input of at
    least INGEST_PROCESSES_FROM_BYTES; a smaller one is prepared here (starting processes would
    cost more than they save)."""
    wanted = int(setting("INGEST_PROCESSES")) or (os.cpu_count() or 1)
    size = reader.total if reader.unit == "bytes" else reader.total * 1024  # ~1 KB a row
    return wanted if wanted > 1 and size >= int(setting("INGEST_PROCESSES_FROM_BYTES")) else 0


def import_path_check(value: str, field: str = "path") -> Path:
    """A server path that staff may read through the API: under TRAILMARK_IMPORT_DIRS once links
    are resolved, and outside the state folder (even where an import folder holds it)."""
    path = Path(value).resolve()
    if not any(path.is_relative_to(root) for root in setting("IMPORT_DIRS")):
        raise ValidationError({field: "not under TRAILMARK_IMPORT_DIRS"})
    if path.is_relative_to(Path(settings.STATE_DIR).resolve()):
        raise ValidationError({field: "inside Trailmark's state folder, which is never read"})
    return path


def _check_readable(path: Path, fmt: str | None, text_field: str) -> str:
    try:
        fmt = fmt or detect_format(path)
        open_reader(path, fmt, text_field=text_field, max_bytes=ingest_options()["max_bytes"],
                    scope=read_scope(path))
    except IngestFileError as exc:
        raise ValidationError({"file": str(exc)}) from exc
    return fmt


@transaction.atomic
def ingest_job_create(*, source: DataSource, path: Path, actor: User | None, fmt: str | None = None,
                      text_field: str = "text", original_name: str = "") -> IngestJob:
    """Queue an ingest of a file or folder already on this server's disk."""
    if source.status != DataSource.Status.ACTIVE:
        raise ValidationError({"source": f"source {source.name!r} is {source.status}"})
    fmt = _check_readable(path, fmt, text_field)
    job = IngestJob.objects.create(source=source, path=artifact_ref(path), format=fmt,
                                   text_field=text_field, created_by=actor,
                                   original_name=original_name or path.name)
    from provenance.tasks import ingest_run_task

    ingest_run_task.delay_on_commit(job.pk)
    return job


def ingest_job_create_from_upload(*, source: DataSource, chunks: Iterable[bytes], name: str,
                                  actor: User, fmt: str | None = None,
                                  text_field: str = "text") -> IngestJob:
    """Store an upload and queue its ingest; an upload that is refused is deleted again."""
    path = upload_store(chunks, name)
    try:
        return ingest_job_create(source=source, path=path, actor=actor, fmt=fmt,
                                 text_field=text_field, original_name=name)
    except BaseException:
        shutil.rmtree(path.parent, ignore_errors=True)
        raise


def upload_store(chunks: Iterable[bytes], name: str) -> Path:
    """Write an uploaded file into the artifact store, chunk by chunk."""
    folder = Path(settings.ARTIFACT_DIR) / "uploads" / uuid.uuid4().hex
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / Path(name).name
    with target.open("wb") as out:
        for chunk in chunks:
            out.write(chunk)
    artifact_publish(target)  # the worker that ingests it may be on another host
    return target


@transaction.atomic
def ingest_job_retry(*, job: IngestJob, actor: User) -> IngestJob:
    job = IngestJob.objects.select_for_update().get(pk=job.pk)
    if job.state != IngestJob.State.FAILED:
        raise InvalidTransition(f"ingest job {job.pk}", job.state, "retry")
    job.state = IngestJob.State.QUEUED
    job.error = ""
    job.save(update_fields=["state", "error", "updated_at"])
    shards_retry(job)
    from provenance.tasks import ingest_run_task

    ingest_run_task.delay_on_commit(job.pk)
    return job


def _claim(job_id: int) -> IngestJob | None:
    """Mark the job running unless it is finished. A job found 'running' was interrupted (its
    worker died and the broker redelivered the task), so it resumes after its last batch."""
    return claim_row(IngestJob, stage="reading")(job_id)


def ingest_run(*, job_id: int, on_progress: ProgressCallback | None = None,
               shards: bool = False) -> IngestJob | None:
    """Run (or resume) an ingest job. Safe to call twice; None when there was nothing to do.
    With `shards` (a worker), a large input is cut into shards that tasks ingest at once
    (`ingest_shards`); this call then only plans them or sends again those that need it."""
    with job_run("ingest", job_id, model=IngestJob, claim=_claim) as job:
        if job is None:
            return None
        if not (shards and shards_run(job)):
            _run(job, on_progress)
    job.refresh_from_db()
    if on_progress and job.state == IngestJob.State.FAILED:
        on_progress(job)
    return job


def _run(job: IngestJob, on_progress: ProgressCallback | None) -> None:
    opts = ingest_options()
    reader = open_reader(artifact_local(job.path), job.format, text_field=job.text_field,
                         max_bytes=opts["max_bytes"], scope=read_scope(artifact_path(job.path)))
    job.total, job.unit = reader.total, reader.unit
    job.save(update_fields=["total", "unit", "updated_at"])
    # Read and prepare the next batches (in a thread, and in processes for a large input)
    # while this one waits on PostgreSQL.
    prepared = prepare_batches(reader, iter(lambda: reader.position, None),
                               size=opts["batch_size"], max_chars=opts["batch_chars"],
                               skip=job.rows_read, processes=_processes(reader))
    with Prefetch(prepared) as batches:
        for batch in batches:
            batch_write(job, batch)
            if on_progress:
                on_progress(job)
    with transaction.atomic():
        ingest_finish(job)
    if on_progress:
        on_progress(job)


def fields_kept_line(job: IngestJob) -> str:
    """The report's words for the metadata kept: which fields, in how many rows."""
    if not job.fields_kept:
        return "fields kept besides the text: none (the records had no other fields)"
    return "fields kept besides the text (each row's metadata): " + ", ".join(
        f"{name} ({rows} rows)" for name, rows in sorted(job.fields_kept.items()))


def ingest_path(*, source: DataSource, path: Path, actor: User | None, fmt: str | None = None,
                text_field: str = "text", on_progress: ProgressCallback | None = None) -> IngestJob:
    """Ingest in this process (the CLI): create the job row without queueing it, then run it."""
    fmt = _check_readable(path, fmt, text_field)
    job = IngestJob.objects.create(source=source, path=artifact_ref(path), format=fmt,
                                   text_field=text_field, created_by=actor,
                                   original_name=path.name)
    ingest_run(job_id=job.pk, on_progress=on_progress)
    job.refresh_from_db()
    return job
