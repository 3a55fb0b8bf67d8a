"""The spans of a model output: maximal verbatim matches, filtered to the rare and long ones,
and the share of the output each document covers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from attribution.engine.spans.packed import PackedSpans
from attribution.engine.spans.shard import Span, SpanDocument, SpanShard


@dataclass(frozen=True)
class SpanParams:
    min_length: int = 8       # tokens
    max_count: int = 100      # a span seen more often than this is a common phrase
    max_docs: int = 10        # documents listed per span
    max_density: float = 0.1  # at most this many spans per output token

    def validate(self) -> None:
        if self.min_length < 1 or self.max_count < 1 or self.max_docs < 1:
            raise ValueError("min_length, max_count and max_docs must be positive")
        if not 0 < self.max_density <= 1:
            raise ValueError("max_density must be in (0, 1]")




def find_spans(shards: Sequence[SpanShard] | PackedSpans, query: Sequence[int],
               params: SpanParams, blocked: frozenset[int] = frozenset()) -> list[Span]:
    """Maximal verbatim spans of `query` across all shards, longest first."""
    params.validate()
    index = shards if isinstance(shards, PackedSpans) else PackedSpans.pack(shards)
    spans: list[Span] = []
    covered_to = 0
    lengths, lows, highs = index.match(query)
    best = lengths.max(axis=0) if len(lengths) else np.zeros(len(query), dtype=np.int64)
    for start in range(len(query)):
        length = int(best[start])
        if length == 0 or start + length <= covered_to:
            continue  # inside a longer span that starts earlier
        covered_to = start + length
        if length < params.min_length:
            continue
        hits = np.nonzero(lengths[:, start] == length)[0]
        count = int((highs[hits, start] - lows[hits, start]).sum())
        if count > params.max_count:
            continue
        docs: list[int] = []
        for k in hits:
            docs += index.documents(int(lows[k, start]), int(highs[k, start]),
                                    params.max_docs - len(docs))
        spans.append(Span(start=start, length=length, count=count, documents=tuple(
            SpanDocument(d, d in blocked) for d in docs[:params.max_docs])))
    keep = max(1, math.floor(params.max_density * len(query))) if spans else 0
    return sorted(spans, key=lambda s: (-s.length, s.start))[:keep]


def coverage(length: int, spans: Sequence[Span]) -> dict[int, np.ndarray]:
    """For each document, which of the query's `length` tokens lie in a span found in it."""
    covered: dict[int, np.ndarray] = {}
    for span in spans:
        for doc in span.documents:
            mask = covered.setdefault(doc.document, np.zeros(length, dtype=bool))
            mask[span.start:span.start + span.length] = True
    return covered
