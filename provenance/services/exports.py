"""A dataset version's records, exported: one record per member document, with its text as
submitted, both hashes, its source and licence, and its record's metadata.

The whole export (JSON Lines, or Parquet) is written once per version and state of removal to a
file under the artifacts folder (a temporary name, then renamed), so that it is served with a
stable sha256: the digest a Croissant card gives for it. A document removed by a takedown after
the version was published is left out of every later export (its hash stays in the manifest),
so such an export has another name and another digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from provenance.engine.records import COLUMNS, FORMATS, jsonl_line
from provenance.models import DatasetVersion

BATCH = 2_000

_RECORDS = """
SELECT d.id, d.sha256, d.normalised_sha256, d.text, s.name, s.license_expression, d.language,
       coalesce(o.external_id, ''), coalesce(o.url, ''), coalesce(o.metadata, '{}'::jsonb)
FROM provenance_versionmember m
JOIN provenance_document d ON d.id = m.document_id
JOIN provenance_datasource s ON s.id = m.source_id
LEFT JOIN provenance_occurrence o ON o.document_id = m.document_id AND o.source_id = m.source_id
WHERE m.version_id = %s AND d.removed_at IS NULL AND d.id > %s
ORDER BY d.id
"""


@dataclass(frozen=True)
class Export:
    path: Path
    sha256: str
    byte_count: int
    media_type: str


def records(version: DatasetVersion, *, after: int = 0,
            limit: int | None = None) -> Iterator[dict[str, Any]]:
    """The version's records in document id order, from just after `after`; removed documents
    left out. Read with a server-side cursor: memory stays flat however large the version."""
    sql = _RECORDS + (f" LIMIT {int(limit)}" if limit is not None else "")
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, [version.pk, after])
        while rows := cursor.fetchmany(BATCH):
            for row in rows:
                record = dict(zip(COLUMNS, row, strict=True))
                if isinstance(record["metadata"], str):
                    record["metadata"] = json.loads(record["metadata"])
                yield record


def _removal_state(version: DatasetVersion) -> str:
    """A short key of which members are removed: exports differ exactly when it does."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT d.id FROM provenance_versionmember m JOIN provenance_document d "
                       "ON d.id = m.document_id WHERE m.version_id = %s AND "
                       "d.removed_at IS NOT NULL ORDER BY d.id", [version.pk])
        removed = ",".join(str(pk) for (pk,) in cursor.fetchall())
    return hashlib.sha256(removed.encode()).hexdigest()[:12]


def _write_jsonl(version: DatasetVersion, handle: Any) -> None:
    for record in records(version):
        handle.write(jsonl_line(record))


def _write_parquet(version: DatasetVersion, handle: Any) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("id", pa.int64())] + [(name, pa.string()) for name in COLUMNS[1:]])
    with pq.ParquetWriter(handle, schema, compression="zstd") as writer:
        batch: list[dict[str, Any]] = []
        for record in records(version):
            batch.append({**record, "metadata": json.dumps(record["metadata"],
                                                           ensure_ascii=False)})
            if len(batch) >= BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        writer.write_table(pa.Table.from_pylist(batch, schema=schema))


def version_export(version: DatasetVersion, fmt: str = "jsonl") -> Export:
    """The version's export in `fmt`, written now unless this state of it already was."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    folder = Path(settings.ARTIFACT_DIR) / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"version-{version.pk}-{_removal_state(version)}.{fmt}"
    sidecar = path.with_name(path.name + ".sha256")
    if not (path.exists() and sidecar.exists()):
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                (_write_jsonl if fmt == "jsonl" else _write_parquet)(version, handle)
            digest = hashlib.sha256()
            with open(tmp, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
            os.replace(tmp, path)
            sidecar.write_text(digest.hexdigest())
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return Export(path=path, sha256=sidecar.read_text().strip(),
                  byte_count=path.stat().st_size, media_type=FORMATS[fmt])


def manifest_lines(version: DatasetVersion) -> Iterator[str]:
    """The manifest: every member's sha256, sorted, one per line (removed ones included: the
    manifest is the version as published)."""
    return (f"{h}\n" for h in version.members.order_by("document__sha256")
            .values_list("document__sha256", flat=True).iterator(chunk_size=5000))


def manifest_sha256(version: DatasetVersion) -> str:
    digest = hashlib.sha256()
    for line in manifest_lines(version):
        digest.update(line.encode())
    return digest.hexdigest()
