"""Celery entry points of the kernel."""

from __future__ import annotations

from celery import shared_task

from core.mail import MAIL_TASK


@shared_task(name="core.send_mail", **MAIL_TASK)
def send_mail_task(subject: str, body: str, recipients: list[str]) -> None:
    from django.core.mail import send_mail

    from core.conf import setting

    send_mail(subject, body, str(setting("TAKEDOWN_FROM_EMAIL")), recipients)
