"""Benchmarks' tasks: thin, by id, safe to run twice. `benchmarks.trial` is routed to the gpu
queue (training and evaluation); planning and the leaderboard run on the default queue."""

from __future__ import annotations

from celery import shared_task

from core.jobs import JOB_TASK


@shared_task(name="benchmarks.run_plan", **JOB_TASK,
             soft_time_limit=60 * 60, time_limit=60 * 60 + 300)
def run_plan_task(run_id: int) -> None:
    """Check the entries, make the trials, and send them as a chord: one trial per entry and
    seed, spread over the gpu workers, then the leaderboard."""
    from celery import chord

    from benchmarks.services.runs import run_plan

    trials = run_plan(run_id=run_id)
    if trials:
        chord(trial_task.si(t) for t in trials)(run_finalize_task.si(run_id))
    elif trials is not None:  # every trial ended already (a rerun of the planner)
        run_finalize_task.delay(run_id)


# ignore_result=False: a chord counts its header's results in the result backend.
@shared_task(name="benchmarks.trial", **{**JOB_TASK, "ignore_result": False},
             soft_time_limit=12 * 60 * 60, time_limit=12 * 60 * 60 + 600)
def trial_task(trial_id: int) -> bool:
    from benchmarks.services.runs import trial_run

    return trial_run(trial_id=trial_id) is not None


@shared_task(name="benchmarks.run_finalize", **JOB_TASK,
             soft_time_limit=10 * 60, time_limit=11 * 60)
def run_finalize_task(run_id: int) -> None:
    from benchmarks.services.runs import run_finalize

    run_finalize(run_id=run_id)
