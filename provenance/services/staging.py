"""A curation's decisions, staged in the database rather than in the worker.

A `Plan` is a temporary table of this database session with one row per candidate document: its
position (sha256 order), the source it is counted under, and its exclusion reason (NULL for a
member). Deciding streams into it in batches and the version is written from it by
`INSERT … SELECT`, so a worker's memory stays O(batch) whatever the corpus; the table belongs to
the session, so a worker that dies leaves nothing behind, and a transaction that rolls back takes
it with it.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db import connection, transaction

from provenance.engine.merkle import manifest_root_stream


@dataclass
class PlanTotals:
    members: int = 0
    tokens: int = 0
    bytes: int = 0
    by_source: Counter[str] = field(default_factory=Counter)
    by_class: Counter[str] = field(default_factory=Counter)
    by_reason: Counter[str] = field(default_factory=Counter)


class Plan:
    """The staged decisions of one curation (see the module's docstring)."""

    def __init__(self) -> None:
        self.table = f"curation_plan_{secrets.token_hex(6)}"
        with connection.cursor() as cursor:
            cursor.execute(f"""
                CREATE TEMPORARY TABLE {self.table} (
                    position bigint PRIMARY KEY, document_id bigint NOT NULL,
                    source_id bigint NOT NULL, reason varchar(32), detail text NOT NULL,
                    held boolean NOT NULL DEFAULT false)""")

    def copy(self, rows: Iterable[tuple[int, int, int, str | None, str, bool]]) -> None:
        """Add decisions: (position, document, source, reason or None, detail, held out)."""
        copy_rows(self.table, "position, document_id, source_id, reason, detail, held", rows)

    def execute(self, sql: str, params: Any = None) -> int:
        """Run a statement over the stage (`{plan}` in it names the table); rows touched."""
        with connection.cursor() as cursor:
            cursor.execute(sql.replace("{plan}", self.table), params)
            return int(cursor.rowcount)

    def count(self, where: str, params: Any = None) -> int:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {self.table} WHERE {where}", params)
            return int(cursor.fetchone()[0])

    def totals(self) -> PlanTotals:
        totals = PlanTotals()
        with connection.cursor() as cursor:
            cursor.execute(f"""
                SELECT p.source_id, s.use_class, count(*), sum(d.token_estimate), sum(d.byte_count)
                FROM {self.table} p JOIN provenance_document d ON d.id = p.document_id
                JOIN provenance_datasource s ON s.id = p.source_id
                WHERE p.reason IS NULL GROUP BY p.source_id, s.use_class""")
            for source, use_class, count, tokens, size in cursor.fetchall():
                totals.members += count
                totals.tokens += int(tokens)
                totals.bytes += int(size)
                totals.by_source[str(source)] += count
                totals.by_class[use_class] += count
            cursor.execute(f"SELECT reason, count(*) FROM {self.table} "
                           f"WHERE reason IS NOT NULL GROUP BY reason")
            totals.by_reason.update(dict(cursor.fetchall()))
        return totals

    def manifest_root(self) -> str:
        """The members' manifest root, streamed in sha256 order (O(log n) hashes held)."""
        return manifest_root_query(f"""
            SELECT d.sha256 FROM {self.table} p JOIN provenance_document d
            ON d.id = p.document_id WHERE p.reason IS NULL ORDER BY d.sha256""")

    def write_version(self, version_id: int) -> None:
        """The members and exclusions of a version, straight from the stage."""
        self.execute("""
            INSERT INTO provenance_versionmember (version_id, document_id, source_id)
            SELECT %s, document_id, source_id FROM {plan} WHERE reason IS NULL
            ORDER BY document_id""", [version_id])
        self.execute("""
            INSERT INTO provenance_versionexclusion (version_id, document_id, source_id, reason,
                                                     detail)
            SELECT %s, document_id, source_id, reason, left(detail, 500) FROM {plan}
            WHERE reason IS NOT NULL ORDER BY document_id""", [version_id])

    def drop(self) -> None:
        self.execute("DROP TABLE IF EXISTS {plan}")

    # Reading the decisions back (tests, previews): lists, so for small corpora only.

    @property
    def members(self) -> list[tuple[int, int, str]]:
        """(document, source, sha256) of each member, in sha256 order."""
        with connection.cursor() as cursor:
            cursor.execute(f"""
                SELECT p.document_id, p.source_id, d.sha256 FROM {self.table} p
                JOIN provenance_document d ON d.id = p.document_id
                WHERE p.reason IS NULL ORDER BY d.sha256""")
            return [tuple(row) for row in cursor.fetchall()]  # type: ignore[misc]

    @property
    def exclusions(self) -> list[tuple[int, int, str, str]]:
        """(document, source, reason, detail) of each exclusion, in the order decided."""
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT document_id, source_id, reason, detail FROM {self.table} "
                           f"WHERE reason IS NOT NULL ORDER BY position")
            return [tuple(row) for row in cursor.fetchall()]  # type: ignore[misc]


def copy_rows(table: str, columns: str, rows: Iterable[tuple]) -> None:
    with connection.cursor() as cursor, cursor.copy(
            f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


_PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no extension
_PGCOPY_TRAILER = b"\xff\xff"


def copy_bigints(table: str, columns: Sequence[str], *values: np.ndarray) -> None:
    """COPY columns of 64-bit integers in PostgreSQL's binary format, laid out by numpy (no
    Python per row: the band keys of a batch are millions of rows)."""
    fields: list[tuple[str, str]] = [("count", ">i2")]
    for i in range(len(values)):
        fields += [(f"size{i}", ">i4"), (f"value{i}", ">i8")]
    rows = np.empty(len(values[0]), dtype=np.dtype(fields))
    rows["count"] = len(values)
    for i, column in enumerate(values):
        rows[f"size{i}"] = 8
        rows[f"value{i}"] = column
    with connection.cursor() as cursor, cursor.copy(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(_PGCOPY_HEADER + rows.tobytes() + _PGCOPY_TRAILER)


def manifest_root_query(sql: str, params: Any = None) -> str:
    """The manifest root of the sha256 hashes a query gives in order, streamed through a
    server-side cursor (in a transaction of its own if the caller has none)."""
    with transaction.atomic(), connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        return manifest_root_stream(_column(cursor))


def _column(cursor: Any, size: int = 10_000) -> Iterator[str]:
    while rows := cursor.fetchmany(size):
        yield from (value for (value,) in rows)
