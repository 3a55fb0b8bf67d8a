"""Celery entry points of attribution; every `attribution.*` task is routed to the gpu queue."""

from __future__ import annotations

from celery import shared_task

from core.jobs import JOB_TASK


@shared_task(name="attribution.generate", **JOB_TASK,
             soft_time_limit=15 * 60, time_limit=16 * 60)
def generate_task(output_id: int) -> None:
    from attribution.services.outputs import model_output_generate

    model_output_generate(output_id=output_id)


@shared_task(name="attribution.span_index_build", **JOB_TASK,
             soft_time_limit=6 * 60 * 60, time_limit=6 * 60 * 60 + 300)
def span_index_build_task(index_id: int) -> None:
    from attribution.services.spans import span_index_build

    span_index_build(index_id=index_id)


@shared_task(name="attribution.gradient_index_build", **JOB_TASK,
             soft_time_limit=10 * 60, time_limit=11 * 60)
def gradient_index_build_task(index_id: int) -> None:
    """Plan the build and hand it to a chord: one task per (snapshot, shard), then finalize.
    Shard tasks go to the gpu queue, so every GPU worker takes a share."""
    from celery import chord

    from attribution.services.influence import gradient_index_plan

    pieces = gradient_index_plan(index_id=index_id)
    if pieces is None:
        return
    chord(gradient_shard_task.si(index_id, snap, shard, ids) for snap, shard, ids in pieces)(
        gradient_index_finalize_task.si(index_id))


# ignore_result=False: a chord counts its header's results in the result backend.
@shared_task(name="attribution.gradient_shard", **{**JOB_TASK, "ignore_result": False},
             soft_time_limit=2 * 60 * 60, time_limit=2 * 60 * 60 + 300)
def gradient_shard_task(index_id: int, snapshot: str, shard: int, doc_ids: list[int]) -> bool:
    from attribution.services.influence import gradient_shard_build

    return gradient_shard_build(index_id=index_id, snapshot=snapshot, shard=shard,
                                doc_ids=doc_ids)


@shared_task(name="attribution.gradient_index_finalize", **JOB_TASK,
             soft_time_limit=60 * 60, time_limit=60 * 60 + 300)
def gradient_index_finalize_task(index_id: int) -> None:
    from attribution.services.influence import gradient_index_finalize

    gradient_index_finalize(index_id=index_id)


@shared_task(name="attribution.run_execute", **JOB_TASK,
             soft_time_limit=55 * 60, time_limit=60 * 60)
def attribution_run_task(run_id: int) -> None:
    """Run it, or end at once while its indexes build: their last step sends it again. The
    second look closes a race: an index that finished after this run looked, while this task
    still held the run's lock, sent a task that found the lock held and backed off."""
    from attribution.services.runs import (
        Outcome,
        attribution_run_execute,
        attribution_run_waiting,
    )

    while attribution_run_execute(run_id=run_id) is Outcome.WAITING:
        if attribution_run_waiting(run_id):
            return
