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
              top: int = 5) -> dict[str, Any]:
    """Each method's top source; pairwise overlap (Jaccard) of the top documents; whether the
    methods that found something agree on the top source."""
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
    return {"top_source": tops, "agree": len(set(tops.values())) <= 1,
            "pairs": pairs}
