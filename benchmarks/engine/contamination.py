"""Whether an entry of a benchmark holds any of its evaluation texts: the same text (sha256 or
normalised sha256) or a near-duplicate (MinHash LSH at a threshold, the estimated Jaccard
confirmed, as curation's deduplication decides). numpy over stored signatures: no Django."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from provenance.engine import dedup


@dataclass(frozen=True)
class Found:
    evaluation: int     # index into the evaluation texts
    entry: int          # index into the entry's texts
    kind: str           # "exact" or "near"
    jaccard: float


def contamination(evaluation: Sequence[tuple[str, bytes]], entry: Sequence[tuple[str, bytes]],
                  threshold: float = 0.8) -> list[Found]:
    """Every (evaluation text, entry text) pair that is the same text or a near-duplicate. Each
    side is (hash, stored MinHash signature) per text; pass normalised hashes to catch the same
    words in another layout."""
    found: list[Found] = []
    where = {h: i for i, (h, _) in enumerate(entry)}
    exact = set()
    for e, (h, _) in enumerate(evaluation):
        if h in where:
            found.append(Found(e, where[h], "exact", 1.0))
            exact.add((e, where[h]))
    if not evaluation or not entry:
        return found
    bands, rows = dedup.lsh_params(threshold)
    a = dedup.signatures([blob for _, blob in evaluation])
    b = dedup.signatures([blob for _, blob in entry])
    buckets: dict[tuple[int, int], list[int]] = defaultdict(list)
    for j, keys in enumerate(dedup.band_keys(b, bands, rows)):
        for band, key in enumerate(keys):
            buckets[(band, int(key))].append(j)
    candidates = sorted({(e, j) for e, keys in enumerate(dedup.band_keys(a, bands, rows))
                         for band, key in enumerate(keys)
                         for j in buckets.get((band, int(key)), ())} - exact)
    if candidates:
        left = np.asarray([e for e, _ in candidates])
        right = np.asarray([j for _, j in candidates])
        near = dedup.near_pairs(a[left], b[right], bands, rows, threshold)
        jaccard = (a[left] == b[right]).mean(axis=1)
        found += [Found(int(e), int(j), "near", float(s))
                  for e, j, s, ok in zip(left, right, jaccard, near, strict=True) if ok]
    return sorted(found, key=lambda f: (f.evaluation, f.entry))
