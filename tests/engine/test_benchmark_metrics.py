"""Recipe-benchmark metrics on scores whose answers are known by hand."""

import math

import numpy as np
import pytest
from scipy import stats

from benchmarks.engine.metrics import (
    decision_accuracy,
    perplexity,
    ranking,
    relative_to,
    seed_interval,
)


def test_the_seed_interval_is_students_t():
    values = [10.0, 12.0, 14.0]
    got = seed_interval(values)
    half = stats.t.ppf(0.975, 2) * 2.0 / math.sqrt(3)
    assert (got.mean, got.n) == (12.0, 3)
    assert got.low == pytest.approx(12 - half) and got.high == pytest.approx(12 + half)
    one = seed_interval([5.0])
    assert (one.low, one.high) == (5.0, 5.0)
    with pytest.raises(ValueError):
        seed_interval([])


def test_perplexity_is_exp_of_the_mean_loss():
    assert perplexity(2 * math.log(3), 2) == pytest.approx(3.0)
    with pytest.raises(ValueError):
        perplexity(1.0, 0)


def test_decision_accuracy_counts_seeds_that_agree_with_the_others():
    # a beats b at every seed; c is between them at two seeds and last at one
    scores = {"a": [10.0, 10.0, 10.0], "b": [20.0, 20.0, 20.0], "c": [15.0, 15.0, 25.0]}
    decision = decision_accuracy(scores)
    assert decision.pairs[("a", "b")] == 1.0 and decision.pairs[("a", "c")] == 1.0
    # b against c: at seeds 0 and 1, c (15) is ahead of b (20) while the other two seeds' means
    # tie (20 against 20): a half each; at seed 2, c (25) is behind while the others put it
    # ahead: 0
    assert decision.pairs[("b", "c")] == pytest.approx(1 / 3)
    assert decision.accuracy == pytest.approx((1 + 1 + 1 / 3) / 3)
    assert decision.comparisons == 9


def test_decision_accuracy_is_one_for_a_stable_ranking_and_about_half_for_noise():
    rng = np.random.default_rng(0)
    stable = {f"r{i}": list(i + 0.01 * rng.normal(size=3)) for i in range(5)}
    assert decision_accuracy(stable).accuracy == 1.0
    noise = {f"r{i}": list(rng.normal(size=5)) for i in range(8)}
    assert 0.2 < decision_accuracy(noise).accuracy < 0.8
    higher = {"a": [1.0, 1.0], "b": [2.0, 2.0]}
    assert decision_accuracy(higher, lower_is_better=False).pairs[("a", "b")] == 1.0
    with pytest.raises(ValueError, match="same number of seeds"):
        decision_accuracy({"a": [1.0, 2.0], "b": [1.0]})
    with pytest.raises(ValueError, match="at least 2"):
        decision_accuracy({"a": [1.0], "b": [2.0]})


def test_ranking_and_the_ratio_to_the_reference():
    scores = {"everything": [10.0, 11.0], "licensed": [12.0, 12.1], "dedup": [9.0, 9.5]}
    assert ranking(scores) == ["dedup", "everything", "licensed"]
    assert ranking(scores, lower_is_better=False)[0] == "licensed"
    ratio = relative_to(scores["licensed"], scores["everything"])
    assert ratio.mean == pytest.approx((1.2 + 12.1 / 11) / 2)
    with pytest.raises(ValueError, match="same seeds"):
        relative_to([1.0], [1.0, 2.0])
