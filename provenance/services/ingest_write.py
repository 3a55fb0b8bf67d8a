"""Ingest's database side, shared by a job read whole and by the shards of a large one: the
staging table and its SQL, one batch's transaction (its documents, occurrences and the job's
counters), and the end of a job.

A batch's rows go in `sha256` order and its occurrences in document order, so that shards
writing the same texts at once take their row locks in one order and never deadlock.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from core.conf import setting
from provenance.engine.prepare import STAGE_COLUMNS, Batch, StagedRow
from provenance.engine.readers import ReadScope
from provenance.ledger.append import ledger_append
from provenance.models import DataSource, IngestJob, IngestShard
from provenance.services.embeddings import documents_embed_later
from provenance.services.staging import copy_rows

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
ORDER BY sha256
ON CONFLICT (sha256) DO NOTHING
"""
# A text seen twice in one input keeps the occurrence of its first line, whichever shard wrote
# first (a later line of the same job and file gives way; `xmax = 0` marks a row inserted,
# not updated, so only new occurrences are counted).
INSERT_OCCURRENCES_SQL = """
WITH linked AS (
    INSERT INTO provenance_occurrence AS o (document_id, source_id, external_id, url,
                                            ingest_job_id, file, line, metadata, created_at)
    SELECT d.id, %(source)s, s.external_id, s.url, %(job)s, s.file, s.line, s.metadata, now()
    FROM trailmark_ingest_stage s JOIN provenance_document d ON d.sha256 = s.sha256
    WHERE d.removed_at IS NULL
    ORDER BY d.id
    ON CONFLICT (source_id, document_id) DO UPDATE
        SET external_id = excluded.external_id, url = excluded.url, line = excluded.line,
            metadata = excluded.metadata
        WHERE o.ingest_job_id = excluded.ingest_job_id AND o.file = excluded.file
          AND excluded.line < o.line
    RETURNING document_id, (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted),
       coalesce(sum(d.byte_count) FILTER (WHERE inserted), 0)
FROM linked JOIN provenance_document d ON d.id = linked.document_id
"""
COUNT_BLOCKED_SQL = f"""
SELECT count(*) FROM trailmark_ingest_stage s
WHERE NOT EXISTS (SELECT 1 FROM provenance_document d
                  WHERE d.sha256 = s.sha256 AND d.removed_at IS NULL)
  AND {_BLOCKED}
"""


class ShardStopped(Exception):
    """The job a shard belongs to stopped (another shard failed it): this batch is not
    written, and the shard waits, queued, for the job's retry."""


def ingest_options() -> dict[str, int]:
    return {"batch_size": int(setting("INGEST_BATCH_SIZE")),
            "batch_chars": int(setting("INGEST_BATCH_CHARS")),
            "max_bytes": int(setting("INGEST_MAX_DOC_BYTES"))}


def read_scope(path: Path) -> ReadScope:
    """Where an ingest of `path` may read: the import folders, the uploads folder and the input
    itself; never the state folder (secret key, ledger key, database), wherever links point."""
    uploads = (Path(settings.ARTIFACT_DIR) / "uploads").resolve()
    allowed = (*setting("IMPORT_DIRS"), uploads, path.resolve())
    return ReadScope(allowed=tuple(allowed), denied=(Path(settings.STATE_DIR).resolve(),))


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


def batch_write(job: IngestJob, batch: Batch, shard: IngestShard | None = None) -> IngestJob:
    """One transaction: the batch's documents and occurrences, and the job's counters (and the
    shard's place, for a shard). A shard's job row is read under a row lock, last, since the
    job's other shards advance it too; returns the job row as written."""
    with transaction.atomic():
        added, linked_new, linked_bytes, blocked = rows_store(batch.staged, source_id=job.source_id,
                                                              job_id=job.pk)
        if linked_new:
            DataSource.objects.filter(pk=job.source_id).update(
                document_count=F("document_count") + linked_new,
                byte_count=F("byte_count") + linked_bytes)
        if shard is None:
            job.position = batch.position
        else:
            job = IngestJob.objects.select_for_update().get(pk=job.pk)
            if job.state != IngestJob.State.RUNNING:
                raise ShardStopped(f"ingest job {job.pk} is {job.state}")
            job.position += batch.position - shard.position
            shard.position = batch.position
            shard.rows_read += batch.rows
            shard.save(update_fields=["position", "rows_read", "updated_at"])
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
        job.save(update_fields=["errors", "fields_kept", "rows_metadata_dropped", "rows_read",
                                "rows_added", "rows_linked", "rows_blocked", "rows_bad",
                                "rows_duplicate", "position", "updated_at"])
    return job


def ingest_counts(job: IngestJob) -> dict[str, int]:
    return {"read": job.rows_read, "added": job.rows_added, "linked": job.rows_linked,
            "duplicate": job.rows_duplicate, "blocked": job.rows_blocked, "bad": job.rows_bad}


def ingest_finish(job: IngestJob, **payload: object) -> None:
    """Mark a job whose every row is written as succeeded, log it, and queue the embedding of
    what it added; in the caller's transaction."""
    job.state = IngestJob.State.SUCCEEDED
    job.stage = "done"
    job.position = job.total
    job.finished_at = timezone.now()
    job.save(update_fields=["state", "stage", "position", "finished_at", "errors", "updated_at"])
    ledger_append(actor=job.created_by, event="ingest.finished", subject=job.source,
                  payload={"job": job.pk, "file": job.original_name, **ingest_counts(job),
                           **payload})
    if job.rows_added:
        documents_embed_later()
