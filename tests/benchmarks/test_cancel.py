"""Cancelling a benchmark run: its queued trials never start, a training in progress stops at
its next step report and its trial ends cancelled (not failed), nothing is published, and a run
that has ended cannot be cancelled; the API and the page go through the same service."""

from __future__ import annotations

import pytest

from benchmarks.models import BenchmarkRun, Trial
from benchmarks.services.runs import (
    benchmark_run_cancel,
    benchmark_run_create,
    run_finalize,
    run_plan,
    trial_run,
)
from core.errors import InvalidTransition
from provenance.models import LedgerEntry, ModelCheckpoint, TrainingRun

pytestmark = pytest.mark.django_db


def test_a_cancelled_run_stops_its_training_and_publishes_nothing(bench_world):
    run = benchmark_run_create(benchmark=bench_world["benchmark"], actor=None, enqueue=False)
    first, *rest = run_plan(run_id=run.pk) or []
    assert rest

    def cancel_at_the_first_step(progress):  # type: ignore[no-untyped-def]
        if progress.step >= 1 and BenchmarkRun.objects.get(pk=run.pk).state == "running":
            benchmark_run_cancel(run=run, actor=None)

    trial = trial_run(trial_id=first, on_progress=cancel_at_the_first_step,
                      enqueue_finalize=False)
    assert trial is not None and (trial.state, trial.stage) == ("cancelled", "cancelled")
    assert trial.training_run.state == TrainingRun.State.CANCELLED
    assert trial.checkpoint_id is None and not trial.scores
    others = Trial.objects.filter(pk__in=rest)
    assert {t.state for t in others} == {"cancelled"}
    assert {t.training_run.state for t in others} == {TrainingRun.State.CANCELLED}
    assert trial_run(trial_id=rest[0], enqueue_finalize=False) is None  # a late delivery
    assert Trial.objects.get(pk=rest[0]).state == "cancelled"
    trained = Trial.objects.filter(run=run).values_list("training_run_id", flat=True)
    assert not ModelCheckpoint.objects.filter(run_id__in=list(trained)).exists()
    run_finalize(run_id=run.pk)  # the finalizer sent by a late trial changes nothing
    run.refresh_from_db()
    assert (run.state, run.results) == ("cancelled", {})
    entry = LedgerEntry.objects.get(event="benchmark_run.cancelled")
    assert entry.payload["trials_cancelled"] == 1 + len(rest)
    with pytest.raises(InvalidTransition):
        benchmark_run_cancel(run=run, actor=None)


def test_the_api_and_the_page_cancel_a_run_for_those_who_train(bench_world, client_as,
                                                               pages_as):
    run = benchmark_run_create(benchmark=bench_world["benchmark"], actor=None, enqueue=False)
    url = f"/api/v1/benchmark-runs/{run.pk}/cancel/"
    assert client_as("auditor").post(url, {}, format="json").status_code == 403
    page = pages_as("researcher").get(f"/benchmarks/runs/{run.pk}/").content.decode()
    assert "Cancel the run" in page
    assert "Cancel the run" not in pages_as("auditor").get(
        f"/benchmarks/runs/{run.pk}/").content.decode()
    done = client_as("researcher").post(url, {}, format="json")
    assert done.status_code == 200 and done.json()["state"] == "cancelled"
    again = client_as("researcher").post(url, {}, format="json")
    assert again.status_code == 409 and "cancelled" in str(again.json())
    late = pages_as("researcher").post(f"/benchmarks/runs/{run.pk}/")
    assert late.status_code == 409 and "it is cancelled" in late.content.decode()
