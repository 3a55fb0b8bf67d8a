"""Attribution reports: a stable, versioned document per run for auditors.

The body names everything a rerun needs to reproduce it (the checkpoint and its digest, the
output and its digest, each index with its parameters and generation, each method's parameters)
and holds the results, shares and agreement, the cheap baselines beside influence and spans, and
the evaluated configuration (with its figures) that applies to the run's influence. Its RFC 8785
canonical form is hashed, and the hash goes into the ledger in the same transaction. Text of
documents removed by a takedown is never put in a report: they are listed as blocked.
"""

from __future__ import annotations

import hashlib
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from attribution.models import AttributionReport, AttributionResult, AttributionRun
from provenance.engine.canonical import canonical_hash
from provenance.models import Document
from provenance.services.ledger import ledger_append

EXCERPT = 240
Method = AttributionRun.Method


def _indexes(run: AttributionRun) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if run.span_index is not None:
        out["span_index"] = {"id": run.span_index.pk, "state": run.span_index.state,
                             "shards": run.span_index.shards}
    if run.gradient_index is not None:
        g = run.gradient_index
        out["gradient_index"] = {"id": g.pk, "state": g.state, "generation": g.generation,
                                 "spec": g.spec, "dim": g.dim, "rows": g.rows,
                                 "snapshots": g.snapshots, "removed": len(g.removed)}
    return out


def _documents(results: list[AttributionResult]) -> dict[str, Any]:
    ids = {r.document_id for r in results if r.document_id is not None}
    out = {}
    for doc in Document.objects.filter(pk__in=ids).only("pk", "sha256", "text", "removed_at"):
        blocked = doc.removed_at is not None
        out[str(doc.pk)] = {"sha256": doc.sha256, "blocked": blocked,
                            "excerpt": None if blocked else doc.text[:EXCERPT]}
    return out


# What bench/attribution_eval.py measured, by the number of checkpoints an index sums over.
EVALUATED = {1: "influence x1", 3: "influence, 3 checkpoints", 6: "influence, 6 checkpoints"}
COMPARED = ("max_dim", "k_max", "fisher", "damping")


def influence_evaluation(run: AttributionRun) -> dict[str, Any] | None:
    """The evaluated configuration that applies to this run's influence: the benchmark's figures
    for an index over as many checkpoints with the same projection, Fisher and damping, and
    where they were measured; `applies` False (with the reason) when nothing measured matches.
    None when the run has no gradient index."""
    import json

    from django.conf import settings

    index = run.gradient_index
    if index is None or Method.INFLUENCE not in run.methods:
        return None
    path = Path(settings.BASE_DIR) / "bench" / "results" / "attribution_eval.json"
    try:
        bench = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"applies": False, "reason": "no evaluation results on this installation"}
    n = len(index.snapshots)
    out: dict[str, Any] = {"benchmark": "bench/results/attribution_eval.json",
                           "world": "fact world, the one its knobs were chosen on: no held-out "
                                    "world and no interval yet",
                           "checkpoints": n}
    name = EVALUATED.get(n)
    differ = [k for k in COMPARED if bench.get("spec", {}).get(k) != index.spec.get(k)]
    if name is None or name not in bench.get("results", {}):
        return {**out, "applies": False,
                "reason": f"no evaluation over {n} checkpoint(s) (measured: 1, 3, 6)"}
    if differ:
        return {**out, "applies": False,
                "reason": f"the index's {', '.join(differ)} differ from the evaluated ones"}
    figures = bench["results"][name]
    return {**out, "applies": True, "configuration": name,
            **{k: figures[k] for k in ("lds", "recall_at_1", "strict_recall_at_2", "mrr")
               if k in figures}, "lds_interval": None}


def report_body(run: AttributionRun) -> dict[str, Any]:
    output, checkpoint = run.output, run.output.checkpoint
    results = list(run.results.order_by("method", "rank"))
    return {
        "format": AttributionReport.FORMAT,
        "generator": f"trailmark {package_version('trailmark')}",
        "run": run.pk,
        "created_at": timezone.now().isoformat(),
        "checkpoint": {"id": checkpoint.pk, "name": checkpoint.name, "sha256": checkpoint.sha256,
                       "version": checkpoint.version_id},
        "output": {"id": output.pk, "prompt": output.prompt, "completion": output.completion,
                   "decoding": output.params,
                   "sha256": hashlib.sha256(
                       f"{output.prompt}\0{output.completion}".encode()).hexdigest()},
        "methods": run.methods,
        "params": run.params,
        "indexes": _indexes(run),
        "notes": run.notes,
        "results": [{"method": r.method, "rank": r.rank, "document": r.document_id,
                     "source": r.source_id, "score": r.score, "evidence": r.evidence}
                    for r in results],
        "documents": _documents(results),
        "summary": run.summary,
        "influence_evaluation": influence_evaluation(run),
    }


@transaction.atomic
def attribution_report_write(*, run: AttributionRun) -> AttributionReport:
    body = report_body(run)
    digest = canonical_hash(body)
    entry = ledger_append(actor=run.created_by, event="attribution.report", subject=run,
                          payload={"run": run.pk, "output": run.output_id, "sha256": digest,
                                   "format": AttributionReport.FORMAT})
    return AttributionReport.objects.create(run=run, body=body, sha256=digest,
                                            ledger_entry=entry)


def report_verify(report: AttributionReport) -> bool:
    """The stored body still hashes to the digest in the ledger."""
    return (canonical_hash(report.body) == report.sha256 and report.ledger_entry is not None
            and report.ledger_entry.payload.get("sha256") == report.sha256)
