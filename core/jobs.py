"""How every background job runs: one runner at a time, claimed by its row, its end recorded.

A runner is a `job_run` block:

    with job_run("ingest", job_id, model=IngestJob) as job:
        if job is None:
            return None          # another worker has it, or it has finished
        ...                      # the work; an exception is recorded on the row

`job_run` takes the job's advisory lock (a duplicate delivery backs off; the lock goes with the
database connection if the worker dies, which is how `jobs_recover` tells a dead runner from a
live one), claims the row, and records a failure or a cancellation with its error. It logs the
start, the end and a failure as key=value lines (`job=ingest id=7 event=failed seconds=3.2
error=...`). A *transient* error (a lost database connection, a deadlock, a serialization
failure, the server shutting down) is not recorded: the row stays running and `TransientError`
reaches the Celery task, which `JOB_TASK` retries with backoff; the runner resumes from what it
committed, as it does after a redelivery.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    InterfaceError,
    OperationalError,
    connection,
    connections,
    transaction,
)
from django.utils import timezone

from core.conf import setting

log = logging.getLogger(__name__)

Row = TypeVar("Row")

# SQLSTATEs worth a retry: the transaction lost a race, or the server went away under it.
_TRANSIENT_STATES = {
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "57P01", "57P02", "57P03",  # admin_shutdown, crash_shutdown, cannot_connect_now
    "08000", "08001", "08003", "08004", "08006",  # connection exceptions
}


class TransientError(Exception):
    """A job stopped by a transient database error; its task is retried (see `JOB_TASK`)."""


def is_transient(exc: BaseException) -> bool:
    """A lost connection (no SQLSTATE: the client saw the socket close), a closed one, or one
    of the retryable SQLSTATEs above. Every other error is the job's own and is recorded."""
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    state = getattr(exc.__cause__, "sqlstate", None)
    return state is None or state in _TRANSIENT_STATES


# Options every job task shares: late acks (a killed worker's task is redelivered), no result,
# and a retry with backoff (5 s, 10 s, ... up to 5 min, jittered) on a transient error.
JOB_TASK: dict[str, Any] = {
    "acks_late": True, "ignore_result": True, "autoretry_for": (TransientError,),
    "retry_backoff": 5, "retry_backoff_max": 300, "retry_jitter": True, "max_retries": 6,
}


@contextlib.contextmanager
def job_lock(kind: str, job_id: int) -> Iterator[bool]:
    """Yield True if this process may run the job. A session-level advisory lock: a duplicate
    delivery of the same task backs off, and the lock goes with the connection if the worker dies
    (then the job is sent again and resumes)."""
    key = zlib.crc32(kind.encode()) & 0x7FFFFFFF
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [key, job_id])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired and connection.connection is not None:  # closed: its lock went with it
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [key, job_id])
            except DatabaseError:
                # The connection is gone, and the session's lock with it.
                log.warning("job=%s id=%s event=unlock_skipped reason=connection_lost",
                            kind, job_id)


def claim_row(model: type[Any], *, stage: str | None = None,
              related: tuple[str, ...] = ()) -> Callable[[int], Any]:
    """The usual claim of a `core.models.Job` row: a queued or running row (running: its last
    runner was interrupted, so it resumes) is marked running, row-locked; None otherwise."""
    def claim(job_id: int) -> Any:
        with transaction.atomic():
            row = (model.objects.select_for_update(of=("self",)).select_related(*related)
                   .filter(pk=job_id).first())
            if row is None or row.state not in (model.State.QUEUED, model.State.RUNNING):
                return None
            row.state = model.State.RUNNING
            row.started_at = row.started_at or timezone.now()
            fields = ["state", "started_at", "updated_at"]
            if stage is not None:
                row.stage = stage
                fields.append("stage")
            row.save(update_fields=fields)
            return row

    return claim


def fail_row(model: type[Any]) -> Callable[[int, BaseException], None]:
    """Record a `Job` row's failure: the error (truncated) and when."""
    def fail(job_id: int, exc: BaseException) -> None:
        now = timezone.now()
        model.objects.filter(pk=job_id).update(state=model.State.FAILED, error=str(exc)[:2000],
                                               finished_at=now, updated_at=now)

    return fail


