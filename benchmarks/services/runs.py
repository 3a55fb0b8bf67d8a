"""Running a benchmark: check every entry against the evaluation, train and evaluate each entry
with each seed (one trial each, on the gpu queue, as a chord), then the leaderboard.

Nothing is published until every trial has succeeded: the leaderboard, its ledger entry and
the cards' results are written in one transaction by `run_finalize`. A trial is safe to run
twice (its training resumes from its last saved state, its scores are replaced), and the last
trial to finish sends the finalizer itself, so a trial a recovered worker finished outside the
chord still completes the run.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from benchmarks.models import Benchmark, BenchmarkRun, Entry, Trial
from benchmarks.signals import benchmark_finished
from core.errors import InvalidTransition
from core.jobs import claim_row, job_run
from provenance.ledger.append import ledger_append
from provenance.models import DatasetVersion, Document, ModelCheckpoint, TrainingRun, User

State = BenchmarkRun.State
EXAMPLES = 5  # contaminated texts named per entry


@transaction.atomic
def benchmark_run_create(*, benchmark: Benchmark, actor: User | None,
                         enqueue: bool = True) -> BenchmarkRun:
    entries = list(benchmark.entries.all())
    if not any(e.reference for e in entries):
        raise ValidationError({"benchmark": "no reference entry: enter the version of "
                                            "everything ingested with reference=true"})
    if len(entries) < 2:
        raise ValidationError({"benchmark": "at least one entry besides the reference"})
    if benchmark.runs.filter(state__in=[State.QUEUED, State.RUNNING]).exists():
        raise ValidationError({"benchmark": "a run of this benchmark is under way"})
    run = BenchmarkRun.objects.create(benchmark=benchmark, created_by=actor, unit="trials",
                                      total=len(entries) * len(benchmark.seeds))
    ledger_append(actor=actor, event="benchmark_run.created", subject=run,
                  payload={"benchmark": benchmark.pk, "entries": [e.pk for e in entries],
                           "seeds": benchmark.seeds})
    if enqueue:
        from benchmarks.tasks import run_plan_task

        run_plan_task.delay_on_commit(run.pk)
    return run


def _signatures(version: DatasetVersion) -> list[tuple[str, bytes]]:
    return [(h, bytes(b)) for h, b in Document.objects.filter(memberships__version=version)
            .order_by("sha256").values_list("normalised_sha256", "minhash")]


def run_contamination(benchmark: Benchmark) -> dict[str, Any]:
    """Per entry: its texts that are an evaluation text (normalised hash) or a near-duplicate
    of one (MinHash LSH at the benchmark's threshold, the Jaccard confirmed), with a few
    examples. Reads each entry's signatures once (~0.5 kB a document)."""
    from benchmarks.engine.contamination import contamination

    evaluation = _signatures(benchmark.evaluation)
    eval_shas = list(benchmark.evaluation.members.order_by("document__sha256")
                     .values_list("document__sha256", flat=True))
    out = {}
    for entry in benchmark.entries.select_related("version"):
        found = contamination(evaluation, _signatures(entry.version),
                              benchmark.near_duplicate_threshold)
        out[str(entry.pk)] = {
            "label": entry.label,
            "exact": sum(f.kind == "exact" for f in found),
            "near": sum(f.kind == "near" for f in found),
            "examples": [{"evaluation": eval_shas[f.evaluation], "kind": f.kind,
                          "jaccard": round(f.jaccard, 3)} for f in found[:EXAMPLES]]}
    return out


def run_plan(*, run_id: int) -> list[int] | None:
    """Check the entries, then make a trial (and its training run) per entry and seed; the
    trials to send, or None when there is nothing to do. A contaminated entry fails the run
    before anything trains. Run twice, it keeps the trials it made."""
    with job_run("benchmark", run_id, model=BenchmarkRun,
                 claim=claim_row(BenchmarkRun, stage="checking")) as run:
        if run is None:
            return None
        benchmark = run.benchmark
        if not run.trials.exists():
            found = run_contamination(benchmark)
            BenchmarkRun.objects.filter(pk=run_id).update(contamination=found)
            dirty = [f"{c['label']}: {c['exact']} same, {c['near']} near-duplicate"
                     for c in found.values() if c["exact"] or c["near"]]
            if dirty:
                raise ValueError("entries hold evaluation texts (" + "; ".join(dirty) + "): "
                                 "no entry may train on what it is evaluated on")
            _trials_create(run)
        BenchmarkRun.objects.filter(pk=run_id).update(stage="training", updated_at=timezone.now())
        return list(run.trials.filter(state__in=[State.QUEUED, State.RUNNING])
                    .order_by("pk").values_list("pk", flat=True))
    return None


@transaction.atomic
def _trials_create(run: BenchmarkRun) -> None:
    from provenance.services.training import training_run_create

    benchmark = run.benchmark
    for entry in benchmark.entries.select_related("version").order_by("pk"):
        for seed in benchmark.seeds:
            training = training_run_create(
                version=entry.version, actor=run.created_by, enqueue=False,
                config={**benchmark.training, "seed": seed, "preset": "default"})
            Trial.objects.create(run=run, entry=entry, seed=seed, training_run=training,
                                 unit="steps", created_by=run.created_by)


def evaluation_texts(version: DatasetVersion) -> dict[str, list[str]]:
    """The evaluation's texts by domain (the source each was found in first), in hash order.
    A document removed since (a takedown) is not read."""
    texts: dict[str, list[str]] = defaultdict(list)
    for source, text in (version.members.filter(document__removed_at__isnull=True)
                         .order_by("document__sha256")
                         .values_list("source__name", "document__text")):
        texts[source].append(text)
    return dict(texts)


def trial_scores(checkpoint: ModelCheckpoint, benchmark: Benchmark) -> dict[str, Any]:
    """Bits per byte on each evaluation domain (and their mean: every domain counts alike, as
    Paloma's macro average) and the probe's accuracy. Imports torch: workers only."""
    from benchmarks.engine.evaluate import Probe, domain_scores, probe_answers
    from provenance.engine import lm

    texts = evaluation_texts(benchmark.evaluation)
    if not texts:  # every evaluation text taken down since: nothing left to score on
        raise ValueError(f"the evaluation version {benchmark.evaluation} has no documents left "
                         "(removed since it was chosen): make a new benchmark")
    model, tokenizer = lm.load(checkpoint.local_path)
    scores = domain_scores(model, tokenizer, texts)
    domains = {name: {"bits_per_byte": s.bits_per_byte, "nll": s.nll, "tokens": s.tokens,
                      "bytes": s.bytes} for name, s in sorted(scores.items())}
    out: dict[str, Any] = {"domains": domains, "bits_per_byte": sum(
        d["bits_per_byte"] for d in domains.values()) / max(1, len(domains))}
    if benchmark.probes:
        probes = [Probe(p["prompt"], tuple(p["choices"]), p["answer"]) for p in benchmark.probes]
        picks = probe_answers(model, tokenizer, probes)
        right = sum(pick == p.answer for pick, p in zip(picks, probes, strict=True))
        out["probe"] = {"right": right, "n": len(probes), "accuracy": right / len(probes)}
    return out


class TrialCancelled(Exception):
    """The trial's training was cancelled (its run was): the trial ends cancelled, not failed."""


@transaction.atomic
def benchmark_run_cancel(*, run: BenchmarkRun, actor: User | None) -> BenchmarkRun:
    """Stop a run: its queued trials never start, a training in progress stops at its next
    progress report (its TrainingRun is cancelled), and the run ends cancelled with nothing
    published; the ledger says who stopped it. Only a queued or running run can be cancelled."""
    from provenance.services.training import training_run_cancel

    run = BenchmarkRun.objects.select_for_update().get(pk=run.pk)
    if run.state not in (State.QUEUED, State.RUNNING):
        raise InvalidTransition(f"benchmark run {run.pk}", run.state, "cancel")
    live = list(run.trials.select_for_update().filter(state__in=[State.QUEUED, State.RUNNING])
                .select_related("training_run"))
    for trial in live:
        if trial.training_run.state in (TrainingRun.State.QUEUED, TrainingRun.State.RUNNING):
            training_run_cancel(run=trial.training_run, actor=actor)
    now = timezone.now()
    Trial.objects.filter(pk__in=[t.pk for t in live]).update(
        state=State.CANCELLED, stage="cancelled", finished_at=now, updated_at=now)
    run.state, run.stage, run.finished_at = State.CANCELLED, "cancelled", now
    run.save(update_fields=["state", "stage", "finished_at", "updated_at"])
    ledger_append(actor=actor, event="benchmark_run.cancelled", subject=run,
                  payload={"benchmark": run.benchmark_id, "trials_cancelled": len(live)})
    return run


def trial_run(*, trial_id: int, on_progress: Any = None,
              enqueue_finalize: bool = True) -> Trial | None:
    """Train the trial's run (or resume it), evaluate its checkpoint, record the scores; then,
    if it was the run's last trial, send the finalizer (unless the caller finalizes itself, as
    the CLI does). Safe to call twice."""
    from provenance.services.training import training_run_execute

    with job_run("benchmark_trial", trial_id, model=Trial, cancelled=(TrialCancelled,),
                 claim=claim_row(Trial, stage="training", related=("run__benchmark",))) as trial:
        if trial is None:
            return None

        def progress(p: Any) -> None:
            Trial.objects.filter(pk=trial_id).update(position=p.step, total=p.total_steps,
                                                     updated_at=timezone.now())
            if on_progress:
                on_progress(p)

        training_run_execute(run_id=trial.training_run_id, on_progress=progress)
        training = TrainingRun.objects.get(pk=trial.training_run_id)
        if training.state == TrainingRun.State.CANCELLED:
            raise TrialCancelled(f"training run {training.pk} was cancelled")
        if training.state == TrainingRun.State.FAILED:
            raise RuntimeError(f"training run {training.pk} {training.state}: {training.error}")
        if training.state != TrainingRun.State.SUCCEEDED:
            # Another worker holds the training (a recovered delivery): jobs_recover sends this
            # trial again once its own worker is gone; it then finds the checkpoint.
            return None
        checkpoint = training.checkpoint
        Trial.objects.filter(pk=trial_id).update(stage="evaluating", checkpoint=checkpoint,
                                                 updated_at=timezone.now())
        scores = trial_scores(checkpoint, trial.run.benchmark)
        with transaction.atomic():
            done = Trial.objects.filter(pk=trial_id, state=State.RUNNING).update(
                state=State.SUCCEEDED, stage="done", scores=scores, finished_at=timezone.now(),
                updated_at=timezone.now())
            if done:
                BenchmarkRun.objects.filter(pk=trial.run_id).update(
                    position=F("position") + 1, updated_at=timezone.now())
    trial = Trial.objects.get(pk=trial_id)
    if enqueue_finalize:
        _finalize_when_done(trial.run_id)
    return trial


def _finalize_when_done(run_id: int) -> None:
    if not Trial.objects.filter(run_id=run_id, state__in=[State.QUEUED, State.RUNNING]).exists():
        from benchmarks.tasks import run_finalize_task

        run_finalize_task.delay_on_commit(run_id)


@transaction.atomic
def run_finalize(*, run_id: int) -> BenchmarkRun | None:
    """The leaderboard, once every trial has ended: written with its ledger entry in one
    transaction, or the run failed naming its failed trials (nothing published). Runs once:
    a second call finds the run ended, a call before the last trial ended finds one waiting."""
    run = (BenchmarkRun.objects.select_for_update(of=("self",)).select_related("benchmark")
           .filter(pk=run_id).first())
    if run is None or run.state != State.RUNNING or run.stage != "training":
        return run
    trials = list(run.trials.select_related("entry__version").order_by("entry_id", "seed"))
    if any(t.state in (State.QUEUED, State.RUNNING) for t in trials):
        return run
    failed = [t for t in trials if t.state != State.SUCCEEDED]
    now = timezone.now()
    if failed:
        run.state, run.stage, run.finished_at = State.FAILED, "failed", now
        run.error = "; ".join(f"{t.entry.label} seed {t.seed}: {t.state} {t.error}"[:300]
                              for t in failed)[:2000]
        run.save(update_fields=["state", "stage", "finished_at", "error", "updated_at"])
        ledger_append(actor=run.created_by, event="benchmark_run.failed", subject=run,
                      payload={"failed_trials": [t.pk for t in failed]})
        return run
    run.results = results_compute(run.benchmark, trials)
    run.state, run.stage, run.finished_at = State.SUCCEEDED, "done", now
    run.position = run.total
    run.save(update_fields=["results", "state", "stage", "finished_at", "position",
                            "updated_at"])
    ledger_append(actor=run.created_by, event="benchmark_run.finished", subject=run, payload={
        "benchmark": run.benchmark_id, "ranking": run.results["ranking"],
        "decision_accuracy": {k: v["accuracy"] for k, v in
                              run.results["decision_accuracy"].items()},
        "results_sha256": hashlib.sha256(json.dumps(run.results, sort_keys=True).encode())
        .hexdigest(),
        "checkpoints": sorted(t.checkpoint_id for t in trials if t.checkpoint_id)})
    benchmark_finished.send(sender=BenchmarkRun, run=run,
                            versions=sorted({t.entry.version for t in trials}, key=_pk))
    return run


def _pk(version: DatasetVersion) -> int:
    return int(version.pk)


def results_compute(benchmark: Benchmark, trials: list[Trial]) -> dict[str, Any]:
    """The leaderboard (engine) with each entry's version, size, licence mix, what its recipe
    excluded and its checkpoints beside it."""
    from benchmarks.engine.leaderboard import SeedScores, leaderboard

    by_entry: dict[int, list[Trial]] = defaultdict(list)
    for t in trials:
        by_entry[t.entry_id].append(t)
    entries = {t.entry_id: t.entry for t in trials}
    scores = []
    for entry_id, group in by_entry.items():
        group.sort(key=lambda t: t.seed)
        domains = sorted(group[0].scores["domains"])
        scores.append(SeedScores(
            label=entries[entry_id].label,
            bits_per_byte=[t.scores["bits_per_byte"] for t in group],
            domains={d: [t.scores["domains"][d]["bits_per_byte"] for t in group]
                     for d in domains},
            probe=[t.scores["probe"]["accuracy"] for t in group if "probe" in t.scores]))
    reference = next(e.label for e in entries.values() if e.reference)
    board = leaderboard(scores, reference)
    for row in board["rows"]:
        entry = next(e for e in entries.values() if e.label == row["label"])
        version = entry.version
        row.update({
            "entry": entry.pk, "version": version.pk, "version_name": str(version),
            "documents": version.document_count, "tokens": version.token_estimate,
            "licence_mix": version.counts_by_license_class,
            "excluded": version.exclusions_by_reason,
            "checkpoints": [{"seed": t.seed, "checkpoint": t.checkpoint_id}
                            for t in sorted(by_entry[entry.pk], key=lambda t: t.seed)]})
    return {"metric": "bits_per_byte", "lower_is_better": True, "seeds": benchmark.seeds,
            "reference": reference, "token_budget": benchmark.token_budget,
            "steps": benchmark.training["max_steps"], **board}


def entry_results(version: DatasetVersion) -> list[dict[str, Any]]:
    """The latest finished run of every benchmark this version is entered in: its row, the
    benchmark's name, the entries it was ranked among, and the decision accuracy (for cards)."""
    out = []
    for entry in (Entry.objects.filter(version=version).select_related("benchmark")
                  .order_by("benchmark_id")):
        run = (entry.benchmark.runs.filter(state=State.SUCCEEDED).order_by("-finished_at")
               .first())
        if run is None:
            continue
        row = next((r for r in run.results["rows"] if r.get("entry") == entry.pk), None)
        if row is None:  # entered after that run
            continue
        out.append({"benchmark": entry.benchmark.name, "benchmark_id": entry.benchmark_id,
                    "run": run.pk, "finished_at": run.finished_at, "row": row,
                    "entries": len(run.results["rows"]), "reference": run.results["reference"],
                    "seeds": len(run.results["seeds"]), "steps": run.results["steps"],
                    "decision_accuracy": run.results["decision_accuracy"]
                    .get("bits_per_byte", {}).get("accuracy")})
    return out
