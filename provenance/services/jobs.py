"""What every background job shares: one runner at a time, claimed by its row."""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator

from django.db import connection


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
