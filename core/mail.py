"""E-mail leaves the request that caused it: it is sent by a retried Celery task once the
transaction commits. A mail server that is down or refuses never answers 500 to a request that
was saved (a client that retried would file twice); the task tries again with backoff."""

from __future__ import annotations

import smtplib
from functools import partial
from typing import Any

from django.db import transaction

# What a mail server that is down, slow or refusing raises: worth another try later.
MAIL_ERRORS: tuple[type[BaseException], ...] = (smtplib.SMTPException, OSError)

# 30 s, 1 min, 2 min, ... up to 1 h between tries, jittered; about a day of tries in all.
MAIL_TASK: dict[str, Any] = {
    "acks_late": True, "ignore_result": True, "autoretry_for": MAIL_ERRORS,
    "retry_backoff": 30, "retry_backoff_max": 3600, "retry_jitter": True, "max_retries": 24,
    "soft_time_limit": 120, "time_limit": 150,
}


def mail_on_commit(subject: str, body: str, recipients: list[str]) -> None:
    """Send a plain-text message from TAKEDOWN_FROM_EMAIL once this transaction commits."""
    if not recipients:
        return
    from core.tasks import send_mail_task

    transaction.on_commit(partial(send_mail_task.delay, subject, body, list(recipients)))
