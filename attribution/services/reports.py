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
import re
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from attribution.models import AttributionReport, AttributionResult, AttributionRun
from core.conf import setting
from provenance.engine.canonical import canonical_hash
from provenance.ledger.append import ledger_append
from provenance.models import Document

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


# bench/attribution_eval.py names each influence configuration it measured this way.
EVALUATED = re.compile(r"^influence, (\d+) checkpoints?, damping ([0-9.e-]+)")
COMPARED = ("max_dim", "k_max", "fisher")
FIGURES = ("lds", "lds_ci", "recall_at_1", "strict_recall_at_2", "mrr")


def influence_evaluation(run: AttributionRun) -> dict[str, Any] | None:
    """The evaluated configuration that applies to this run's influence: the benchmark's
    held-out figures (with their 95% intervals) for an index over as many checkpoints with the
    same projection, Fisher and damping, the best peer's and BM25's beside them; `applies` False
    (with the reason) when nothing measured matches. None when the run has no gradient index."""
    import json

    index = run.gradient_index
    if index is None or Method.INFLUENCE not in run.methods:
        return None
    path = Path(setting("ATTRIBUTION_EVALUATION"))
    try:
        bench = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"applies": False, "reason": "no evaluation results on this installation"}
    n = len(index.snapshots)
    out: dict[str, Any] = {"benchmark": f"bench/results/{path.name}", "checkpoints": n}
    if not isinstance(bench, dict) or bench.get("format") != 2:
        return {**out, "applies": False, "reason": "the evaluation results predate held-out "
                                                   "worlds: rerun bench/attribution_eval.py"}
    try:
        return _applicable(bench, index.spec, out)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        return {**out, "applies": False, "reason": "the evaluation results are unreadable"}


def _applicable(bench: dict[str, Any], spec: dict[str, Any],
                out: dict[str, Any]) -> dict[str, Any]:
    n = out["checkpoints"]
    heldout = bench["results"]["heldout"]["0.5"]
    out["world"] = (f"{bench['worlds'] - 1} held-out fact worlds, knobs chosen on world 0; "
                    f"{bench['subsets']} models on random halves; 95% bootstrap intervals")
    differ = [k for k in COMPARED if bench["default_spec"].get(k) != spec.get(k)]
    if differ:
        return {**out, "applies": False,
                "reason": f"the index's {', '.join(differ)} differ from the evaluated ones"}
    measured = {(int(m[1]), float(m[2])): name for name in heldout
                if (m := EVALUATED.match(name))}
    name = measured.get((n, float(spec.get("damping", -1))))
    if name is None:
        return {**out, "applies": False, "reason": (
            f"no evaluation over {n} checkpoint(s) at damping {spec.get('damping')} "
            f"(measured: {', '.join(f'{c} at {d}' for c, d in sorted(measured))})")}
    peers = {k: v for k, v in heldout.items() if not k.startswith(("influence", "empirical"))}
    best = max(peers, key=lambda k: peers[k]["lds"]) if peers else None
    return {**out, "applies": True, "configuration": name,
            **{k: heldout[name][k] for k in FIGURES},
            "goal": {"lds": 0.70, "lower_bound": 0.65},
            "best_peer": best and {"method": best, "lds": peers[best]["lds"],
                                   "lds_ci": peers[best]["lds_ci"]},
            "bm25": {k: peers["BM25"][k] for k in ("lds", "lds_ci")} if "BM25" in peers else None}


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
