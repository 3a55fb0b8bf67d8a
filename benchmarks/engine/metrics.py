"""What a recipe benchmark reports, from per-seed scores: means with intervals over seeds, the
decision accuracy of a ranking across seeds, and the cost of compliance against a reference.
numpy and scipy only: no Django.

Scores are "lower is better" (perplexity) unless a function is told otherwise.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int


def seed_interval(values: Sequence[float], level: float = 0.95) -> Interval:
    """The mean over seeds with Student's t interval (few seeds: a bootstrap of 3 values would
    claim far more certainty than it has). One seed: no interval (low = high = the value)."""
    from scipy import stats

    a = np.asarray(values, dtype=np.float64)
    if len(a) == 0:
        raise ValueError("no values")
    mean = float(a.mean())
    if len(a) == 1:
        return Interval(mean, mean, mean, 1)
    half = float(stats.t.ppf(0.5 + level / 2, len(a) - 1) * a.std(ddof=1) / math.sqrt(len(a)))
    return Interval(mean, mean - half, mean + half, len(a))


def perplexity(nll_sum: float, tokens: int) -> float:
    """exp of the mean negative log-likelihood per token."""
    if tokens <= 0:
        raise ValueError("no tokens")
    return math.exp(nll_sum / tokens)


@dataclass(frozen=True)
class Decision:
    accuracy: float                        # over every pair and seed
    pairs: dict[tuple[str, str], float]    # per pair of entries: the share of seeds that agree
    comparisons: int


def decision_accuracy(scores: Mapping[str, Sequence[float]],
                      lower_is_better: bool = True) -> Decision:
    """How often one seed ranks a pair of entries as the other seeds do (after DataDecide's
    decision accuracy, taken across seeds instead of scales): for each pair (a, b) and each seed
    s, does the order of a and b at seed s agree with their order in the mean over the *other*
    seeds? Leaving s out keeps a seed from agreeing with itself. A tie counts one half. Entries
    need the same number of seeds, two at least."""
    names = sorted(scores)
    counts = {len(v) for v in scores.values()}
    if len(counts) != 1 or (seeds := counts.pop()) < 2:
        raise ValueError("every entry needs the same number of seeds, at least 2")
    sign = -1.0 if lower_is_better else 1.0
    values = {name: np.asarray(scores[name], dtype=np.float64) * sign for name in names}
    pairs: dict[tuple[str, str], float] = {}
    for a, b in itertools.combinations(names, 2):
        agree = 0.0
        for s in range(seeds):
            rest = [t for t in range(seeds) if t != s]
            one = np.sign(values[a][s] - values[b][s])
            others = np.sign(values[a][rest].mean() - values[b][rest].mean())
            agree += 0.5 if one == 0 or others == 0 else float(one == others)
        pairs[(a, b)] = agree / seeds
    accuracy = float(np.mean(list(pairs.values()))) if pairs else 1.0
    return Decision(accuracy, pairs, len(pairs) * seeds)


def ranking(scores: Mapping[str, Sequence[float]], lower_is_better: bool = True) -> list[str]:
    """Entries by their mean over seeds, best first (ties by name)."""
    sign = 1.0 if lower_is_better else -1.0
    return sorted(scores, key=lambda name: (sign * float(np.mean(scores[name])), name))


def relative_to(scores: Sequence[float], reference: Sequence[float],
                level: float = 0.95) -> Interval:
    """An entry's score over the reference's, seed by seed (seed s of both trained alike), as a
    ratio with its t interval: 1.08 is 8% worse perplexity than the reference."""
    a, b = np.asarray(scores, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError("the entry and the reference need the same seeds")
    return seed_interval((a / b).tolist(), level)
