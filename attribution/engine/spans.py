"""Verbatim span tracing, in the way OLMoTrace uses infini-gram: a suffix array over the token ids
of a corpus (one shard per source), and for a model output the maximal spans that occur verbatim
in it, each with the documents it occurs in. Pure numpy: no torch, no Django.

* Build: documents' token ids are concatenated, each followed by its own negative separator (so
  no match crosses a document boundary), and the suffix array is built by prefix doubling with
  numpy sorts: O(n log n), a few bytes per token of working memory.
* Store: tokens, suffix array, document starts and ids as .npy files, opened memory-mapped.
* Query: for each output position the longest match is found by narrowing the suffix-array
  interval one token at a time (two binary searches per token); a span is kept when it is not
  inside a longer one that starts earlier, is long enough, and is rare enough (common phrases are
  not evidence); at most `max_docs` documents are listed per span and at most
  `max_density` x output length spans per output, longest first.
* Takedowns: a removed document still counts, but is listed as blocked (no text is shown), with no
  rebuild.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FORMAT = 1


def suffix_array(tokens: np.ndarray) -> np.ndarray:
    """Suffix array by prefix doubling (Manber-Myers) with numpy lexsorts."""
    n = len(tokens)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    _, rank = np.unique(tokens, return_inverse=True)
    rank = rank.astype(np.int64)
    step = 1
    while True:
        second = np.full(n, -1, dtype=np.int64)
        second[:n - step] = rank[step:]
        order = np.lexsort((second, rank))
        r, s = rank[order], second[order]
        new_group = np.empty(n, dtype=bool)
        new_group[0] = True
        new_group[1:] = (r[1:] != r[:-1]) | (s[1:] != s[:-1])
        ranks_sorted = np.cumsum(new_group) - 1
        rank = np.empty(n, dtype=np.int64)
        rank[order] = ranks_sorted
        if ranks_sorted[-1] == n - 1 or step >= n:
            return order
        step *= 2


@dataclass(frozen=True)
class SpanDocument:
    document: int
    blocked: bool  # removed by a takedown: counted, never shown


@dataclass(frozen=True)
class Span:
    start: int    # position in the output's tokens
    length: int   # tokens
    count: int    # occurrences in the corpus (all shards)
    documents: tuple[SpanDocument, ...] = field(default=())


class SpanShard:
    """One shard's arrays (in memory or memory-mapped)."""

    def __init__(self, tokens: np.ndarray, sa: np.ndarray, doc_starts: np.ndarray,
                 doc_ids: np.ndarray, buckets: np.ndarray | None = None) -> None:
        self.tokens, self.sa, self.doc_starts, self.doc_ids = tokens, sa, doc_starts, doc_ids
        # buckets[v] .. buckets[v + 1]: the suffix-array interval of suffixes starting with token
        # v; replaces the two widest binary searches of every lookup by two array reads.
        self.buckets = buckets if buckets is not None else self._buckets()

    def _buckets(self) -> np.ndarray:
        if len(self.tokens) == 0:
            return np.zeros(1, dtype=np.int64)
        first = np.asarray(self.tokens)[np.asarray(self.sa)]
        top = max(int(first.max()), 0)
        return np.searchsorted(first, np.arange(top + 2), side="left").astype(np.int64)

    @classmethod
    def build(cls, documents: Iterable[tuple[int, Sequence[int] | np.ndarray]]) -> SpanShard:
        parts, starts, ids = [], [], []
        offset = 0
        for index, (doc_id, token_ids) in enumerate(documents):
            ids.append(doc_id)
            starts.append(offset)
            part = np.asarray(token_ids, dtype=np.int64)
            parts.append(part)
            parts.append(np.array([-(index + 1)], dtype=np.int64))  # its own separator
            offset += len(part) + 1
        tokens = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        return cls(tokens, suffix_array(tokens), np.asarray(starts, dtype=np.int64),
                   np.asarray(ids, dtype=np.int64))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "tokens.npy", self.tokens)
        np.save(folder / "sa.npy", self.sa)
        np.save(folder / "doc_starts.npy", self.doc_starts)
        np.save(folder / "doc_ids.npy", self.doc_ids)
        np.save(folder / "buckets.npy", self.buckets)
        (folder / "shard.json").write_text(json.dumps({"format": FORMAT,
                                                       "tokens": int(len(self.tokens)),
                                                       "documents": int(len(self.doc_ids))}))

    @classmethod
    def open(cls, folder: Path) -> SpanShard:
        def load(name: str) -> np.ndarray:
            return np.load(folder / name, mmap_mode="r")

        return cls(load("tokens.npy"), load("sa.npy"), load("doc_starts.npy"),
                   load("doc_ids.npy"), np.load(folder / "buckets.npy"))

    def _token(self, j: int, offset: int) -> int:
        return int(self.tokens[int(self.sa[j]) + offset])

    def _bound(self, lo: int, hi: int, offset: int, value: int, upper: bool) -> int:
        while lo < hi:
            mid = (lo + hi) // 2
            t = self._token(mid, offset)
            if t < value or (upper and t == value):
                lo = mid + 1
            else:
                hi = mid
        return lo

    def intervals(self, query: Sequence[int], start: int) -> list[tuple[int, int]]:
        """[(lo, hi)] of the suffix-array interval matching query[start:start+L] for L = 1, 2, ...
        while the match goes on."""
        out: list[tuple[int, int]] = []
        if start >= len(query):
            return out
        first = int(query[start])
        if not 0 <= first < len(self.buckets) - 1:
            return out
        lo, hi = int(self.buckets[first]), int(self.buckets[first + 1])
        if lo >= hi:
            return out
        out.append((lo, hi))
        for offset, value in enumerate(query[start + 1:], start=1):
            new_lo = self._bound(lo, hi, offset, int(value), upper=False)
            new_hi = self._bound(new_lo, hi, offset, int(value), upper=True)
            if new_lo >= new_hi:
                break
            lo, hi = new_lo, new_hi
            out.append((lo, hi))
        return out

    def _vbound(self, lo: np.ndarray, hi: np.ndarray, offset: int, values: np.ndarray,
                upper: bool) -> np.ndarray:
        """Binary searches for many positions at once, each within its own [lo, hi)."""
        lo, hi = lo.copy(), hi.copy()
        while True:
            active = np.nonzero(lo < hi)[0]
            if not len(active):
                return lo
            mid = (lo[active] + hi[active]) // 2
            t = np.asarray(self.tokens[np.asarray(self.sa[mid]) + offset])
            right = t <= values[active] if upper else t < values[active]
            lo[active] = np.where(right, mid + 1, lo[active])
            hi[active] = np.where(right, hi[active], mid)

    def match_all(self, query: Sequence[int]) -> tuple[np.ndarray, list[np.ndarray],
                                                        list[np.ndarray]]:
        """For every start position at once: the longest match length, and the interval after
        each matched token (lows[k][i], highs[k][i] valid where length[i] > k)."""
        q = np.asarray(query, dtype=np.int64)
        n = len(q)
        length = np.zeros(n, dtype=np.int64)
        lows: list[np.ndarray] = []
        highs: list[np.ndarray] = []
        if n == 0 or len(self.sa) == 0:
            return length, lows, highs
        known = (q >= 0) & (q < len(self.buckets) - 1)
        first = np.where(known, q, 0)
        lo = np.where(known, self.buckets[first], 0)
        hi = np.where(known, self.buckets[np.minimum(first + 1, len(self.buckets) - 1)], 0)
        alive = lo < hi
        for offset in range(n):
            if offset:
                idx = np.nonzero(alive)[0]
                idx = idx[idx + offset < n]
                alive[:] = False
                if not len(idx):
                    break
                values = q[idx + offset]
                new_lo = self._vbound(lo[idx], hi[idx], offset, values, upper=False)
                new_hi = self._vbound(new_lo, hi[idx], offset, values, upper=True)
                ok = new_lo < new_hi
                idx = idx[ok]
                lo[idx], hi[idx] = new_lo[ok], new_hi[ok]
                alive[idx] = True
            if not alive.any():
                break
            length[alive] += 1
            lows.append(lo.copy())
            highs.append(hi.copy())
        return length, lows, highs

    def documents(self, lo: int, hi: int, limit: int) -> list[int]:
        positions = np.sort(np.asarray(self.sa[lo:hi]))
        found = self.doc_ids[np.searchsorted(self.doc_starts, positions, side="right") - 1]
        return list(dict.fromkeys(int(d) for d in found))[:limit]


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


def find_spans(shards: Sequence[SpanShard], query: Sequence[int], params: SpanParams,
               blocked: frozenset[int] = frozenset()) -> list[Span]:
    """Maximal verbatim spans of `query` across all shards, longest first."""
    params.validate()
    spans: list[Span] = []
    covered_to = 0
    matched = [shard.match_all(query) for shard in shards]
    best = np.max([m[0] for m in matched], axis=0) if matched else np.zeros(len(query), int)
    for start in range(len(query)):
        length = int(best[start])
        if length == 0 or start + length <= covered_to:
            continue  # inside a longer span that starts earlier
        covered_to = start + length
        if length < params.min_length:
            continue
        hits = [(shard, (int(lows[length - 1][start]), int(highs[length - 1][start])))
                for shard, (lengths, lows, highs) in zip(shards, matched, strict=True)
                if lengths[start] >= length]
        count = sum(hi - lo for _, (lo, hi) in hits)
        if count > params.max_count:
            continue
        docs: list[int] = []
        for shard, (lo, hi) in hits:
            docs += shard.documents(lo, hi, params.max_docs - len(docs))
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
