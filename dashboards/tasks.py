"""Celery entry points of the dashboards app (queue "default")."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="dashboards.card_render", acks_late=True, ignore_result=True,
             soft_time_limit=10 * 60, time_limit=11 * 60)
def card_render_task(version_id: int) -> None:
    from dashboards.services import version_card_render

    version_card_render(version_id=version_id)
