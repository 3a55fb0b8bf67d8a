"""What every background job shares: one runner at a time, claimed by its row."""

from __future__ import annotations

import contextlib
import logging
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Recoverable:
    """A kind of job whose runner holds `job_lock(lock, id)` while the job is running; `running`
    gives the rows that say they are, `task` (a name) resumes one from its id."""

    lock: str
    task: str
    running: Callable[[], Any]  # () -> QuerySet of the rows marked running


# Filled by each app's AppConfig.ready(), so that provenance imports no other app.
RECOVERABLE: list[Recoverable] = []


def recoverable(lock: str, task: str, running: Callable[[], Any]) -> None:
    if not any(r.lock == lock for r in RECOVERABLE):
        RECOVERABLE.append(Recoverable(lock, task, running))


def recoverable_jobs(*kinds: tuple[str, str, Any]) -> None:
    """(lock, task, model) for `Job` models: their rows in state running."""
    def running(model: Any) -> Callable[[], Any]:
        return lambda: model.objects.filter(state=model.State.RUNNING)

    for lock, task, model in kinds:
        recoverable(lock, task, running(model))


def _lock_free(kind: str, job_id: int) -> bool:
    with job_lock(kind, job_id) as mine:
        return mine


def jobs_recover() -> list[tuple[str, int]]:
    """Resume the jobs whose worker died. A row marked running whose lock nobody holds has no
    runner: its worker process was killed (the lock went with its database connection). Its
    task is sent again and the job resumes from what it committed, as every runner does on a
    redelivery; without this it waited for the broker's redelivery, up to its visibility
    timeout (2 hours). The embedding backlog is picked up the same way. Returns what was sent."""
    from celery import current_app

    from provenance.services.embeddings import documents_embed_later, embedding_backlog

    sent = []
    for kind in RECOVERABLE:
        for job_id in kind.running().values_list("pk", flat=True):
            if _lock_free(kind.lock, job_id):
                current_app.send_task(kind.task, args=[job_id])
                log.warning("job=%s id=%s state=running runner=none action=resumed",
                            kind.lock, job_id)
                sent.append((kind.lock, job_id))
    if embedding_backlog() and _lock_free("embed", 0):
        documents_embed_later()
        sent.append(("embed", 0))
    return sent
