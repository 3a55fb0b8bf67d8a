"""manage.py bench-recipes: a benchmark made from a JSON spec, run with its progress, printed."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from benchmarks.models import Benchmark
from tests.benchmarks.conftest import BUDGET, TRAINING

pytestmark = pytest.mark.django_db


def test_bench_recipes_creates_a_benchmark_from_a_spec_runs_it_and_prints_the_board(
        bench_world, tmp_path):
    spec = {"name": "from a spec", "evaluation": str(bench_world["evaluation"].pk),
            "token_budget": BUDGET, "training": TRAINING,
            "entries": [{"version": "everything", "label": "all", "reference": True},
                        {"version": "commercial@v1", "label": "commercial"}]}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    out = StringIO()
    call_command("bench-recipes", "--spec", str(tmp_path / "spec.json"), "--quiet",
                 "--json", str(tmp_path / "results.json"), stdout=out)
    printed = out.getvalue()
    results = json.loads((tmp_path / "results.json").read_text())
    assert [r["label"] for r in results["rows"]] == results["ranking"]
    assert "(reference)" in printed and "decision accuracy (bits_per_byte)" in printed
    assert Benchmark.objects.get(name="from a spec").runs.get().state == "succeeded"
    with pytest.raises(CommandError, match="no benchmark 'nope'"):
        call_command("bench-recipes", "nope")


def test_a_bad_spec_is_refused_naming_the_field(bench_world, tmp_path):
    spec = {"name": "bad", "evaluation": str(bench_world["evaluation"].pk),
            "token_budget": BUDGET, "seeds": [1],
            "entries": [{"version": "everything", "label": "all", "reference": True}]}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    with pytest.raises(CommandError, match="seeds: between 3 and 10"):
        call_command("bench-recipes", "--spec", str(tmp_path / "spec.json"))
    assert not Benchmark.objects.filter(name="bad").exists()
