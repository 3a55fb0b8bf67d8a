"""Choosing documents by their embeddings: semantic deduplication (SemDeDup) and diverse
selection under a token budget (k-center greedy and greedy log-determinant). Pure numpy and
scikit-learn: no Django. Every function is deterministic given its inputs and seed, so a stored
recipe reproduces its version.

Vectors are unit-length sentence embeddings (MiniLM's, as stored in pgvector); similarity is
their dot product (cosine).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The selection methods a recipe names, as cards and exclusion details call them.
METHODS = {"kcenter": "k-center greedy", "logdet": "greedy log-determinant (DPP)",
           "random": "a seeded random draw"}

# Greedy log-det keeps one row of its incremental Cholesky factor per candidate and selected
# document: candidates × selected float32 values. Past this many, a recipe must use k-center.
LOGDET_MAX_CELLS = 250_000_000  # 1 GB


@dataclass(frozen=True)
class Duplicates:
    of: dict[int, int]        # index -> the index of the kept document it nearly repeats
    clusters: np.ndarray      # (n,) the k-means cluster of each document


def semantic_duplicates(vectors: np.ndarray, threshold: float, clusters: int,
                        seed: int) -> Duplicates:
    """SemDeDup (Abbas et al. 2023): k-means over the embeddings, then within each cluster, in
    index order (the caller's order: curation passes sha256 order), a document whose cosine
    similarity to a document already kept is at least `threshold` is a duplicate of the most
    similar one. Clusters bound the comparisons to within-cluster pairs."""
    from sklearn.cluster import KMeans

    n = len(vectors)
    if n == 0:
        return Duplicates({}, np.zeros(0, dtype=np.int64))
    k = max(1, min(clusters, n))
    labels = KMeans(n_clusters=k, random_state=seed, n_init=1).fit_predict(
        vectors.astype(np.float32)) if k > 1 else np.zeros(n, dtype=np.int64)
    out: dict[int, int] = {}
    for cluster in range(k):
        members = np.flatnonzero(labels == cluster)
        kept: list[int] = []
        for index in members:
            if kept:
                sims = vectors[kept] @ vectors[index]
                best = int(np.argmax(sims))
                if sims[best] >= threshold:
                    out[int(index)] = kept[best]
                    continue
            kept.append(int(index))
    return Duplicates(out, labels.astype(np.int64))


def _fits(costs: np.ndarray, left: float) -> np.ndarray:
    return costs <= left


def kcenter_greedy(vectors: np.ndarray, costs: np.ndarray, budget: float,
                   seed: int) -> list[int]:
    """k-center greedy (Sener & Savarese 2018's coreset): start from a document drawn with
    `seed`, then repeatedly take the document farthest (cosine distance) from everything taken,
    among those that still fit the budget (`costs`: tokens per document). Returns indices in the
    order taken."""
    n = len(vectors)
    if n == 0 or budget <= 0:
        return []
    rng = np.random.default_rng(seed)
    left = float(budget)
    fitting = np.flatnonzero(_fits(costs, left))
    if not len(fitting):
        return []
    first = int(rng.choice(fitting))
    taken = [first]
    left -= float(costs[first])
    distance = 1.0 - vectors @ vectors[first]
    distance[first] = -np.inf
    while True:
        candidate = np.where(_fits(costs, left) & np.isfinite(distance), distance, -np.inf)
        best = int(np.argmax(candidate))
        if not np.isfinite(candidate[best]):
            return taken
        taken.append(best)
        left -= float(costs[best])
        distance = np.minimum(distance, 1.0 - vectors @ vectors[best])
        distance[taken] = -np.inf


def logdet_greedy(vectors: np.ndarray, costs: np.ndarray, budget: float, seed: int,
                  temperature: float = 0.1) -> list[int]:
    """Greedy MAP of a determinantal point process (Chen, Zhang & Zhou 2018's incremental
    Cholesky): each next document adds the most to the log-determinant of the kernel over those
    taken, among those that fit the budget. Kernel: exp((cos - 1) / temperature), positive
    definite with a unit diagonal (a cosine kernel alone has rank ≤ the embedding's width, so
    it could not choose more than 384 documents). The first pick (every gain is 1) is drawn
    with `seed`. Returns indices in the order taken."""
    n = len(vectors)
    if n == 0 or budget <= 0:
        return []
    rng = np.random.default_rng(seed)
    left = float(budget)
    most = int(np.searchsorted(np.cumsum(np.sort(costs)), left, side="right"))  # fit at most
    if n * max(most, 1) > LOGDET_MAX_CELLS:
        raise ValueError(f"log-det selection of up to {most:,} of {n:,} documents needs "
                         f"{n * most * 4 / 2**30:.1f} GB; use k-center for a budget this size")
    factor = np.zeros((n, max(most, 1)), dtype=np.float32)
    gain = np.ones(n, dtype=np.float64)  # the kernel's diagonal
    available = np.ones(n, dtype=bool)
    taken: list[int] = []
    fitting = np.flatnonzero(_fits(costs, left))
    if not len(fitting):
        return []
    pick = int(rng.choice(fitting))
    while True:
        t = len(taken)
        taken.append(pick)
        available[pick] = False
        left -= float(costs[pick])
        row = np.exp((vectors @ vectors[pick] - 1.0) / temperature)
        e = (row - factor[:, :t] @ factor[pick, :t]) / np.sqrt(max(gain[pick], 1e-12))
        factor[:, t] = e
        gain = gain - e.astype(np.float64) ** 2
        candidate = np.where(available & _fits(costs, left), gain, -np.inf)
        pick = int(np.argmax(candidate))
        if not np.isfinite(candidate[pick]) or candidate[pick] <= 1e-9 or t + 1 >= most:
            return taken


def random_fill(costs: np.ndarray, budget: float, seed: int) -> list[int]:
    """The cheap baseline: documents in a seeded random order, each taken while it fits."""
    taken, left = [], float(budget)
    for i in np.random.default_rng(seed).permutation(len(costs)):
        if costs[i] <= left:
            taken.append(int(i))
            left -= float(costs[i])
    return taken
