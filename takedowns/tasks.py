"""Celery entry points: thin, take ids, safe to run twice. The work is in services."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="takedowns.scope", acks_late=True, ignore_result=True,
             soft_time_limit=60 * 60, time_limit=60 * 60 + 300)
def takedown_scope_task(request_id: int) -> None:
    from takedowns.services.scoping import takedown_scope

    takedown_scope(request_id=request_id)


@shared_task(name="takedowns.check_deadlines", ignore_result=True, soft_time_limit=10 * 60,
             time_limit=11 * 60)
def takedown_deadlines_task() -> None:
    from takedowns.services.deadlines import takedown_deadlines_check

    takedown_deadlines_check()
