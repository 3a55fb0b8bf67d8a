"""What every background job shares: one runner at a time, claimed by its row."""

from __future__ import annotations

import contextlib
import logging
import zlib
from collections.abc import Iterator
from typing import Any

from django.db import connection
from django.utils import timezone

log = logging.getLogger(__name__)


@contextlib.contextmanager
def job_lock(kind: str, job_id: int) -> Iterator[bool]:
    """Yield True if this process may run the job. A session-level advisory lock: a duplicate
    delivery of the same task backs off, and the lock goes with the connection if the worker dies
    (then the broker redelivers the task and the job resumes)."""
    key = zlib.crc32(kind.encode()) & 0x7FFFFFFF
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [key, job_id])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [key, job_id])


def job_fail(model: type[Any], job_id: int, exc: BaseException, what: str) -> None:
    """Record a job's failure on its row (the error, truncated, and when), and log it."""
    log.exception("%s %s failed", what, job_id)
    now = timezone.now()
    model.objects.filter(pk=job_id).update(state=model.State.FAILED, error=str(exc)[:2000],
                                           finished_at=now, updated_at=now)
