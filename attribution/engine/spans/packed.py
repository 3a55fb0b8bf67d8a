"""Every shard of an index in one set of memory-mapped arrays, searched together, and the
index writer that groups and packs the sources."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from attribution.engine.spans.shard import NOTHING, PACKED_FORMAT, SpanShard, widen
from attribution.engine.spans.suffix import suffix_array


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
            buckets.append(widen(np.asarray(shard.buckets), top) + offset)
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
            out["buckets"][k] = widen(np.asarray(shard.buckets), top) + at
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
