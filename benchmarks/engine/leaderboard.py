"""A benchmark's leaderboard from its trials' scores: each entry's mean over seeds with a t
interval, per domain and over the domains, its probe accuracy, its quality relative to the
reference seed by seed (the cost of compliance), the ranking, and how often seeds agree on it.
numpy and scipy only: no Django."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.engine import metrics


@dataclass(frozen=True)
class SeedScores:
    """One entry's scores, in the benchmark's seed order."""

    label: str
    bits_per_byte: Sequence[float]                     # the domains' mean, per seed
    domains: Mapping[str, Sequence[float]]             # per domain, per seed
    probe: Sequence[float] = ()                        # accuracy per seed (none: no probe)


def _interval(values: Sequence[float]) -> dict[str, Any]:
    return {**asdict(metrics.seed_interval(values)), "seeds": [float(v) for v in values]}


def leaderboard(entries: Sequence[SeedScores], reference: str) -> dict[str, Any]:
    """Rows best first by bits per byte (lower is better), each with its rank, its intervals
    and its ratio to the reference (1.05: 5% more bits per byte than everything ingested, the
    quality a recipe gives up; below 1, it gained). Decision accuracy over every pair of
    entries, for bits per byte and, with a probe, for its accuracy (higher is better)."""
    by_label = {e.label: e for e in entries}
    if reference not in by_label:
        raise ValueError(f"no reference entry {reference!r}")
    bpb = {e.label: list(e.bits_per_byte) for e in entries}
    order = metrics.ranking(bpb)
    ref = by_label[reference]
    rows = []
    for rank, label in enumerate(order, 1):
        entry = by_label[label]
        rows.append({
            "label": label, "rank": rank, "reference": label == reference,
            "bits_per_byte": _interval(entry.bits_per_byte),
            "relative": asdict(metrics.relative_to(entry.bits_per_byte, ref.bits_per_byte)),
            "domains": {name: _interval(values) for name, values in sorted(entry.domains.items())},
            "probe": _interval(entry.probe) if len(entry.probe) else None,
        })
    decisions: dict[str, Any] = {}
    if len(entries) >= 2:
        decisions["bits_per_byte"] = _decision(metrics.decision_accuracy(bpb))
        if all(len(e.probe) for e in entries):
            decisions["probe"] = _decision(metrics.decision_accuracy(
                {e.label: list(e.probe) for e in entries}, lower_is_better=False))
    return {"ranking": order, "rows": rows, "decision_accuracy": decisions}


def _decision(decision: metrics.Decision) -> dict[str, Any]:
    return {"accuracy": decision.accuracy, "comparisons": decision.comparisons,
            "pairs": [{"a": a, "b": b, "agreement": v}
                      for (a, b), v in sorted(decision.pairs.items())]}


def table(results: Mapping[str, Any]) -> list[str]:
    """The leaderboard as fixed-width lines (the CLI and bench/ print it)."""
    lines = [f"{'rank':>4}  {'entry':<24} {'bits/byte (95% CI over seeds)':<30} "
             f"{'vs reference':<22} {'probe':<6} {'docs':>7}  excluded"]
    for row in results["rows"]:
        b, r = row["bits_per_byte"], row["relative"]
        probe = f"{row['probe']['mean']:.2f}" if row.get("probe") else "-"
        excluded = ", ".join(f"{k} {v}" for k, v in sorted((row.get("excluded") or {}).items()))
        versus = "(reference)" if row["reference"] else \
            f"x{r['mean']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"
        lines.append(
            f"{row['rank']:>4}  {row['label'][:24]:<24} "
            f"{b['mean']:.4f} [{b['low']:.4f}, {b['high']:.4f}]    {versus:<22} "
            f"{probe:<6} {row.get('documents', 0):>7}  {excluded or '-'}")
    for metric, d in results.get("decision_accuracy", {}).items():
        lines.append(f"decision accuracy ({metric}): {d['accuracy']:.3f} over "
                     f"{d['comparisons']} seed comparisons")
    return lines
