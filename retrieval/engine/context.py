"""Context attribution for an answer generated with passages in its context, the way ContextCite
(Cohen-Wang et al., 2024) does it: ablate the context at random (each passage kept with
probability 1/2), read the answer's log-probability under each ablation, and fit a sparse linear
surrogate (Lasso) from "which passages were kept" to "how likely the answer was". Its weights are
the passages' contributions; its rank agreement with the true log-probability on ablations held
out of the fit (the linear datamodeling score, LDS) says how far to trust them. Leave-one-out
drops are kept beside them as the cheap baseline.

Also here: verbatim spans between an answer and its passages, the demonstrations chosen by
similarity and diversity (maximal marginal relevance), and the per-source shares of an answer.
numpy, scipy and scikit-learn only: no torch, no Django.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

KEEP = 0.5         # each passage kept with this probability in an ablation (ContextCite's)
LASSO_ALPHA = 0.01  # ContextCite's regularisation on logit-probabilities


def ablation_masks(passages: int, count: int, seed: int) -> np.ndarray:
    """`count` random keep-masks over the passages, (count, passages) of 0/1."""
    rng = np.random.default_rng(seed)
    return (rng.random((count, passages)) < KEEP).astype(np.float64)


def logit_probability(logprob: float) -> float:
    """log(p / (1 - p)) from log p, stable where p is tiny (a long answer) or near 1."""
    if logprob >= 0:
        return math.inf
    return float(logprob - math.log(-math.expm1(logprob)))


@dataclass(frozen=True)
class Surrogate:
    weights: list[float]  # one per passage: the change in logit-probability when it is kept
    intercept: float      # the logit-probability with no passage at all

    def predict(self, masks: np.ndarray) -> np.ndarray:
        return np.asarray(masks, dtype=np.float64) @ np.asarray(self.weights) + self.intercept


def surrogate_fit(masks: np.ndarray, targets: Sequence[float] | np.ndarray,
                  alpha: float = LASSO_ALPHA) -> Surrogate:
    """The sparse linear surrogate of targets (logit-probabilities) on keep-masks."""
    from sklearn.linear_model import Lasso

    x, y = np.asarray(masks, dtype=np.float64), np.asarray(targets, dtype=np.float64)
    if len(x) < 2:
        raise ValueError("a surrogate needs at least two ablations")
    model = Lasso(alpha=alpha, max_iter=10_000).fit(x, y)
    return Surrogate([float(w) for w in model.coef_], float(model.intercept_))


def lds(surrogate: Surrogate, masks: np.ndarray,
        targets: Sequence[float] | np.ndarray) -> float | None:
    """Spearman correlation of predicted and true logit-probabilities on held-out ablations;
    None when either side is constant (no ranking to agree on)."""
    from scipy.stats import spearmanr

    predicted, truth = surrogate.predict(masks), np.asarray(targets, dtype=np.float64)
    if len(truth) < 3 or np.ptp(predicted) == 0 or np.ptp(truth) == 0:
        return None
    return float(spearmanr(predicted, truth).statistic)


def shares(contributions: Sequence[float],
           passage_sources: Sequence[Sequence[int]]) -> dict[int, float]:
    """Each source's share of an answer: the passages' positive contributions, normalised to 1,
    each passage's split equally among the sources its document was found in. Empty when no
    passage raised the answer's likelihood (the answer owes nothing to its context)."""
    positive = [max(c, 0.0) for c in contributions]
    total = sum(p for p, sources in zip(positive, passage_sources, strict=True) if sources)
    out: dict[int, float] = {}
    if total <= 0:
        return out
    for part, sources in zip(positive, passage_sources, strict=True):
        for source in sources if part > 0 else ():
            out[source] = out.get(source, 0.0) + part / total / len(sources)
    return out


WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class VerbatimSpan:
    passage: int       # index among the answer's passages
    start: int         # [start, end) in the answer's text
    end: int
    passage_start: int  # [start, end) in the passage's text
    passage_end: int
    words: int


def verbatim_spans(answer: str, passages: Sequence[str], min_words: int = 5) -> list[VerbatimSpan]:
    """Runs of at least `min_words` whitespace-separated words that the answer shares verbatim
    with a passage (difflib's matching blocks over the word sequences), longest first."""
    said = [(m.group(), m.start(), m.end()) for m in WORD.finditer(answer)]
    found = []
    for n, passage in enumerate(passages):
        words = [(m.group(), m.start(), m.end()) for m in WORD.finditer(passage)]
        matcher = difflib.SequenceMatcher(None, [w for w, _, _ in said], [w for w, _, _ in words],
                                          autojunk=False)
        for a, b, size in matcher.get_matching_blocks():
            if size >= min_words:
                found.append(VerbatimSpan(n, said[a][1], said[a + size - 1][2], words[b][1],
                                          words[b + size - 1][2], size))
    return sorted(found, key=lambda s: (-s.words, s.start, s.passage))


def diverse(query: np.ndarray, candidates: np.ndarray, k: int, weight: float = 0.5) -> list[int]:
    """Maximal marginal relevance (Carbonell and Goldstein, 1998): indices of `k` candidates,
    each the most similar to the query less its similarity to those already chosen, weighted
    `weight` : 1 - `weight`. Rows are unit vectors (cosine = dot)."""
    if not len(candidates):
        return []
    relevance = candidates @ query
    similarity = candidates @ candidates.T
    chosen: list[int] = []
    left = list(range(len(candidates)))
    while left and len(chosen) < k:
        redundancy = similarity[np.ix_(left, chosen)].max(axis=1) if chosen else np.zeros(len(left))
        scores = weight * relevance[left] - (1 - weight) * redundancy
        chosen.append(left.pop(int(np.argmax(scores))))
    return chosen
