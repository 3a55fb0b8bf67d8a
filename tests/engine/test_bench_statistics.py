"""The attribution benchmarks' worlds and statistics (what the README's figures and every
report's evaluation rest on): held-out worlds really are held out, and the intervals are
computed as described."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import attribution_eval as ae  # noqa: E402
import attribution_realtext as rt  # noqa: E402


def test_rowwise_spearman_matches_scipy_with_ties_and_counts_a_constant_row_as_zero():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, size=(6, 30)).astype(float)  # many ties
    b = a + rng.normal(0, 2, size=a.shape)
    a[5] = 3.0  # no signal
    ours = ae._rowwise_spearman(a, b)
    for row in range(5):
        assert ours[row] == pytest.approx(spearmanr(a[row], b[row]).statistic)
    assert ours[5] == 0.0


def test_held_out_worlds_share_no_template_or_query_with_the_tuning_world(tmp_path):
    tuning = ae.make_world(0, 60, long=False)
    held = [ae.make_world(w, 60, long=w == 4) for w in range(1, 5)]

    def templates_of(world):
        """The templates a world's documents were written from (matched whole, with any
        name and value)."""
        import re

        used = set()
        for pool in ae.TEMPLATES.values():
            for template in pool:
                pattern = re.escape(template).replace(r"\{name\}", r"[A-Z][a-z]+ [A-Z][a-z]+")
                pattern = pattern.replace(r"\{value\}", r"[A-Za-z]+")
                if any(re.search(rf"(^|\. ){pattern}( |$)", d) for d in world.docs):
                    used.add(template)
        return used

    assert templates_of(tuning) == {t for pool in ae.TEMPLATES.values() for t in pool[:2]}
    for world in held:
        assert not templates_of(world) & templates_of(tuning)
        # not one query of the tuning world is asked again
        assert not {q["prompt"] for q in world.queries} & {q["prompt"] for q in tuning.queries}
    for world in [tuning, *held]:
        assert len(world.docs) == 240 and len(world.queries) == 120
        for q in world.queries:  # each query's two documents state its value
            value = q["completion"].strip(" .")
            assert all(value in world.docs[d] for d in q["docs"])
    long = held[-1]
    assert long.long and not any(w.long for w in [tuning, *held[:-1]])
    # every document of the long world is longer than the bench's 32-token context
    from provenance.engine import lm
    from provenance.engine.lm_config import TrainConfig

    tokenizer = lm.train_tokenizer(long.docs, TrainConfig.from_dict(
        {"vocab_size": 512, "seq_len": 32}), tmp_path / "tokenizer")
    assert min(len(tokenizer(d)["input_ids"]) for d in long.docs) > 32


def test_bootstrap_intervals_cover_the_estimate_and_are_exact_for_a_perfect_method():
    rng = np.random.default_rng(1)
    queries = [{"docs": [2 * q, 2 * q + 1]} for q in range(10)]
    masks = (rng.random((40, 20)) < 0.5).astype(float)
    effect = rng.normal(size=(10, 20))
    losses = -(effect @ masks.T).T  # (subsets, queries): the true effect of each subset
    perfect = ae.replicates(ae.per_query(effect, masks, losses, queries), boots=300, seed=0)
    summary = ae.summarise([perfect])
    assert summary["lds"] == 1.0 and summary["lds_ci"] == [1.0, 1.0]
    noisy = ae.replicates(ae.per_query(effect + rng.normal(0, 1.5, effect.shape), masks,
                                       losses, queries), boots=300, seed=0)
    summary = ae.summarise([noisy])
    assert 0 < summary["lds"] < 1
    assert summary["lds_ci"][0] <= summary["lds"] <= summary["lds_ci"][1]
    assert summary["lds_ci"][1] - summary["lds_ci"][0] > 0.01
    # two worlds: the mean of the worlds, its replicates averaged world by world
    both = ae.summarise([perfect, noisy])
    assert both["lds"] == pytest.approx((1.0 + noisy["point"]["lds"]) / 2, abs=1e-4)


def test_wilson_intervals_match_the_textbook_values():
    assert rt.wilson(0, 10) == [0.0, 0.2775]
    assert rt.wilson(10, 10) == [0.7225, 1.0]
    low, high = rt.wilson(20, 40)
    assert low == pytest.approx(0.3520, abs=1e-4) and high == pytest.approx(0.6480, abs=1e-4)
