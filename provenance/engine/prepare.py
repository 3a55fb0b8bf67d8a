"""Ingest's CPU work on one batch of rows, pure Python + numpy: normalise, hash, fingerprint and lay
out each distinct text as the row the staging table takes. No Django, so that batches can be
prepared in other processes (`prepare_batches`) while this one writes to the database.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import current_process, get_context

from provenance.engine.readers import Row
from provenance.engine.text import Prepared, language_tag, minhash_signatures, prepare

log = logging.getLogger(__name__)

# The staging table's columns, in the order of a prepared row.
STAGE_COLUMNS = ("sha256, normalised_sha256, text, byte_count, token_estimate, minhash, "
                 "external_id, url, file, line, language, metadata")
StagedRow = tuple[str, str, str, int, int, bytes, str, str, str, int | None, str, str]


@dataclass
class Batch:
    """One batch of rows, prepared, ready to write."""

    rows: int
    position: int
    bad: list[dict[str, object]]
    staged: list[StagedRow]  # one per distinct text
    in_batch_duplicates: int
    fields: Counter[str] = field(default_factory=Counter)  # metadata names kept, by rows
    meta_dropped: int = 0


def _meta_text(row: Row, name: str) -> str:
    value = row.meta.get(name)
    return "" if value is None else str(value)


def prepare_batch(rows: list[Row], position: int) -> Batch:
    good: dict[str, tuple[Prepared, Row]] = {}
    bad: list[dict[str, object]] = []
    for row in rows:
        if row.error is not None:
            bad.append({"file": row.file, "line": row.line, "reason": row.error})
            continue
        doc = prepare(row.text or "")
        if not doc.normalised:
            bad.append({"file": row.file, "line": row.line, "reason": "text is empty"})
        elif doc.sha256 not in good:  # a repeat inside the batch counts as a duplicate
            good[doc.sha256] = (doc, row)
    docs = [doc for doc, _ in good.values()]
    signatures = minhash_signatures([d.normalised for d in docs])
    batch = Batch(rows=len(rows), position=position, bad=bad, staged=[],
                  in_batch_duplicates=len(rows) - len(bad) - len(good))
    for (doc, row), sig in zip(good.values(), signatures, strict=True):
        batch.staged.append((
            doc.sha256, doc.normalised_sha256, doc.text, doc.byte_count, doc.token_estimate, sig,
            _meta_text(row, "id")[:500],
            _meta_text(row, "url")[:2000], row.file[:500], row.line,
            language_tag(_meta_text(row, "language") or _meta_text(row, "lang")),
            json.dumps(row.meta, ensure_ascii=False)))
        batch.fields.update(row.meta.keys())
        batch.meta_dropped += row.meta_dropped
    return batch


def _batches_of(rows: Iterable[Row], positions: Iterator[int], size: int, max_chars: int,
                skip: int) -> Iterator[tuple[list[Row], int]]:
    batch: list[Row] = []
    chars = 0
    for index, row in enumerate(rows):
        if index < skip:  # rows committed by an earlier, interrupted attempt
            continue
        batch.append(row)
        chars += len(row.text or "")
        if len(batch) >= size or chars >= max_chars:
            yield batch, next(positions)
            batch, chars = [], 0
    if batch:
        yield batch, next(positions)


def prepare_batches(rows: Iterable[Row], position: Iterator[int], *, size: int,
                    max_chars: int = 1 << 23, skip: int = 0,
                    processes: int = 0) -> Iterator[Batch]:
    """The batches of `rows` (at most `size` rows or `max_chars` characters of text each: a
    batch of long documents is cut sooner), prepared, in order. With `processes` > 1, batches
    after the first are prepared by that many processes, up to two per process ahead of the
    consumer; the reading stays here. `position` yields the reader's position after each batch
    (read when the batch is cut)."""
    if processes > 1 and current_process().daemon:
        # A Celery prefork pool process is daemonic, and a daemonic process may not start
        # processes: on a worker the parallelism is the shards of a large input, not a pool.
        log.info("ingest preparation in this process: a daemonic process cannot start others")
        processes = 0
    batches = _batches_of(rows, position, size, max_chars, skip)
    first = next(batches, None)
    if first is None:
        return
    yield prepare_batch(*first)
    if processes <= 1:
        for rows_, pos in batches:
            yield prepare_batch(rows_, pos)
        return
    # Spawned, not forked: the parent may be a threaded worker holding database connections.
    # A spawned process imports the parent's main module again; a script that starts work at
    # import (no `if __name__ == "__main__"`) breaks the pool, and the batches are then
    # prepared here instead: slower, never wrong.
    pending: list[tuple[Future[Batch], list[Row], int]] = []
    try:
        with ProcessPoolExecutor(max_workers=processes, mp_context=get_context("spawn")) as pool:
            for rows_, pos in batches:
                pending.append((pool.submit(prepare_batch, rows_, pos), rows_, pos))
                if len(pending) >= 2 * processes:
                    yield pending[0][0].result()
                    pending.pop(0)
            while pending:
                yield pending[0][0].result()
                pending.pop(0)
    except BrokenProcessPool:
        log.warning("ingest preparation processes failed to start or died: preparing here")
        for _, rows_, pos in pending:
            yield prepare_batch(rows_, pos)
        for rows_, pos in batches:
            yield prepare_batch(rows_, pos)
