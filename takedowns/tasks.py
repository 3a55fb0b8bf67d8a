"""Celery entry points: thin, take ids, safe to run twice. The work is in services."""

from __future__ import annotations

from celery import shared_task

from core.jobs import JOB_TASK
from core.mail import MAIL_TASK


@shared_task(name="takedowns.scope", **JOB_TASK,
             soft_time_limit=60 * 60, time_limit=60 * 60 + 300)
def takedown_scope_task(request_id: int) -> None:
    from takedowns.services.scoping import takedown_scope

    takedown_scope(request_id=request_id)


@shared_task(name="takedowns.notify_claimant", **MAIL_TASK)
def takedown_notify_task(request_id: int, state: str) -> None:
    from takedowns.services.workflow import takedown_notify

    takedown_notify(request_id, state)


@shared_task(name="takedowns.check_deadlines", ignore_result=True, soft_time_limit=10 * 60,
             time_limit=11 * 60)
def takedown_deadlines_task() -> None:
    from takedowns.services.deadlines import takedown_deadlines_check

    takedown_deadlines_check()


# Model remediation runs long on the gpu queue ("takedowns.unlearn_*" is routed there). acks_late:
# a killed worker's task is redelivered and the run resumes from its last saved state.
@shared_task(name="takedowns.unlearn_run", **JOB_TASK,
             soft_time_limit=6 * 60 * 60, time_limit=6 * 60 * 60 + 600)
def unlearn_run_task(run_id: int) -> None:
    from takedowns.services.unlearning import unlearning_run_execute

    unlearning_run_execute(run_id=run_id)


@shared_task(name="takedowns.unlearn_verify", **JOB_TASK,
             soft_time_limit=2 * 60 * 60, time_limit=2 * 60 * 60 + 600)
def unlearn_verify_task(request_id: int) -> None:
    from takedowns.services.verification import takedown_verify

    takedown_verify(request_id=request_id)
