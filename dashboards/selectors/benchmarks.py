"""The benchmark pages: the list, one benchmark with its leaderboard (a chart of each entry's
bits per byte with its interval over seeds, drawn on the server, and the tables beside it), and
one run with its trials' live progress."""

from __future__ import annotations

from typing import Any

from core.permissions import Capability, can, require

CHART_WIDTH, ROW_HEIGHT, MARGIN = 400, 22, 12


def benchmarks_context(user: Any) -> dict[str, Any]:
    from benchmarks.models import Benchmark

    require(user, Capability.READ_ALL)
    return {"benchmarks": list(Benchmark.objects.select_related("evaluation__dataset")
                               .prefetch_related("entries").order_by("-id")[:200])}


def interval_chart(rows: list[dict[str, Any]], key: str = "bits_per_byte") -> dict[str, Any]:
    """Each row's mean as a dot and its interval as a line on one shared axis (x in SVG units),
    the reference's mean as a vertical rule: rows that differ from it only inside the
    intervals read as such."""
    lows = [r[key]["low"] for r in rows]
    highs = [r[key]["high"] for r in rows]
    lo, hi = min(lows), max(highs)
    pad = (hi - lo) * 0.08 or max(abs(hi), 1e-6) * 0.05
    lo, hi = lo - pad, hi + pad

    def x(v: float) -> float:
        return round(MARGIN + (CHART_WIDTH - 2 * MARGIN) * (v - lo) / (hi - lo), 1)

    marks = [{"label": r["label"], "reference": r["reference"], "y": i * ROW_HEIGHT + 11,
              "mean": r[key]["mean"], "low": r[key]["low"], "high": r[key]["high"],
              "x": x(r[key]["mean"]), "x1": x(r[key]["low"]), "x2": x(r[key]["high"])}
             for i, r in enumerate(rows)]
    reference = next((m for m in marks if m["reference"]), None)
    return {"marks": marks, "height": len(rows) * ROW_HEIGHT + 4, "width": CHART_WIDTH,
            "reference_x": reference["x"] if reference else None,
            "axis": {"low": lo, "high": hi}}


def board_context(results: dict[str, Any]) -> dict[str, Any]:
    if not results.get("rows"):
        return {}
    rows = results["rows"]
    domains = sorted({d for r in rows for d in r["domains"]})
    return {"results": results, "chart": interval_chart(rows), "domains": domains,
            "domain_rows": [{"label": r["label"],
                             "cells": [r["domains"].get(d) for d in domains]} for r in rows],
            "decisions": results.get("decision_accuracy", {})}


def benchmark_context(user: Any, benchmark_id: int, run_id: int | None) -> dict[str, Any] | None:
    from benchmarks.models import Benchmark, BenchmarkRun

    require(user, Capability.READ_ALL)
    benchmark = (Benchmark.objects.select_related("evaluation__dataset")
                 .filter(pk=benchmark_id).first())
    if benchmark is None:
        return None
    runs = list(benchmark.runs.order_by("-id")[:20])
    run = next((r for r in runs if r.pk == run_id), None) if run_id else next(
        (r for r in runs if r.state == BenchmarkRun.State.SUCCEEDED), None)
    entries = list(benchmark.entries.select_related("version__dataset"))
    versions = {e.pk: e.version for e in entries}
    board = board_context(run.results) if run is not None else {}
    for row in board.get("results", {}).get("rows", []):
        row["version_obj"] = versions.get(row.get("entry"))
    return {"benchmark": benchmark, "entries": entries, "runs": runs, "run": run, **board,
            "can_run": can(user, Capability.TRAIN)}


def benchmark_run_context(user: Any, run_id: int) -> dict[str, Any] | None:
    from benchmarks.models import BenchmarkRun

    require(user, Capability.READ_ALL)
    run = BenchmarkRun.objects.select_related("benchmark").filter(pk=run_id).first()
    if run is None:
        return None
    trials = list(run.trials.select_related("entry").order_by("entry_id", "seed"))
    return {"run": run, "trials": trials, "benchmark": run.benchmark,
            "contamination": list(run.contamination.values()), **board_context(run.results),
            "can_cancel": can(user, Capability.TRAIN) and run.state in ("queued", "running")}
