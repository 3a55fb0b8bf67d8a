"""Near-duplicate detection by MinHash LSH over stored signatures, in batches, with the band keys
kept outside the process (a database table), so that no worker holds the corpus.

The decision is datasketch's, exactly: two documents are candidates when they agree on every
value of at least one band (datasketch's `MinHashLSH` with the same `b` bands of `r` rows), and
near-duplicates when the estimated Jaccard similarity (the share of equal signature values) is at
least the threshold. A band is stored as one 64-bit key; two documents whose keys collide without
an equal band are dropped again by `near_pairs`, which compares the bands themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from provenance.engine.text import NUM_PERM

SIGNATURE_BYTES = NUM_PERM * 4
# Odd 64-bit multipliers, one per signature position, fixed for ever: a band key is stored.
_MULTIPLIERS = np.random.default_rng(0x7EA11A4C).integers(
    1, 1 << 63, size=NUM_PERM, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


@lru_cache(maxsize=32)
def lsh_params(threshold: float, num_perm: int = NUM_PERM) -> tuple[int, int]:
    """datasketch's choice of (bands, rows per band) for a threshold (equal weights on false
    positives and false negatives), so that the candidates are those its index would return."""
    from datasketch import MinHashLSH  # (and scipy): loaded by the processes that deduplicate

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    return int(lsh.b), int(lsh.r)


def signatures(blobs: Sequence[bytes]) -> np.ndarray:
    """Stored signatures (128 x uint32 little-endian each) as an (n, 128) array."""
    if not blobs:
        return np.zeros((0, NUM_PERM), dtype=np.uint32)
    joined = b"".join(bytes(b) for b in blobs)
    if len(joined) != SIGNATURE_BYTES * len(blobs):
        raise ValueError(f"a MinHash signature is not {SIGNATURE_BYTES} bytes")
    return np.frombuffer(joined, dtype="<u4").reshape(len(blobs), NUM_PERM)


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) int64 keys: band i of a signature hashed with the multipliers of its own
    positions (so equal values in different bands give different keys), then mixed."""
    n = sigs.shape[0]
    values = sigs[:, :bands * rows].astype(np.uint64)
    mult = _MULTIPLIERS[:bands * rows]
    with np.errstate(over="ignore"):
        keys = (values * mult).reshape(n, bands, rows).sum(axis=2, dtype=np.uint64)
        keys ^= keys >> np.uint64(31)
        keys *= np.uint64(0xBF58476D1CE4E5B9)
        keys ^= keys >> np.uint64(29)
    return keys.view(np.int64)


def near_pairs(a: np.ndarray, b: np.ndarray, bands: int, rows: int,
               threshold: float) -> np.ndarray:
    """For aligned rows of signatures: do they share a whole band and reach the threshold?"""
    equal = a == b
    share = equal[:, :bands * rows].reshape(len(a), bands, rows).all(axis=2).any(axis=1)
    jaccard = np.count_nonzero(equal, axis=1).astype(np.float64) / np.float64(a.shape[1])
    return share & (jaccard >= threshold)
