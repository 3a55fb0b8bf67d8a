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
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from core.conf import setting
from core.errors import InvalidTransition
from core.jobs import claim_row, job_run
from core.storage import artifact_local, artifact_path, artifact_publish, artifact_ref
from provenance.engine.prefetch import Prefetch
from provenance.engine.prepare import STAGE_COLUMNS, Batch, StagedRow, prepare_batches
from provenance.engine.readers import (
    IngestFileError,
    Reader,
    ReadScope,
    detect_format,
    open_reader,
)
from provenance.ledger.append import ledger_append
from provenance.models import DataSource, IngestJob, User
from provenance.services.embeddings import documents_embed_later
from provenance.services.staging import copy_rows

ProgressCallback = Callable[[IngestJob], None]

STAGE_DDL = """
CREATE TEMP TABLE IF NOT EXISTS trailmark_ingest_stage (
    sha256 varchar(64), normalised_sha256 varchar(64), text text, byte_count integer,
    token_estimate integer, minhash bytea, external_id varchar(500), url varchar(2000),
    file varchar(500), line bigint, language varchar(35), metadata jsonb
) ON COMMIT DELETE ROWS
"""
# A staged text is blocked when a document removed by a takedown has its normalised form (the
# same words in another layout), unless that very text is stored and live.
_BLOCKED = """
EXISTS (SELECT 1 FROM provenance_document r
        WHERE r.normalised_sha256 = s.normalised_sha256 AND r.removed_at IS NOT NULL)
"""
INSERT_DOCUMENTS_SQL = f"""
INSERT INTO provenance_document (sha256, normalised_sha256, text, byte_count, token_estimate,
                                 minhash, language, removal_reason, text_purged, created_at)
SELECT sha256, normalised_sha256, text, byte_count, token_estimate, minhash, language, '', false,
       now()
FROM trailmark_ingest_stage s WHERE NOT {_BLOCKED}
ON CONFLICT (sha256) DO NOTHING
"""
INSERT_OCCURRENCES_SQL = """
WITH linked AS (
    INSERT INTO provenance_occurrence (document_id, source_id, external_id, url, ingest_job_id,
                                       file, line, metadata, created_at)
    SELECT d.id, %(source)s, s.external_id, s.url, %(job)s, s.file, s.line, s.metadata, now()
    FROM trailmark_ingest_stage s JOIN provenance_document d ON d.sha256 = s.sha256
    WHERE d.removed_at IS NULL
    ON CONFLICT (source_id, document_id) DO NOTHING
    RETURNING document_id
)
SELECT count(*), coalesce(sum(d.byte_count), 0)
FROM linked JOIN provenance_document d ON d.id = linked.document_id
"""
COUNT_BLOCKED_SQL = f"""
SELECT count(*) FROM trailmark_ingest_stage s
WHERE NOT EXISTS (SELECT 1 FROM provenance_document d
                  WHERE d.sha256 = s.sha256 AND d.removed_at IS NULL)
  AND {_BLOCKED}
"""


def _options() -> dict[str, int]:
    return {"batch_size": int(setting("INGEST_BATCH_SIZE")),
            "batch_chars": int(setting("INGEST_BATCH_CHARS")),
            "max_bytes": int(setting("INGEST_MAX_DOC_BYTES"))}


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


def read_scope(path: Path) -> ReadScope:
    """Where an ingest of `path` may read: the import folders, the uploads folder and the input
    itself; never the state folder (secret key, ledger key, database), wherever links point."""
    uploads = (Path(settings.ARTIFACT_DIR) / "uploads").resolve()
    allowed = (*setting("IMPORT_DIRS"), uploads, path.resolve())
    return ReadScope(allowed=tuple(allowed), denied=(Path(settings.STATE_DIR).resolve(),))


