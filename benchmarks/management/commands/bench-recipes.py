"""manage.py bench-recipes BENCHMARK: run a recipe benchmark in this process, trial by trial with
a progress bar, and print its leaderboard (the API queues the same run on the workers).
--spec FILE creates the benchmark and its entries from JSON first:

    {"name": "...", "evaluation": "heldout@v1", "token_budget": 200000,
     "training": {"preset": "tiny"}, "seeds": [0, 1, 2], "probes": [...],
     "entries": [{"version": "all@v1", "label": "everything", "reference": true}, ...]}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from benchmarks.engine.leaderboard import table
from benchmarks.models import Benchmark
from benchmarks.services.runs import benchmark_run_create, run_finalize, run_plan, trial_run
from benchmarks.services.setup import benchmark_create, entry_add
from provenance.management.commands.train import find_version


def _refusal(exc: ValidationError) -> CommandError:
    return CommandError("; ".join(f"{k}: {', '.join(v)}" for k, v in exc.message_dict.items()))


def find_benchmark(ref: str) -> Benchmark:
    found = (Benchmark.objects.filter(pk=int(ref)) if ref.isdigit()
             else Benchmark.objects.filter(name=ref)).first()
    if found is None:
        raise CommandError(f"no benchmark {ref!r} (give an id or a name)")
    return found


@transaction.atomic
def create_from_spec(spec: dict[str, Any]) -> Benchmark:
    entries = spec.pop("entries", [])
    if not isinstance(entries, list) or not entries:
        raise CommandError("spec: entries must be a list of {version, label, reference}")
    benchmark = benchmark_create(actor=None, **{
        **spec, "evaluation": find_version(str(spec.get("evaluation", "")))})
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) - {"version", "label", "reference"}:
            raise CommandError(f"spec: entries[{i}] must be {{version, label, reference}}")
        entry_add(actor=None, benchmark=benchmark,
                  version=find_version(str(entry.get("version", ""))),
                  label=str(entry.get("label", "")), reference=bool(entry.get("reference")))
    return benchmark


class Command(BaseCommand):
    help = "Run a recipe benchmark (every entry x seed trained and evaluated); print its board."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("benchmark", nargs="?", help="benchmark id or name")
        parser.add_argument("--spec", type=Path, help="create the benchmark from this JSON")
        parser.add_argument("--json", type=Path, help="also write the run's results here")
        parser.add_argument("--quiet", action="store_true")

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        if bool(opts["benchmark"]) == bool(opts["spec"]):
            raise CommandError("give a benchmark, or --spec FILE to create one")
        try:
            if opts["spec"]:
                try:
                    spec = json.loads(opts["spec"].read_text())
                except (OSError, ValueError) as exc:
                    raise CommandError(f"--spec: {exc}") from exc
                if not isinstance(spec, dict):
                    raise CommandError("--spec: a JSON object")
                benchmark = create_from_spec(spec)
            else:
                benchmark = find_benchmark(opts["benchmark"])
            run = benchmark_run_create(benchmark=benchmark, actor=None, enqueue=False)
        except ValidationError as exc:
            raise _refusal(exc) from exc
        trials = run_plan(run_id=run.pk) or []
        run.refresh_from_db()
        if run.state == run.State.FAILED:
            raise CommandError(f"benchmark run {run.pk} failed: {run.error}")
        bar = tqdm(total=len(trials), unit="trial", desc=benchmark.name,
                   disable=opts["quiet"])
        def step(p: Any) -> None:
            bar.set_postfix(step=f"{p.step}/{p.total_steps}", loss=f"{p.loss:.3f}")

        for trial_id in trials:
            trial_run(trial_id=trial_id, on_progress=step, enqueue_finalize=False)
            bar.update(1)
        bar.close()
        run = run_finalize(run_id=run.pk)
        assert run is not None
        if run.state != run.State.SUCCEEDED:
            raise CommandError(f"benchmark run {run.pk} {run.state}: {run.error}")
        if opts["json"]:
            opts["json"].write_text(json.dumps(run.results, indent=2, default=str))
        self.stdout.write(f"benchmark {benchmark.pk} {benchmark.name}, run {run.pk}: "
                          f"{benchmark.training['max_steps']} steps a seed, seeds "
                          f"{benchmark.seeds}")
        for line in table(run.results):
            self.stdout.write(line)
