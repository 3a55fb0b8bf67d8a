"""A benchmark run through its services, in this process (the worker test runs the chord)."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.core.exceptions import ValidationError

from benchmarks.models import BenchmarkRun, Trial
from benchmarks.services.runs import (
    benchmark_run_create,
    entry_results,
    run_finalize,
    run_plan,
    trial_run,
)
from benchmarks.services.setup import benchmark_create, entry_add
from provenance.models import LedgerEntry, TrainingRun
from provenance.services.documents import document_tombstone
from tests.benchmarks.conftest import BUDGET, RIVER, STEPS, TRAINING, sentences

pytestmark = pytest.mark.django_db


def run_in_process(benchmark) -> BenchmarkRun:  # type: ignore[no-untyped-def]
    run = benchmark_run_create(benchmark=benchmark, actor=None, enqueue=False)
    for trial_id in run_plan(run_id=run.pk) or []:
        trial_run(trial_id=trial_id, enqueue_finalize=False)
    run_finalize(run_id=run.pk)
    run.refresh_from_db()
    return run


def test_every_entry_trains_each_seed_on_the_same_tokens_and_is_ranked_against_the_reference(
        bench_world):
    run = run_in_process(bench_world["benchmark"])
    assert run.state == "succeeded", run.error
    trials = list(run.trials.select_related("training_run", "checkpoint"))
    assert sorted((t.entry.label, t.seed) for t in trials) == sorted(
        (label, s) for label in ("everything", "commercial only") for s in (0, 1, 2))
    for t in trials:  # fixed compute: the same steps whatever the entry's size
        assert t.state == "succeeded" and t.checkpoint.run_id == t.training_run_id
        assert t.training_run.config["seed"] == t.seed
        assert t.checkpoint.metrics["steps"] == STEPS
        assert t.checkpoint.metrics["tokens"] == BUDGET
        assert set(t.scores["domains"]) == {"river (held out)", "stars (held out)"}
        assert t.scores["probe"]["n"] == 2
    results = run.results
    rows = {r["label"]: r for r in results["rows"]}
    assert sorted(r["rank"] for r in rows.values()) == [1, 2]
    assert rows["everything"]["relative"]["mean"] == pytest.approx(1.0)
    assert results["ranking"][0] == min(rows, key=lambda k: rows[k]["bits_per_byte"]["mean"])
    assert 0 <= results["decision_accuracy"]["bits_per_byte"]["accuracy"] <= 1
    assert results["decision_accuracy"]["bits_per_byte"]["comparisons"] == 3
    # The commercial-only entry never saw the stars: it reads their held-out text worse, seed
    # by seed, than the reference that trained on everything (the cost of compliance).
    stars = "stars (held out)"
    assert all(c > e for c, e in zip(rows["commercial only"]["domains"][stars]["seeds"],
                                     rows["everything"]["domains"][stars]["seeds"],
                                     strict=True))
    assert rows["commercial only"]["relative"]["mean"] > 1
    assert rows["commercial only"]["excluded"] == {"license": 30}
    assert rows["everything"]["licence_mix"] == {"commercial": 30, "non-commercial": 30}
    # What the ledger signed is what the run shows.
    entry = LedgerEntry.objects.get(event="benchmark_run.finished")
    assert entry.payload["results_sha256"] == hashlib.sha256(
        json.dumps(results, sort_keys=True).encode()).hexdigest()
    assert entry.payload["ranking"] == results["ranking"]
    # And the version's cards read it.
    [shown] = entry_results(bench_world["commercial"])
    assert (shown["benchmark"], shown["row"]["label"], shown["entries"]) == (
        "tiny bench", "commercial only", 2)


def test_running_a_trial_or_the_finalizer_twice_changes_nothing(bench_world):
    run = run_in_process(bench_world["benchmark"])
    trial = run.trials.first()
    assert trial_run(trial_id=trial.pk) is None or Trial.objects.get(pk=trial.pk).state == \
        "succeeded"
    run_finalize(run_id=run.pk)
    assert LedgerEntry.objects.filter(event="benchmark_run.finished").count() == 1
    assert TrainingRun.objects.count() == 6


def test_an_entry_holding_an_evaluation_text_is_refused_naming_the_version(
        bench_world, ingest_texts, publish_version):
    leaky = publish_version("leaky", sources=[bench_world["sources"]["river"].pk,
                                              bench_world["sources"]["held_river"].pk])
    with pytest.raises(ValidationError) as refused:
        entry_add(actor=None, benchmark=bench_world["benchmark"], version=leaky, label="leaky")
    assert "6 of its documents are texts of the evaluation" in refused.value.message_dict[
        "version"][0]


def test_a_near_duplicate_of_an_evaluation_text_fails_the_run_before_anything_trains(
        bench_world, make_source, ingest_texts, publish_version):
    copier = make_source(license_expression="CC0-1.0", name="copier")
    near = sentences(RIVER, 500, 120) + " heron heron."  # an evaluation text, two words added
    ingest_texts(copier, [near, sentences(RIVER, 900)])
    entry_add(actor=None, benchmark=bench_world["benchmark"], label="near copy",
              version=publish_version("near", sources=[copier.pk]))
    trained_before = TrainingRun.objects.count()
    run = run_in_process(bench_world["benchmark"])
    assert run.state == "failed" and "near copy: 0 same, 1 near-duplicate" in run.error
    assert run.results == {} and not run.trials.exists()
    assert TrainingRun.objects.count() == trained_before
    found = {c["label"]: c for c in run.contamination.values()}
    assert found["near copy"]["examples"][0]["kind"] == "near"
    assert found["everything"]["near"] == found["everything"]["exact"] == 0


def test_a_failed_trial_fails_the_run_and_publishes_no_leaderboard(bench_world):
    for document in bench_world["commercial"].members.all():
        document_tombstone(document=document.document, actor=None, reason="test")
    run = run_in_process(bench_world["benchmark"])
    assert run.state == "failed" and "commercial only seed 0: failed" in run.error
    assert run.results == {}
    assert not LedgerEntry.objects.filter(event="benchmark_run.finished").exists()
    assert LedgerEntry.objects.filter(event="benchmark_run.failed").count() == 1


def test_a_run_needs_a_reference_and_another_entry(bench_world, users):
    bare = benchmark_create(actor=None, name="bare", evaluation=bench_world["evaluation"],
                            token_budget=BUDGET, training=TRAINING)
    with pytest.raises(ValidationError, match="reference"):
        benchmark_run_create(benchmark=bare, actor=None)
    entry_add(actor=None, benchmark=bare, version=bench_world["everything"], label="all",
              reference=True)
    with pytest.raises(ValidationError, match="besides the reference"):
        benchmark_run_create(benchmark=bare, actor=None)


@pytest.mark.parametrize(("options", "field"), [
    ({"training": {"n_embd": 30, "n_head": 4}}, "training"),
    ({"training": {"preset": "huge"}}, "training.preset"),
    ({"training": {"seed": 3}}, "training.seed"),
    ({"training": {"epochs": 3}}, "training.epochs"),
    ({"token_budget": 0}, "token_budget"),
    ({"token_budget": 10}, "token_budget"),
    ({"seeds": [0, 1]}, "seeds"),
    ({"seeds": [0, 0, 1]}, "seeds"),
    ({"probes": [{"prompt": "q", "choices": ["a", "b"], "answer": 2}]}, "probes[0].answer"),
    ({"probes": [{"prompt": "q", "choices": ["a"], "answer": 0}]}, "probes[0].choices"),
    ({"probes": [{"prompt": "", "choices": ["a", "b"], "answer": 0}]}, "probes[0].prompt"),
    ({"probes": ["q"]}, "probes[0]"),
])
def test_bad_benchmark_options_are_refused_by_name(bench_world, options, field):
    with pytest.raises(ValidationError) as refused:
        benchmark_create(actor=None, name="bad", evaluation=bench_world["evaluation"],
                         **{"token_budget": BUDGET, "training": TRAINING, **options})
    assert field in refused.value.message_dict


def test_recovery_resends_a_planning_run_and_a_dead_trial_but_not_a_run_waiting_on_trials(
        bench_world, monkeypatch):
    from celery import current_app

    from core.jobs import jobs_recover

    sent: list[tuple[str, list]] = []
    monkeypatch.setattr(current_app, "send_task",
                        lambda name, args=(), **kw: sent.append((name, list(args))))
    run = benchmark_run_create(benchmark=bench_world["benchmark"], actor=None, enqueue=False)
    trials = run_plan(run_id=run.pk)
    assert trials and BenchmarkRun.objects.get(pk=run.pk).stage == "training"
    Trial.objects.filter(pk=trials[0]).update(state="running")  # its worker died
    resent = [r for r in jobs_recover() if r[0] != "embed"]  # (the fixture's documents wait)
    assert resent == [("benchmark_trial", trials[0])]  # not the run: it waits on its trials
    BenchmarkRun.objects.filter(pk=run.pk).update(stage="checking")  # died while planning
    assert ("benchmark", run.pk) in jobs_recover()
    assert ("benchmarks.run_plan", [run.pk]) in sent


def test_an_evaluation_emptied_by_takedowns_fails_the_trials_by_name(bench_world):
    for member in bench_world["evaluation"].members.all():
        document_tombstone(document=member.document, actor=None, reason="takedown")
    run = run_in_process(bench_world["benchmark"])
    assert run.state == "failed" and "has no documents left" in run.error
    assert run.results == {}
