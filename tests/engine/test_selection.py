"""Semantic deduplication and diverse selection over embeddings: each against what it must find
on points whose structure is known, and against a brute-force reading where one exists."""

import numpy as np
import pytest

from provenance.engine.selection import (
    LOGDET_MAX_CELLS,
    kcenter_greedy,
    logdet_greedy,
    semantic_duplicates,
)


def unit(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def clustered(groups=5, per=8, width=32, spread=0.02, seed=0):
    """`groups` well-separated directions, `per` points tightly around each."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(groups, width)))
    points = np.repeat(centres, per, axis=0) + spread * rng.normal(size=(groups * per, width))
    return unit(points).astype(np.float32), np.repeat(np.arange(groups), per)


def test_semdedup_keeps_one_of_each_tight_group_and_points_to_a_kept_one():
    vectors, group = clustered()
    found = semantic_duplicates(vectors, threshold=0.95, clusters=5, seed=0)
    kept = sorted(set(range(len(vectors))) - set(found.of))
    assert sorted(group[kept]) == [0, 1, 2, 3, 4]  # one survivor per group
    for dup, original in found.of.items():
        assert original not in found.of and original < dup  # a kept, earlier document
        assert group[dup] == group[original]
        assert float(vectors[dup] @ vectors[original]) >= 0.95
    again = semantic_duplicates(vectors, threshold=0.95, clusters=5, seed=0)
    assert again.of == found.of and (again.clusters == found.clusters).all()


def test_semdedup_below_the_threshold_removes_nothing():
    vectors, _ = clustered(spread=0.5)
    assert semantic_duplicates(vectors, threshold=0.999, clusters=3, seed=1).of == {}
    assert semantic_duplicates(vectors[:0], threshold=0.9, clusters=3, seed=1).of == {}


def test_semdedup_compares_only_within_a_cluster():
    vectors, _ = clustered()
    one_cluster = semantic_duplicates(vectors, threshold=0.95, clusters=1, seed=0)
    assert (one_cluster.clusters == 0).all() and len(one_cluster.of) == len(vectors) - 5


@pytest.mark.parametrize("select", [kcenter_greedy, logdet_greedy])
def test_the_first_picks_cover_every_group_before_any_repeats(select):
    vectors, group = clustered()
    costs = np.full(len(vectors), 10.0)
    taken = select(vectors, costs, budget=50, seed=3)
    assert len(taken) == 5 and sorted(group[taken]) == [0, 1, 2, 3, 4]
    assert select(vectors, costs, budget=50, seed=3) == taken  # deterministic per seed


@pytest.mark.parametrize("select", [kcenter_greedy, logdet_greedy])
def test_the_budget_is_never_exceeded_and_is_filled_by_what_fits(select):
    vectors, _ = clustered(groups=4, per=10)
    costs = np.random.default_rng(1).integers(5, 60, size=len(vectors)).astype(float)
    for budget in (0, 4, 100, 700, 10_000):
        taken = select(vectors, costs, budget=budget, seed=0)
        assert len(set(taken)) == len(taken)
        assert costs[taken].sum() <= budget
        rest = np.setdiff1d(np.arange(len(vectors)), taken)
        if len(rest) and select is kcenter_greedy:  # k-center stops only when nothing fits
            assert costs[rest].min() > budget - costs[taken].sum()
    assert len(select(vectors, costs, budget=10_000, seed=0)) == len(vectors)


def test_logdet_greedy_takes_the_largest_determinant_step_each_time():
    rng = np.random.default_rng(4)
    vectors = unit(rng.normal(size=(12, 6))).astype(np.float32)
    temperature = 0.3
    kernel = np.exp((vectors @ vectors.T - 1.0) / temperature).astype(np.float64)
    taken = logdet_greedy(vectors, np.ones(12), budget=6, seed=0, temperature=temperature)
    for step in range(1, len(taken)):
        before = taken[:step]
        gains = {j: np.linalg.slogdet(kernel[np.ix_(before + [j], before + [j])])[1]
                 for j in range(12) if j not in before}
        assert taken[step] == max(gains, key=gains.get)


def test_logdet_refuses_a_selection_too_large_to_hold():
    n = int(np.sqrt(LOGDET_MAX_CELLS)) + 10
    vectors = np.zeros((n, 2), dtype=np.float32)
    vectors[:, 0] = 1
    with pytest.raises(ValueError, match="use k-center"):
        logdet_greedy(vectors, np.ones(n), budget=n, seed=0)


def test_the_random_baseline_fills_the_budget_in_a_seeded_order():
    from provenance.engine.selection import random_fill

    costs = np.random.default_rng(2).integers(5, 60, size=40).astype(float)
    taken = random_fill(costs, 300, seed=1)
    assert costs[taken].sum() <= 300 and len(set(taken)) == len(taken)
    rest = np.setdiff1d(np.arange(40), taken)
    assert costs[rest].min() > 300 - costs[taken].sum()  # nothing left that fits
    assert random_fill(costs, 300, seed=1) == taken != random_fill(costs, 300, seed=2)
