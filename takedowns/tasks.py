"""Celery entry points: thin, take ids, safe to run twice. The work is in services."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="takedowns.scope", acks_late=True, ignore_result=True,
             soft_time_limit=60 * 60, time_limit=60 * 60 + 300)
def takedown_scope_task(request_id: int) -> None:
    from takedowns.services.scoping import takedown_scope

    takedown_scope(request_id=request_id)
