"""Suffix arrays over token ids: libdivsufsort's, and the numpy prefix-doubling builder it
replaced (kept for the bench and as a check)."""

from __future__ import annotations

import numpy as np


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