def cancel_row(model: type[Any]) -> Callable[[int], None]:
    def cancel(job_id: int) -> None:
        now = timezone.now()
        model.objects.filter(pk=job_id).update(state=model.State.CANCELLED, stage="cancelled",
                                               finished_at=now, updated_at=now)

    return cancel


_side = threading.local()


def job_progress(model: type[Any], job_id: int, position: int) -> None:
    """Record how far a running job has got, so that the jobs board sees it at once, also from
    inside the job's own transaction (a curation decides and writes its version in one): there
    the row is written on a connection of its own, in autocommit. Progress is advice: a row some
    other transaction holds locked is skipped rather than waited for."""
    if not connection.in_atomic_block:
        model.objects.filter(pk=job_id).update(position=position, updated_at=timezone.now())
        return
    side = getattr(_side, "connection", None)
    if side is None:
        side = _side.connection = connections.create_connection(DEFAULT_DB_ALIAS)
    table = model._meta.db_table
    with side.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET position = %s, updated_at = now() WHERE id = "
                       f"(SELECT id FROM {table} WHERE id = %s FOR UPDATE SKIP LOCKED)",
                       [position, job_id])


def job_progress_close() -> None:
    """Close this thread's progress connection, if it opened one."""
    side = getattr(_side, "connection", None)
    if side is not None:
        side.close()
        _side.connection = None


def job_fail(model: type[Any], job_id: int, exc: BaseException, what: str) -> None:
    """Record a failure outside a `job_run` block (a shard of a chord) and log it."""
    log.error("job=%s id=%s event=failed error=%r", what, job_id, str(exc)[:500],
              exc_info=exc)
    fail_row(model)(job_id, exc)


def _kv(value: object) -> str:
    text = str(value).replace("\n", " ")
    return text if text and " " not in text and "=" not in text else repr(text[:500])


@contextlib.contextmanager
def job_run(kind: str, job_id: int, *, model: type[Any] | None = None,
            claim: Callable[[int], Row | None] | None = None,
            fail: Callable[[int, BaseException], None] | None = None,
            cancelled: tuple[type[BaseException], ...] = (),
            cancel: Callable[[int], None] | None = None) -> Iterator[Row | None]:
    """Run one job (see the module's docstring). `model` gives the `Job`-row defaults for
    `claim`, `fail` and `cancel`; a runner whose state lives elsewhere passes its own. The block
    gets the claimed row, or None when the lock is held or the claim found nothing to do."""
    claim = claim or (claim_row(model) if model is not None else None)
    fail = fail or (fail_row(model) if model is not None else None)
    cancel = cancel or (cancel_row(model) if model is not None else None)
    if claim is None or fail is None:
        raise TypeError("job_run needs a model or both claim and fail")
    with job_lock(kind, job_id) as mine:
        row = claim(job_id) if mine else None
        if row is None:
            log.info("job=%s id=%s event=skipped reason=%s", kind, job_id,
                     "not_runnable" if mine else "locked")
            yield None
            return
        started = time.monotonic()
        log.info("job=%s id=%s event=started", kind, job_id)
        try:
            yield row
        except cancelled:
            if cancel is not None:
                cancel(job_id)
            log.info("job=%s id=%s event=cancelled seconds=%.1f", kind, job_id,
                     time.monotonic() - started)
        except Exception as exc:
            seconds = time.monotonic() - started
            if is_transient(exc):
                log.warning("job=%s id=%s event=interrupted seconds=%.1f error=%s action=retry",
                            kind, job_id, seconds, _kv(exc))
                if not connection.in_atomic_block:
                    connection.close()  # the next attempt opens a fresh one (lock released)
                raise TransientError(f"{kind} {job_id}: {exc}") from exc
            log.error("job=%s id=%s event=failed seconds=%.1f error=%s", kind, job_id, seconds,
                      _kv(exc), exc_info=exc)
            fail(job_id, exc)
        else:
            log.info("job=%s id=%s event=finished seconds=%.1f", kind, job_id,
                     time.monotonic() - started)


