"""Verbatim span tracing, in the way OLMoTrace uses infini-gram: a suffix array over the token ids
of a corpus (one shard per source), and for a model output the maximal spans that occur verbatim
in it, each with the documents it occurs in. Pure numpy: no torch, no Django.

* Build: documents' token ids are concatenated, each followed by its own negative separator (so
  no match crosses a document boundary), and the suffix array is built by libdivsufsort
  (pydivsufsort) over the ids written as 4-byte big-endian words (bench/spans.py measures it
  against the numpy prefix-doubling builder it replaced).
* Store: each source's shard is built alone, then the shards are packed into one set of .npy
  files (`PackedSpans`: tokens, suffix arrays, first-token buckets, document starts and ids),
  opened memory-mapped.
* Query: for each output position and shard the longest match is found by narrowing the
  suffix-array interval one token at a time (two binary searches per token), every shard and
  position in one vectorised step, and by direct comparison once one occurrence is left; the
  span at a position is its longest match over all shards, counted in all. A span is kept
  when it is not inside a longer one that starts earlier, is long enough, and is rare enough
  (common phrases are not evidence); at most `max_docs` documents are listed per span and at most
  `max_density` x output length spans per output, longest first.
* Takedowns: a removed document still counts, but is listed as blocked (no text is shown), with no
  rebuild.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = 1
PACKED_FORMAT = 2
NOTHING = np.iinfo(np.int64).min  # a query value no corpus token equals


def suffix_array(tokens: np.ndarray) -> np.ndarray:
    """Suffix array with libdivsufsort (pydivsufsort): the ids are shifted to non-negative
    values in the same order (separators first), written big-endian in 4 bytes so that byte
    order is id order, and the byte suffix array is kept at token boundaries."""
    from pydivsufsort import divsufsort

    n = len(tokens)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    tokens = np.asarray(tokens)
    low, high = int(tokens.min()), int(tokens.max())
    if high - min(low, 0) >= 2**32:
        raise ValueError("token ids and separators must fit in 32 bits")
    data = (tokens.astype(np.int64) - min(low, 0)).astype(">u4").view(np.uint8)
    out = np.asarray(divsufsort(data))  # 4n byte positions: int32 below 2**31 bytes
    del data
    out = out[out % 4 == 0]
    out //= 4
    return out.astype(np.int32 if n < 2**31 else np.int64, copy=False)


def suffix_array_doubling(tokens: np.ndarray) -> np.ndarray:
    """Suffix array by prefix doubling (Manber-Myers) with numpy lexsorts: the builder before
    libdivsufsort, kept as the benchmark's baseline and the tests' reference."""
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


class PackedSpans:
    """All of an index's shards in one set of arrays, searched together: the shards' tokens
    end to end (int32), their suffix arrays one after another, each entry a position in the
    joined tokens (so shard k's suffix array is the region [regions[k], regions[k + 1])), and
    `buckets[k, v]`: where shard k's suffixes starting with token v begin. A query narrows the
    intervals of every (shard, position) pair in one vectorised step per matched token, so a
    query costs about the same number of numpy calls whatever the number of shards; a pair
    whose interval holds one suffix is extended by comparing tokens directly, a block at a time.
    """

    def __init__(self, tokens: np.ndarray, sa: np.ndarray, buckets: np.ndarray,
                 doc_starts: np.ndarray, doc_ids: np.ndarray, names: Sequence[str]) -> None:
        # Plain ndarray views of memory maps: no np.memmap subclass overhead on each gather.
        self.tokens, self.sa = np.asarray(tokens), np.asarray(sa)
        self.buckets, self.doc_starts = np.asarray(buckets), np.asarray(doc_starts)
        self.doc_ids, self.names = np.asarray(doc_ids), list(names)

    @classmethod
    def pack(cls, shards: Sequence[SpanShard], names: Sequence[str] | None = None
             ) -> PackedSpans:
        """In memory, from shards (built or opened)."""
        names = list(names) if names is not None else [str(k) for k in range(len(shards))]
        top = max([len(s.buckets) - 1 for s in shards] + [1])
        buckets, offsets, at = [], [], 0
        for shard in shards:
            offsets.append(at)
            at += len(shard.tokens)
        sa_dtype = np.int32 if at < 2**31 else np.int64
        for shard, offset in zip(shards, offsets, strict=True):
            buckets.append(_widen(np.asarray(shard.buckets), top) + offset)
        return cls(
            np.concatenate([np.asarray(s.tokens, dtype=np.int32) for s in shards])
            if shards else np.zeros(0, np.int32),
            np.concatenate([np.asarray(s.sa, dtype=np.int64) + o
                            for s, o in zip(shards, offsets, strict=True)]).astype(sa_dtype)
            if shards else np.zeros(0, sa_dtype),
            np.stack(buckets) if shards else np.zeros((0, top + 1), np.int64),
            np.concatenate([np.asarray(s.doc_starts, dtype=np.int64) + o
                            for s, o in zip(shards, offsets, strict=True)])
            if shards else np.zeros(0, np.int64),
            np.concatenate([np.asarray(s.doc_ids) for s in shards])
            if shards else np.zeros(0, np.int64),
            names)

    @classmethod
    def write(cls, folder: Path, shard_folders: Sequence[tuple[str, Path]],
              extra: dict[str, Any] | None = None) -> None:
        """Pack saved shards into `folder`, one shard in memory at a time."""
        metas = [json.loads((f / "shard.json").read_text()) for _, f in shard_folders]
        total = sum(m["tokens"] for m in metas)
        docs = sum(m["documents"] for m in metas)
        top = max([len(np.load(f / "buckets.npy", mmap_mode="r")) - 1
                   for _, f in shard_folders] + [1])
        sa_dtype = np.int32 if total < 2**31 else np.int64
        folder.mkdir(parents=True, exist_ok=True)
        out = {name: np.lib.format.open_memmap(folder / f"{name}.npy", mode="w+", dtype=dtype,
                                               shape=shape)
               for name, dtype, shape in [("tokens", np.int32, (total,)),
                                          ("sa", sa_dtype, (total,)),
                                          ("buckets", np.int64, (len(metas), top + 1)),
                                          ("doc_starts", np.int64, (docs,)),
                                          ("doc_ids", np.int64, (docs,))]}
        at = d = 0
        for k, (_, shard_folder) in enumerate(shard_folders):
            shard = SpanShard.open(shard_folder)
            n, m = len(shard.tokens), len(shard.doc_ids)
            out["tokens"][at:at + n] = shard.tokens
            out["sa"][at:at + n] = np.asarray(shard.sa, dtype=np.int64) + at
            out["buckets"][k] = _widen(np.asarray(shard.buckets), top) + at
            out["doc_starts"][d:d + m] = np.asarray(shard.doc_starts, dtype=np.int64) + at
            out["doc_ids"][d:d + m] = shard.doc_ids
            at, d = at + n, d + m
        for array in out.values():
            array.flush()
        (folder / "packed.json").write_text(json.dumps({
            "format": PACKED_FORMAT, "tokens": total, "documents": docs,
            "shards": [name for name, _ in shard_folders], **(extra or {})}))

    @classmethod
    def open(cls, folder: Path) -> PackedSpans:
        meta = json.loads((folder / "packed.json").read_text())
        if meta.get("format") != PACKED_FORMAT:
            raise ValueError(f"span index format {meta.get('format')} in {folder}: rebuild it")

        def load(name: str) -> np.ndarray:
            return np.load(folder / f"{name}.npy", mmap_mode="r")

        return cls(load("tokens"), load("sa"), np.load(folder / "buckets.npy"),
                   load("doc_starts"), load("doc_ids"), meta["shards"])

    def _vbound(self, lo: np.ndarray, hi: np.ndarray, offset: int, values: np.ndarray,
                upper: bool) -> np.ndarray:
        """Binary searches for many pairs at once, each within its own [lo, hi)."""
        lo, hi = lo.copy(), hi.copy()
        active = np.arange(len(lo))
        while True:
            active = active[lo[active] < hi[active]]
            if not len(active):
                return lo
            mid = (lo[active] + hi[active]) >> 1
            t = self.tokens[self.sa[mid] + offset]
            right = t <= values[active] if upper else t < values[active]
            lo[active[right]] = mid[right] + 1
            hi[active[~right]] = mid[~right]

    def _extend(self, suffix: np.ndarray, at: np.ndarray, q: np.ndarray,
                block: int = 32) -> np.ndarray:
        """How many more tokens the corpus suffix starting at `suffix` agrees with the query
        from `at` on (both arrays per pair), compared a block at a time."""
        extra = np.zeros(len(suffix), dtype=np.int64)
        live = np.arange(len(suffix))
        steps = np.arange(block)
        n, size = len(q), len(self.tokens)
        while len(live):
            qi = at[live, None] + extra[live, None] + steps
            ti = suffix[live, None] + extra[live, None] + steps
            theirs = self.tokens[np.minimum(ti, size - 1)]
            ours = np.where(qi < n, q[np.minimum(qi, n - 1)], NOTHING)  # past its end
            same = (theirs == ours) & (ti < size)
            run = np.where(same.all(axis=1), block, np.argmin(same, axis=1))
            extra[live] += run
            live = live[run == block]
        return extra

    def match(self, query: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(length, lo, hi), each (shards, len(query)): the longest match of the query from
        each position in each shard, and its suffix-array interval."""
        q = np.asarray(query, dtype=np.int64)
        q = np.where(q >= 0, q, NOTHING)  # a negative id never matches (separators are)
        shards, n = len(self.buckets), len(q)
        length = np.zeros((shards, n), dtype=np.int64)
        if n == 0 or shards == 0:
            return length, length.copy(), length.copy()
        top = self.buckets.shape[1] - 1
        known = (q >= 0) & (q < top)
        first = np.where(known, q, 0)
        lo = np.where(known, self.buckets[:, first], 0).ravel()
        hi = np.where(known, self.buckets[:, first + 1], 0).ravel()
        flat = length.ravel()
        pairs = np.nonzero(lo < hi)[0]
        flat[pairs] = 1
        pos = pairs % n
        low, high = lo[pairs], hi[pairs]
        offset = 1
        while len(pairs):
            single = high - low == 1  # one occurrence: compare the rest directly
            if single.any():
                flat[pairs[single]] += self._extend(
                    self.sa[low[single]].astype(np.int64) + offset, pos[single] + offset, q)
                keep = ~single
                pairs, pos, low, high = pairs[keep], pos[keep], low[keep], high[keep]
            keep = pos + offset < n
            pairs, pos, low, high = pairs[keep], pos[keep], low[keep], high[keep]
            if not len(pairs):
                break
            values = q[pos + offset]
            new_low = self._vbound(low, high, offset, values, upper=False)
            new_high = self._vbound(new_low, high, offset, values, upper=True)
            ok = new_low < new_high
            pairs, pos, low, high = pairs[ok], pos[ok], new_low[ok], new_high[ok]
            lo[pairs], hi[pairs] = low, high
            flat[pairs] += 1
            offset += 1
        return length, lo.reshape(shards, n), hi.reshape(shards, n)

    def documents(self, lo: int, hi: int, limit: int) -> list[int]:
        positions = np.sort(np.asarray(self.sa[lo:hi]))
        found = self.doc_ids[np.searchsorted(self.doc_starts, positions, side="right") - 1]
        return list(dict.fromkeys(int(d) for d in found))[:limit]


# Sources share a suffix array up to this many tokens: one array answers ~7x faster than 100
# (warm p95 18.5 vs 125 ms at 10^8 tokens) and costs ~41 bytes a token at build (4.3 GB peak
# for 10^8): bench/spans.py.
GROUP_TOKENS = 2**27


def write_index(folder: Path,
                sources: Iterable[tuple[str, Sequence[tuple[int, Sequence[int] | np.ndarray]]]],
                group_tokens: int = GROUP_TOKENS,
                suffix_array: Callable[[np.ndarray], np.ndarray] = suffix_array,
                ) -> dict[str, dict[str, int]]:
    """Build a packed index in `folder` from (source, [(document id, token ids)]) in order:
    consecutive sources share one suffix array up to `group_tokens` tokens (a source larger
    than that has one of its own), since a query searches every suffix array and one large
    array answers far faster than many small ones. Returns each source's documents and
    tokens (separators included, one per document)."""
    groups: list[tuple[str, Path]] = []
    members: list[list[str]] = []
    pending: list[tuple[int, Sequence[int] | np.ndarray]] = []
    names: list[str] = []
    stats: dict[str, dict[str, int]] = {}
    size = 0

    def flush() -> None:
        nonlocal pending, names, size
        if not names:
            return
        part = folder / "groups" / str(len(groups))
        SpanShard.build(pending, suffix_array=suffix_array).save(part)
        groups.append((str(len(groups)), part))
        members.append(names)
        pending, names, size = [], [], 0

    for name, documents in sources:
        tokens = sum(len(t) + 1 for _, t in documents)
        if names and size + tokens > group_tokens:
            flush()
        pending += [(d, np.asarray(t, dtype=np.int32)) for d, t in documents]
        names.append(name)
        size += tokens
        stats[name] = {"documents": len(documents), "tokens": tokens}
    flush()
    PackedSpans.write(folder, groups, extra={"sources": members})
    shutil.rmtree(folder / "groups", ignore_errors=True)
    return stats


def _widen(buckets: np.ndarray, top: int) -> np.ndarray:
    """A shard's buckets over ids 0..top: ids past its own largest start where it ends."""
    out = np.full(top + 1, buckets[-1] if len(buckets) else 0, dtype=np.int64)
    out[:len(buckets)] = buckets
    return out


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
