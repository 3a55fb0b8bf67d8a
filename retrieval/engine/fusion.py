"""Ranked lists fused by reciprocal rank (Cormack, Clarke & Büttcher 2009): an item's score is
the sum over lists of 1 / (k + rank), rank from 1. k = 60 is the paper's, chosen there on TREC
and kept by most hybrid retrievers since; it damps the top ranks so that one list alone cannot
decide. Ties go to the item seen first (the lists' order).

`weights` scale each list's terms (weighted RRF, as Elasticsearch's and Vespa's hybrid rankers
offer): a list that is right more often can count for more without ever silencing the other."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

K = 60


@dataclass(frozen=True)
class Fused:
    item: Hashable
    score: float
    ranks: tuple[int | None, ...]  # its rank in each list (None: not in it)


def reciprocal_rank(lists: Sequence[Sequence[Hashable]], k: int = K,
                    limit: int | None = None,
                    weights: Sequence[float] | None = None) -> list[Fused]:
    if weights is None:
        weights = [1.0] * len(lists)
    if len(weights) != len(lists) or any(w < 0 for w in weights):
        raise ValueError("one weight, not negative, per list")
    scores: dict[Hashable, float] = {}
    ranks: dict[Hashable, list[int | None]] = {}
    for which, ranked in enumerate(lists):
        for rank, item in enumerate(ranked, start=1):
            if item in ranks and ranks[item][which] is not None:
                continue  # a list naming an item twice counts its best rank
            scores[item] = scores.get(item, 0.0) + weights[which] / (k + rank)
            ranks.setdefault(item, [None] * len(lists))[which] = rank
    order = sorted(scores, key=lambda item: -scores[item])  # stable: first seen wins a tie
    return [Fused(item, scores[item], tuple(ranks[item])) for item in order[:limit]]
