"""Scores of stored examples against a query, summed over an ensemble of stores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from attribution.engine.influence.store import GradientStore


@dataclass(frozen=True)
class Ranked:
    ids: np.ndarray     # (k,) example ids, best first
    scores: np.ndarray  # (k,) higher = more helpful to the query (lowers its loss more)


def score_all(stores: Sequence[GradientStore], queries: Sequence[np.ndarray],
              block_rows: int = 2048, precondition: bool = True) -> tuple[np.ndarray,
                                                                          np.ndarray]:
    """Scores of every stored example for each query, summed over an ensemble of stores (one
    per checkpoint, each with its own query features). Returns (ids, scores (n_queries, n)).

    Blocks are small enough that their fp32 copy stays in cache while it is multiplied, torch
    converts fp16 on every core, and the block buffers are allocated once (fresh ones cost a
    page fault per 4 KB): see bench/attribution_perf.py for the speed against plain numpy."""
    ids: np.ndarray | None = None
    total: np.ndarray | None = None
    for store, query in zip(stores, queries, strict=True):
        q = np.atleast_2d(query)
        solved = store.preconditioner.solve(q) if precondition else q.astype(np.float64)
        solved32 = torch.from_numpy(solved.astype(np.float32).T.copy())  # (dim, n_queries)
        n = sum(len(shard.ids) for shard in store.shards)
        scores_t = np.empty((n, len(q)), dtype=np.float32)
        these_ids = np.concatenate([shard.ids for shard in store.shards]) if n else \
            np.zeros(0, np.int64)
        half = np.empty((block_rows, solved32.shape[0]), dtype=np.float16)
        wide = torch.empty(half.shape, dtype=torch.float32)
        at = 0
        for shard in store.shards:
            for start in range(0, len(shard.ids), block_rows):
                m = min(block_rows, len(shard.ids) - start)
                np.copyto(half[:m], shard.vectors[start:start + m])
                wide[:m].copy_(torch.from_numpy(half[:m]))
                torch.matmul(wide[:m], solved32, out=torch.from_numpy(scores_t[at:at + m]))
                at += m
        scores = scores_t.T
        order = np.argsort(these_ids, kind="stable")
        these_ids, scores = these_ids[order], scores[:, order]
        if ids is None:
            ids, total = these_ids, scores.astype(np.float64)
        elif not np.array_equal(ids, these_ids):
            raise ValueError("the ensemble's stores hold different examples")
        else:
            total = total + scores  # type: ignore[operator]
    if ids is None or total is None:
        raise ValueError("no gradient store to score against")
    removed = stores[0].removed
    if len(removed):
        keep = ~np.isin(ids, removed)
        ids, total = ids[keep], total[:, keep]
    return ids, total


def rank(stores: Sequence[GradientStore], query: Sequence[np.ndarray], k: int,
         precondition: bool = True) -> Ranked:
    """The k stored examples with the highest scores for one query (one feature row per
    store)."""
    ids, scores = score_all(stores, [np.atleast_2d(q) for q in query],
                            precondition=precondition)
    row = scores[0]
    k = min(k, len(row))
    top = np.argpartition(-row, k - 1)[:k] if k else np.zeros(0, dtype=np.int64)
    top = top[np.argsort(-row[top], kind="stable")]
    return Ranked(ids[top], row[top])
