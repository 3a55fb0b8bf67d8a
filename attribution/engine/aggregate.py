"""From ranked documents per method to shares per source and per licence class, and where the
methods disagree. Pure Python: no Django.

Each method's positive evidence is turned into shares over sources (a method's scores are on its
own scale, so each method is normalised on its own); the combined share of a source is the mean
of its shares over the methods that found any evidence. Methods disagree when their top sources
differ; the report shows each method's top source and the overlap of their top documents.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any


@dataclass(frozen=True)
class Evidence:
    method: str
    source: int
    document: int | None
    score: float


def method_shares(evidence: Sequence[Evidence]) -> dict[str, dict[int, float]]:
    """{method: {source: share}}, shares of positive scores summing to 1 per method."""
    totals: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for item in evidence:
        if item.score > 0:
            totals[item.method][item.source] += item.score
    out = {}
    for method, by_source in totals.items():
        whole = sum(by_source.values())
        out[method] = {s: v / whole for s, v in sorted(by_source.items())}
    return out


def combined_shares(per_method: Mapping[str, Mapping[int, float]]) -> dict[int, float]:
    if not per_method:
        return {}
    total: dict[int, float] = defaultdict(float)
    for shares in per_method.values():
        for source, share in shares.items():
            total[source] += share / len(per_method)
    return dict(sorted(total.items(), key=lambda kv: (-kv[1], kv[0])))


def group_shares(shares: Mapping[int, float], group_of: Mapping[int, str]) -> dict[str, float]:
    """Shares summed by a property of the source (its licence class, its licence)."""
    out: dict[str, float] = defaultdict(float)
    for source, share in shares.items():
        out[group_of.get(source, "unknown")] += share
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def agreement(evidence: Sequence[Evidence], per_method: Mapping[str, Mapping[int, float]],
              top: int = 5, methods: Sequence[str] = ()) -> dict[str, Any]:
    """Each method's top source; pairwise overlap (Jaccard) of the top documents; which of the
    `methods` asked for found nothing; and a `status` that says what agrees, if anything:
    "none" (no method found evidence), "single" (one did: nothing to compare), "disagree"
    (different top sources), "source" (the same top source, top documents apart) or "agree"
    (the same top source, and every pair of document-level methods shares a top document).
    `agree` is True for "agree" only."""
    tops = {m: max(shares.items(), key=lambda kv: (kv[1], -kv[0]))[0]
            for m, shares in per_method.items() if shares}
    docs: dict[str, list[int]] = defaultdict(list)
    for item in sorted(evidence, key=lambda e: (e.method, -e.score)):
        if item.document is not None and item.score > 0 and len(docs[item.method]) < top:
            docs[item.method].append(item.document)
    pairs = []
    for a, b in combinations(sorted(docs), 2):
        union = set(docs[a]) | set(docs[b])
        pairs.append({"methods": [a, b],
                      "top_documents_jaccard": round(len(set(docs[a]) & set(docs[b]))
                                                     / len(union), 3) if union else 0.0})
    silent = sorted(set(methods) - set(tops))
    if not tops:
        status = "none"
    elif len(tops) == 1:
        status = "single"
    elif len(set(tops.values())) > 1:
        status = "disagree"
    elif any(p["top_documents_jaccard"] == 0 for p in pairs):
        status = "source"
    else:
        status = "agree"
    return {"top_source": tops, "status": status, "agree": status == "agree",
            "found_nothing": silent, "pairs": pairs}


def agreement_sentence(found: Mapping[str, Any], name: Mapping[int, str]) -> str:
    """What agrees, said for an auditor: which source, how much the top documents overlap, and
    which methods found nothing. `name`: source id -> name. Reports made before `status`
    existed are read by their `agree` flag."""
    tops = {m: name.get(int(s), f"source {s}") for m, s in found.get("top_source", {}).items()}
    status = found.get("status") or ("agree" if found.get("agree") else "disagree")
    silent = found.get("found_nothing") or []
    tail = f" {', '.join(silent)} found nothing." if silent else ""
    overlaps = [p["top_documents_jaccard"] for p in found.get("pairs", [])]
    spread = f"{min(overlaps):.2f}" if overlaps and min(overlaps) == max(overlaps) else \
        f"{min(overlaps or [0]):.2f} to {max(overlaps or [0]):.2f}"
    overlap = (f"their top documents overlap by {spread} (Jaccard of the top 5)" if overlaps
               else "no two of them rank documents")
    if status == "none":
        return "No method found evidence." + tail
    if status == "single":
        [(method, source)] = tops.items()
        return f"Only {method} found evidence (top source: {source}): nothing to compare." + tail
    if status == "disagree":
        return ("No: the methods point to different top sources ("
                + "; ".join(f"{m}: {s}" for m, s in tops.items()) + ")." + tail)
    source = next(iter(tops.values()))
    if status == "source":
        return (f"On the source only: {', '.join(tops)} all point to {source}, but {overlap}: "
                f"they credit different documents." + tail)
    return f"Yes: {', '.join(tops)} all point to {source}, and {overlap}." + tail


# Cheap baselines: shown beside the evidence, never part of the shares or of `agreement`.
BASELINES = ("bm25",)
# What a baseline is compared with, and what it is compared against.
EVIDENCE_METHODS = ("influence", "spans")
CHEAP = ("bm25", "embedding")


def _top_documents(evidence: Sequence[Evidence], method: str, top: int) -> list[int]:
    ranked = sorted((e for e in evidence if e.method == method and e.document is not None
                     and e.score > 0), key=lambda e: -e.score)
    return [e.document for e in ranked[:top] if e.document is not None]


def baseline_check(evidence: Sequence[Evidence], per_method: Mapping[str, Mapping[int, float]],
                   top: int = 5) -> dict[str, dict[str, Any]]:
    """For influence and spans (where they found evidence): their top source, and against each
    cheap baseline (BM25 and embedding neighbours) the baseline's top source (None: it found
    nothing or did not run) and top documents, whether the top sources are the same, and the
    Jaccard overlap of the top documents."""
    tops = {m: max(shares.items(), key=lambda kv: (kv[1], -kv[0]))[0]
            for m, shares in per_method.items() if shares}
    out: dict[str, dict[str, Any]] = {}
    for method in EVIDENCE_METHODS:
        if method not in tops:
            continue
        mine = set(_top_documents(evidence, method, top))
        against = {}
        for cheap in CHEAP:
            theirs = _top_documents(evidence, cheap, top)
            union = mine | set(theirs)
            against[cheap] = {
                "top_source": tops.get(cheap), "top_documents": theirs,
                "same_top_source": tops.get(cheap) == tops[method],
                "top_documents_jaccard": round(len(mine & set(theirs)) / len(union), 3)
                if union else 0.0}
        out[method] = {"top_source": tops[method], "against": against}
    return out


def baseline_sentence(check: Mapping[str, Mapping[str, Any]], name: Mapping[int, str]) -> str:
    """Whether influence and spans say what the cheap baselines say, for an auditor."""
    def source(pk: Any) -> str:
        return name.get(int(pk), f"source {pk}")

    lines = []
    for method, found in check.items():
        parts, differ = [], []
        for cheap, other in found["against"].items():
            label = "BM25" if cheap == "bm25" else "embedding neighbours"
            if other.get("top_source") is None:
                parts.append(f"{label} found nothing")
                continue
            parts.append(f"{label}: {source(other['top_source'])}, top-document overlap "
                         f"{other['top_documents_jaccard']:.2f}")
            if not other["same_top_source"]:
                differ.append(label)
        head = f"{method[:1].upper()}{method[1:]}'s top source is {source(found['top_source'])}"
        verdict = (f"{head}, which is not the top source of {' nor '.join(differ)}: it says "
                   f"something the cheap baselines do not" if differ else
                   f"{head}, as the cheap baselines that found anything say")
        lines.append(f"{verdict} ({'; '.join(parts)}).")
    return " ".join(lines) if lines else "No influence or span evidence to compare with."


def evaluation_sentence(evaluation: Mapping[str, Any]) -> str:
    """What the benchmark measured for the influence configuration a report used, for an
    auditor: held-out LDS with its interval against the goal, the best peer's and BM25's."""
    def lds(figures: Mapping[str, Any]) -> str:
        low, high = figures["lds_ci"]
        return f"LDS {figures['lds']:.3f} [95% CI {low:.3f}, {high:.3f}]"

    named = [evaluation[k] for k in ("benchmark", "world") if evaluation.get(k)]
    where = f" ({'; '.join(named)})" if named else ""
    if not evaluation.get("applies"):
        return f"No evaluated configuration applies: {evaluation['reason']}{where}."
    goal = evaluation.get("goal") or {}
    missed = goal and (evaluation["lds"] < goal["lds"]
                       or evaluation["lds_ci"][0] < goal["lower_bound"])
    text = (f"The configuration this run used ({evaluation['configuration']}) scored "
            f"{lds(evaluation)} on worlds it was not tuned on"
            + (f", below the goal (LDS {goal['lds']:.2f}, lower bound {goal['lower_bound']:.2f})"
               if missed else "") + ", recall@1 "
            f"{evaluation['recall_at_1']:.3f}, strict recall@2 "
            f"{evaluation['strict_recall_at_2']:.3f}")
    best, bm25 = evaluation.get("best_peer"), evaluation.get("bm25")
    if best:
        if evaluation["lds_ci"][0] > best["lds_ci"][1]:
            verdict = "ahead of it"
        elif evaluation["lds"] > best["lds"]:
            verdict = "level with it within the intervals"
        else:
            verdict = "not ahead of it"
        text += f"; the best peer, {best['method']}, scored {lds(best)}: influence is {verdict}"
    if bm25 and (not best or best["method"] != "BM25"):
        text += f"; BM25 scored {lds(bm25)}"
    return text + where + "."
