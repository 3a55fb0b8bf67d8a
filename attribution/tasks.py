"""Celery entry points of attribution; every `attribution.*` task is routed to the gpu queue."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="attribution.generate", acks_late=True, ignore_result=True,
             soft_time_limit=15 * 60, time_limit=16 * 60)
def generate_task(output_id: int) -> None:
    from attribution.services.outputs import model_output_generate

    model_output_generate(output_id=output_id)


@shared_task(name="attribution.span_index_build", acks_late=True, ignore_result=True,
             soft_time_limit=6 * 60 * 60, time_limit=6 * 60 * 60 + 300)
def span_index_build_task(index_id: int) -> None:
    from attribution.services.spans import span_index_build

    span_index_build(index_id=index_id)
