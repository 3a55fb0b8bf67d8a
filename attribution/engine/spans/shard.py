"""One shard of a span index: a corpus's tokens, their suffix array and the document starts;
the longest-match search over it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from attribution.engine.spans.suffix import suffix_array

FORMAT = 1
PACKED_FORMAT = 2
NOTHING = np.iinfo(np.int64).min  # a query value no corpus token equals


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
    def build(cls, documents: Iterable[tuple[int, Sequence[int] | np.ndarray]],
              suffix_array: Callable[[np.ndarray], np.ndarray] = suffix_array) -> SpanShard:
        parts, starts, ids = [], [], []
        offset = 0
        for index, (doc_id, token_ids) in enumerate(documents):
            ids.append(doc_id)
            starts.append(offset)
            part = np.asarray(token_ids, dtype=np.int32)
            parts.append(part)
            parts.append(np.array([-(index + 1)], dtype=np.int32))  # its own separator
            offset += len(part) + 1
        tokens = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
        del parts
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


def widen(buckets: np.ndarray, top: int) -> np.ndarray:
    """A shard's buckets over ids 0..top: ids past its own largest start where it ends."""
    out = np.full(top + 1, buckets[-1] if len(buckets) else 0, dtype=np.int64)
    out[:len(buckets)] = buckets
    return out