def _check_readable(path: Path, fmt: str | None, text_field: str) -> str:
    try:
        fmt = fmt or detect_format(path)
        open_reader(path, fmt, text_field=text_field, max_bytes=_options()["max_bytes"],
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
    from provenance.tasks import ingest_run_task

    ingest_run_task.delay_on_commit(job.pk)
    return job


def _claim(job_id: int) -> IngestJob | None:
    """Mark the job running unless it is finished. A job found 'running' was interrupted (its
    worker died and the broker redelivered the task), so it resumes after its last batch."""
    return claim_row(IngestJob, stage="reading")(job_id)


def ingest_run(*, job_id: int, on_progress: ProgressCallback | None = None) -> IngestJob | None:
    """Run (or resume) an ingest job. Safe to call twice; None when there was nothing to do."""
    with job_run("ingest", job_id, model=IngestJob, claim=_claim) as job:
        if job is None:
            return None
        _run(job, on_progress)
    job.refresh_from_db()
    if on_progress and job.state == IngestJob.State.FAILED:
        on_progress(job)
    return job


def _run(job: IngestJob, on_progress: ProgressCallback | None) -> None:
    opts = _options()
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
            _write_batch(job, batch)
            if on_progress:
                on_progress(job)
    with transaction.atomic():
        job.state = IngestJob.State.SUCCEEDED
        job.stage = "done"
        job.position = job.total
        job.finished_at = timezone.now()
        job.save(update_fields=["state", "stage", "position", "finished_at", "updated_at"])
        ledger_append(actor=job.created_by, event="ingest.finished", subject=job.source,
                      payload={"job": job.pk, "file": job.original_name, **_counts(job)})
        if job.rows_added:
            documents_embed_later()
    if on_progress:
        on_progress(job)


def _counts(job: IngestJob) -> dict[str, int]:
    return {"read": job.rows_read, "added": job.rows_added, "linked": job.rows_linked,
            "duplicate": job.rows_duplicate, "blocked": job.rows_blocked, "bad": job.rows_bad}


def fields_kept_line(job: IngestJob) -> str:
    """The report's words for the metadata kept: which fields, in how many rows."""
    if not job.fields_kept:
        return "fields kept besides the text: none (the records had no other fields)"
    return "fields kept besides the text (each row's metadata): " + ", ".join(
        f"{name} ({rows} rows)" for name, rows in sorted(job.fields_kept.items()))


def _write_batch(job: IngestJob, batch: Batch) -> None:
    """One transaction: the batch's documents and occurrences, and the job's counters."""
    with transaction.atomic():
        added, linked_new, linked_bytes, blocked = rows_store(batch.staged, source_id=job.source_id,
                                                              job_id=job.pk)
        kept = dict(job.fields_kept)
        for name, rows in batch.fields.items():
            kept[name] = kept.get(name, 0) + rows
        job.fields_kept = kept
        job.rows_metadata_dropped += batch.meta_dropped
        room = max(0, IngestJob.MAX_REPORTED_ERRORS - len(job.errors))
        job.errors = job.errors + batch.bad[:room]
        job.rows_read += batch.rows
        job.rows_added += added
        job.rows_linked += linked_new - added
        job.rows_blocked += blocked
        job.rows_bad += len(batch.bad)
        job.rows_duplicate += len(batch.staged) - linked_new - blocked + batch.in_batch_duplicates
        job.position = batch.position
        job.save(update_fields=["errors", "fields_kept", "rows_metadata_dropped", "rows_read",
                                "rows_added", "rows_linked", "rows_blocked", "rows_bad",
                                "rows_duplicate", "position", "updated_at"])
        if linked_new:
            DataSource.objects.filter(pk=job.source_id).update(
                document_count=F("document_count") + linked_new,
                byte_count=F("byte_count") + linked_bytes)


def rows_store(staged: list[StagedRow], *, source_id: int,
               job_id: int | None) -> tuple[int, int, int, int]:
    """Prepared rows into documents and occurrences of a source, through the staging table (the
    database part of ingest, which `bench/ingest.py`'s floor times alone): (documents added,
    occurrences added, their bytes, texts blocked by a takedown)."""
    if not staged:
        return 0, 0, 0, 0
    with connection.cursor() as cursor:
        cursor.execute(STAGE_DDL)
        # ON COMMIT DELETE ROWS does not fire when the caller's transaction spans batches.
        cursor.execute("TRUNCATE trailmark_ingest_stage")
        copy_rows("trailmark_ingest_stage", STAGE_COLUMNS, staged)
        cursor.execute(INSERT_DOCUMENTS_SQL)
        added = cursor.rowcount
        cursor.execute(INSERT_OCCURRENCES_SQL, {"source": source_id, "job": job_id})
        linked_new, linked_bytes = cursor.fetchone()
        cursor.execute(COUNT_BLOCKED_SQL)
        blocked = cursor.fetchone()[0]
    return added, linked_new, linked_bytes, blocked


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