@dataclass(frozen=True)
class Recoverable:
    """A kind of job whose runner holds `job_lock(lock, id)` while it runs: `running` gives the
    ids that say they are running, `resume` sends one again; `stale` (for `Job` rows) takes the
    ids of jobs queued and untouched since a time, marking them touched."""

    lock: str
    running: Callable[[], Iterable[int]]
    resume: Callable[[int], None]
    stale: Callable[[Any], list[int]] | None = None


# Filled by each app's AppConfig.ready(): core knows no app.
RECOVERABLE: list[Recoverable] = []


def recoverable(lock: str, running: Callable[[], Iterable[int]],
                resume: Callable[[int], None],
                stale: Callable[[Any], list[int]] | None = None) -> None:
    if not any(r.lock == lock for r in RECOVERABLE):
        RECOVERABLE.append(Recoverable(lock, running, resume, stale))


def send_again(task: str) -> Callable[[int], None]:
    def resume(job_id: int) -> None:
        from celery import current_app

        current_app.send_task(task, args=[job_id])

    return resume


def recoverable_rows(lock: str, task: str, rows: Callable[[], Any]) -> None:
    """A kind whose running jobs are the rows of a queryset; resumed by sending `task`."""
    recoverable(lock, lambda: rows().values_list("pk", flat=True), send_again(task))


def recoverable_jobs(*kinds: tuple[str, str, Any]) -> None:
    """(lock, task, model) for `Job` models: their rows in state running resume, and those
    queued too long are sent again."""
    def running(model: Any) -> Callable[[], Iterable[int]]:
        return lambda: model.objects.filter(state=model.State.RUNNING).values_list(
            "pk", flat=True)

    for lock, task, model in kinds:
        recoverable(lock, running(model), send_again(task), queued_stale(model))


def queued_stale(model: Any) -> Callable[[Any], list[int]]:
    """The `stale` of a `Job` model: its rows queued and untouched since a time, marked touched."""
    def queued_before(cutoff: Any) -> list[int]:
        with transaction.atomic():
            ids = list(model.objects.select_for_update(skip_locked=True).filter(
                state=model.State.QUEUED, updated_at__lt=cutoff).values_list("pk", flat=True))
            model.objects.filter(pk__in=ids).update(updated_at=timezone.now())
        return ids

    return queued_before


def _lock_free(kind: str, job_id: int) -> bool:
    with job_lock(kind, job_id) as mine:
        return mine


def jobs_recover() -> list[tuple[str, int]]:
    """Resume the jobs whose worker died, and send again the ones left queued too long
    (`_queued_resend`). A job marked running whose lock nobody holds has no
    runner: its worker process was killed (the lock went with its database connection). It is
    sent again and resumes from what it committed, as every runner does on a redelivery; without
    this it waited for the broker's redelivery, up to its visibility timeout (2 hours). Returns
    what was sent."""
    sent = []
    for kind in RECOVERABLE:
        for job_id in kind.running():
            if _lock_free(kind.lock, job_id):
                kind.resume(job_id)
                log.warning("job=%s id=%s event=resumed reason=no_runner", kind.lock, job_id)
                sent.append((kind.lock, job_id))
    sent += _queued_resend()
    return sent


def _queued_resend() -> list[tuple[str, int]]:
    """A job still queued JOB_RESEND_QUEUED_AFTER seconds after it was last touched may be one
    whose message the broker lost (a Redis restarted without persistence): it is sent again, at
    most once per that period. Safe if the message was only slow: whichever delivery comes
    second finds the job claimed (locked, or no longer queued) and does nothing."""
    cutoff = timezone.now() - timedelta(seconds=int(setting("JOB_RESEND_QUEUED_AFTER")))
    sent = []
    for kind in RECOVERABLE:
        for job_id in kind.stale(cutoff) if kind.stale else []:
            kind.resume(job_id)
            log.warning("job=%s id=%s event=resent reason=queued_too_long", kind.lock, job_id)
            sent.append((kind.lock, job_id))
    return sent
