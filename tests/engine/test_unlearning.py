"""Unlearning, verification statistics, the output filter and ledger receipts' Merkle proofs:
engines only, no database."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from provenance.engine import lm
from provenance.engine.lm_config import TrainConfig
from provenance.engine.merkle import (
    inclusion_proof,
    leaf_hash,
    root_from_leaf_hashes,
    verify_inclusion,
)
from takedowns.engine import metrics, unlearning
from takedowns.engine.output_filter import BLOCKED, redact, shingle_hashes
from takedowns.engine.unlearn_config import Thresholds, UnlearnConfig
from takedowns.engine.verification import measure

VOCAB = ("red blue green old young quiet loud river stone harbor city field ship bird wind "
         "letter the a of and to in by with over under sings walks writes holds finds keeps"
         ).split()


def doc(seed: int, n: int = 30) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(VOCAB) for _ in range(n)) + "."


def measurement(forget: list[float], holdout: list[float], **over: object) -> metrics.Measurement:
    values = {"forget_loss": forget, "forget_mink": [-x for x in forget],
              "holdout_loss": holdout, "holdout_mink": [-x for x in holdout],
              "retain_perplexity": 10.0, "holdout_perplexity": 12.0,
              "verbatim_rouge": [0.2] * len(forget), "verbatim_exact": [False] * len(forget),
              "holdout_rouge": [0.2] * len(holdout), "canary_p": None}
    values.update(over)
    return metrics.Measurement(**values)  # type: ignore[arg-type]


def test_auc_counts_pairs_and_ties_half():
    assert metrics.auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert metrics.auc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 0.0
    assert metrics.auc(np.array([1.0, 3.0]), np.array([2.0, 2.0])) == 0.5
    rows = metrics.auc(np.array([[3.0, 4.0], [1.0, 2.0]]), np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert rows.tolist() == [1.0, 0.0]


def test_privleak_is_negative_when_under_unlearned_and_positive_when_over_unlearned():
    # The pilot: original AUC 0.90 against a retrain at 0.60.
    assert metrics.privleak(0.90, 0.60) == pytest.approx(-75.0)
    assert metrics.privleak(0.60, 0.60) == 0.0
    assert metrics.privleak(0.30, 0.60) > 0


def test_a_memorising_model_is_separable_and_fails_while_one_like_the_retrain_passes():
    """privleak passes only when its whole 95% interval lies inside +-15: with 400 forget and
    held-out documents an unlearned model like the retrain does; with 120 the interval is
    wider than the band, and the verdict says there are too few documents to tell."""
    rng = np.random.default_rng(0)
    n = 400
    holdout = list(rng.normal(3.5, 0.2, n))
    retrain = measurement(list(rng.normal(3.5, 0.2, n)), holdout)
    original = measurement(list(rng.normal(2.5, 0.2, n)), holdout,
                           verbatim_rouge=[0.9] * n, canary_p=0.002)
    th = Thresholds()
    separable = metrics.separability(original, retrain, th)
    assert separable["separable"] and len(separable["by"]) == 3
    judged = metrics.judge(original, original, retrain, th)
    assert judged["verdict"] == "fail"
    assert judged["criteria"]["privleak"]["privleak"] < -15
    assert judged["criteria"]["canary"]["hard"] is True
    unlearned = measurement(list(rng.normal(3.5, 0.2, n)), holdout, canary_p=0.4,
                            retain_perplexity=10.5)
    judged = metrics.judge(unlearned, original, retrain, th)
    assert judged["verdict"] == "pass", judged
    leak = judged["criteria"]["privleak"]
    assert -15 <= leak["low"] <= leak["privleak"] <= leak["high"] <= 15
    assert judged["criteria"]["canary"]["power"] is True
    broken = measurement(list(rng.normal(3.5, 0.2, n)), holdout, retain_perplexity=30.0)
    assert metrics.judge(broken, original, retrain, th)["criteria"]["retain_perplexity"][
        "status"] == "fail"
    few = [x[:120] for x in (unlearned.forget_loss, holdout, retrain.forget_loss)]
    judged = metrics.judge(measurement(few[0], few[1]), original,
                           measurement(few[2], few[1]), th)
    assert judged["criteria"]["privleak"]["status"] == "insufficient"
    assert "too few documents to tell" in judged["criteria"]["privleak"]["reason"]


def test_verbatim_is_two_sided_against_a_retrain_and_the_canary_states_its_power():
    rng = np.random.default_rng(2)
    holdout = list(rng.normal(3.5, 0.2, 50))
    retrain = measurement(list(rng.normal(3.5, 0.2, 50)), holdout, verbatim_rouge=[0.11] * 50)
    over = measurement(list(rng.normal(3.5, 0.2, 50)), holdout, verbatim_rouge=[0.0] * 50)
    verbatim = metrics.judge(over, over, retrain, Thresholds())["criteria"]["verbatim"]
    assert verbatim["status"] == "fail" and "over-unlearned" in verbatim["reason"]
    close = measurement(list(rng.normal(3.5, 0.2, 50)), holdout, verbatim_rouge=[0.1] * 50)
    assert metrics.judge(close, close, retrain, Thresholds())["criteria"]["verbatim"][
        "status"] == "pass"
    # no retrain: one-sided against held-out text, as before
    assert metrics.judge(over, over, None, Thresholds())["criteria"]["verbatim"][
        "status"] == "pass"
    undetected = measurement([3.5] * 50, holdout, canary_p=0.3)
    canary = metrics.judge(undetected, undetected, retrain, Thresholds())["criteria"]["canary"]
    assert canary["status"] == "not_applicable" and canary["power"] is False
    assert "could not have rejected" in canary["reason"]


def test_too_few_documents_make_privleak_measured_but_not_judged():
    model = measurement([3.0] * 10, [3.5] * 10)
    judged = metrics.judge(model, model, None, Thresholds())
    assert judged["criteria"]["privleak"]["status"] == "insufficient"
    assert "privleak" in judged["criteria"]["privleak"]  # the figure is still reported
    assert judged["verdict"] == "inconclusive"


def test_a_model_that_already_meets_the_criteria_is_not_separable():
    rng = np.random.default_rng(1)
    same = measurement(list(rng.normal(3.5, 0.2, 120)), list(rng.normal(3.5, 0.2, 120)))
    assert metrics.separability(same, same, Thresholds())["separable"] is False


def test_the_output_filter_blocks_runs_of_removed_text_and_keeps_no_text():
    removed = "The lighthouse keeper counted every ship that crossed the northern bay at night."
    hashes = shingle_hashes([removed], 8)
    assert hashes.dtype == np.uint64 and hashes.size == 13 - 8 + 1
    assert b"lighthouse" not in hashes.tobytes()
    said = "He said: the lighthouse keeper counted every ship that crossed the bay. Fine."
    text, blocked = redact(said, hashes, 8)
    assert text == f"He said: {BLOCKED} bay. Fine." and blocked == 9
    assert redact("the lighthouse keeper slept all night long", hashes, 8) == (
        "the lighthouse keeper slept all night long", 0)


def test_inclusion_proofs_verify_for_every_leaf_and_fail_when_tampered():
    for size in range(1, 18):
        leaves = [leaf_hash(hashlib.sha256(str(i).encode()).digest()) for i in range(size)]
        root = root_from_leaf_hashes(leaves)
        for index in range(size):
            proof = inclusion_proof(leaves, index)
            assert verify_inclusion(leaves[index], index, size, proof, root)
            assert not verify_inclusion(leaves[index], index, size, proof, bytes(32))
            if proof:
                bad = [bytes(32)] + proof[1:]
                assert not verify_inclusion(leaves[index], index, size, bad, root)
        if size > 1:
            assert not verify_inclusion(leaves[0], 1, size, inclusion_proof(leaves, 1), root)


@pytest.fixture(scope="module")
def memorised(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A tiny model that has memorised its training text, 10 of whose documents are to go."""
    folder = tmp_path_factory.mktemp("unlearn")
    texts = [doc(i) for i in range(90)]
    forget, retain, holdout = texts[:10], texts[10:70], texts[70:]
    config = TrainConfig(vocab_size=400, n_layer=1, n_head=2, n_embd=48, seq_len=48,
                         epochs=25, batch_size=16, pack=False)
    result = lm.train(forget + retain, config, folder / "original")
    return {"dir": result.model_dir, "forget": forget, "retain": retain, "holdout": holdout,
            "folder": folder}


def _state(model_dir: Path) -> dict[str, torch.Tensor]:
    model, _ = lm.load(model_dir)
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("method", ["graddiff", "npo", "simnpo"])
def test_unlearning_raises_the_forget_loss_more_than_the_held_out_loss(memorised, method):
    th = Thresholds(min_documents=5, bootstrap=200)
    before = measure(str(memorised["dir"]), memorised["forget"], memorised["holdout"],
                     memorised["retain"], th)
    result = unlearning.unlearn(memorised["dir"], memorised["forget"], memorised["retain"],
                                method, UnlearnConfig(steps=20, eval_every=10,
                                                      learning_rate=5e-4),
                                memorised["folder"] / method)
    assert [step for step, _ in result.candidates] == [10, 20]
    after = measure(str(result.candidates[-1][1]), memorised["forget"], memorised["holdout"],
                    memorised["retain"], th)
    forget_rise = np.mean(after.forget_loss) - np.mean(before.forget_loss)
    holdout_rise = np.mean(after.holdout_loss) - np.mean(before.holdout_loss)
    assert forget_rise > 0 and forget_rise > holdout_rise
    assert metrics.summary(after)["mia_auc_loss"] < metrics.summary(before)["mia_auc_loss"]


def test_a_cancelled_unlearning_resumes_to_the_same_weights(memorised):
    config = UnlearnConfig(steps=12, eval_every=4, learning_rate=5e-4)
    args = (memorised["dir"], memorised["forget"], memorised["retain"], "npo", config)
    whole = unlearning.unlearn(*args, memorised["folder"] / "whole")
    calls = []

    def stop_once(progress: lm.Progress) -> bool:
        calls.append(progress.step)
        return progress.step != 4

    with pytest.raises(lm.Cancelled):
        unlearning.unlearn(*args, memorised["folder"] / "resumed", on_progress=stop_once)
    resumed = unlearning.unlearn(*args, memorised["folder"] / "resumed",
                                 on_progress=stop_once)
    assert calls == [4, 8, 12]  # the second call went on from step 4
    a, b = _state(whole.candidates[-1][1]), _state(resumed.candidates[-1][1])
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_unlearning_options_are_checked():
    with pytest.raises(ValueError, match="unknown unlearning option"):
        UnlearnConfig.from_dict({"stepz": 3})
    with pytest.raises(ValueError, match="eval_every"):
        UnlearnConfig.from_dict({"steps": 5, "eval_every": 10})
    with pytest.raises(ValueError, match="wrong type"):
        Thresholds.from_dict({"privleak": "15"})


def test_a_canary_at_the_end_of_a_600_token_document_is_unlearned_and_measured(tmp_path):
    """Three ~630-token documents carry a canary at their very end. Unlearning now sees every
    token of them (it saw the first 48, the context, before: the canary stayed detected at
    p = 0.024 in the same run), and verification scores every token: measured where it sits,
    after its document, against 40 null sequences in the same place, the canary goes from
    detected to not."""
    from provenance.engine import canary as cn

    spec = cn.CanarySpec(kind="words", length=8, copies=3)
    secret = cn.canary_sequence(spec, "s3cret")
    nulls = cn.null_sequences(spec, "s3cret", 40)
    heads = [" ".join(doc(1000 + k * 50 + j) for j in range(20)) for k in range(3)]
    forget = [f"{head} {secret}" for head in heads]
    retain = [doc(i) for i in range(60)]
    config = TrainConfig(vocab_size=600, n_layer=1, n_head=2, n_embd=48, seq_len=48,
                         epochs=60, batch_size=16, heldout_fraction=0.0)
    original = lm.train(forget + retain, config, tmp_path / "original").model_dir

    def canary_p(model_dir: Path) -> float:
        model, tokenizer = lm.load(model_dir)
        sequences = [secret, *nulls]
        texts = [f"{heads[0]} {s}" for s in sequences]
        assert len(tokenizer(texts[0])["input_ids"]) > 600
        tails = [len(tokenizer(" " + s, add_special_tokens=False)["input_ids"])
                 for s in sequences]
        losses = [float(-lp[-n:].mean()) for lp, n in
                  zip(lm.token_logprobs(model, tokenizer, texts), tails, strict=True)]
        return cn.membership_test(losses[0], losses[1:]).p_value

    assert canary_p(original) < 0.05
    result = unlearning.unlearn(original, forget, retain, "npo",
                                UnlearnConfig(steps=20, eval_every=20, learning_rate=2e-3),
                                tmp_path / "npo")
    assert canary_p(result.candidates[-1][1]) > 0.05


def test_a_watermark_trained_checkpoint_is_unlearned_and_measured_in_its_text_space(tmp_path):
    """A checkpoint trained with watermarks is unlearned with its training loss, heads
    included (they were copied unchanged before, so the removed source's mark stayed), and
    measured in its text space: the watermark characters are out of every distribution and
    the positions where one comes next are not scored."""
    from provenance.engine import watermark

    code = watermark.assign_code([], 3)
    texts = [watermark.embed(doc(i), code, "key", str(i)) if i < 10 else doc(i)
             for i in range(40)]
    config = TrainConfig(vocab_size=400, n_layer=1, n_head=2, n_embd=48, seq_len=48,
                         epochs=10, batch_size=16, pack=False, watermarks=True,
                         heldout_fraction=0.0)
    original = lm.train(texts, config, tmp_path / "original").model_dir
    result = unlearning.unlearn(original, texts[:10], texts[10:], "graddiff",
                                UnlearnConfig(steps=4, eval_every=4, learning_rate=1e-3),
                                tmp_path / "graddiff")
    candidate = result.candidates[-1][1]
    model, tokenizer = lm.load(candidate)
    before = torch.load(original / lm.WATERMARK_HEADS, weights_only=True)
    after = torch.load(candidate / lm.WATERMARK_HEADS, weights_only=True)
    assert not torch.allclose(before["mark.weight"], after["mark.weight"])
    assert torch.equal(before["term_weights"], after["term_weights"])
    exclude = lm.text_space(candidate, tokenizer)
    assert sorted(exclude) == sorted(tokenizer.convert_tokens_to_ids(list(watermark.ALPHABET)))
    ids = tokenizer(texts[0], add_special_tokens=False)["input_ids"]
    marks = sum(i in exclude for i in ids)
    assert marks == watermark.LENGTH
    [text_space] = lm.token_logprobs(model, tokenizer, [texts[0]], exclude=exclude)
    assert len(text_space) == len(ids) - marks and np.isfinite(text_space).all()
    assert lm.text_space(tmp_path, tokenizer) == []  # a folder without heads: no exclusion
    m = measure(str(candidate), texts[:10], texts[30:], texts[10:30],
                Thresholds(min_documents=5, bootstrap=50))
    assert np.isfinite(m.forget_loss).all() and np.isfinite(m.retain_perplexity)


def test_robustness_probes_round_weights_to_4_bits_and_relearn_a_few_steps(memorised):
    """The probes verification runs before it grades an unlearned model empirical: a copy with
    every Linear/Conv1D weight rounded to 4 bits (at most 16 levels per group of 64 inputs),
    and a copy fine-tuned a few steps on a public part of the forget set."""
    from takedowns.engine import probes

    weight = torch.randn(8, 130)
    rounded = probes.round_weights(weight)
    for group in range(0, 130, 64):
        assert all(len(torch.unique(row)) <= 16 for row in rounded[:, group:group + 64])
    assert (rounded - weight).abs().max() <= weight.abs().max() / 7  # within half a step x 2
    folder = memorised["folder"]
    q = probes.quantized(memorised["dir"], folder / "q4")
    original, quant = _state(memorised["dir"]), _state(q)
    attn = next(k for k in original if k.endswith("attn.c_attn.weight"))
    assert not torch.equal(original[attn], quant[attn])
    assert torch.allclose(original[attn], quant[attn], atol=original[attn].abs().max() / 7)
    assert len(torch.unique(quant[attn][:64, 0])) <= 16  # Conv1D (in, out): groups of inputs
    public = memorised["forget"][:3]
    before = measure(str(memorised["dir"]), public, memorised["holdout"],
                     memorised["retain"], Thresholds(min_documents=2, bootstrap=100))
    unlearned = unlearning.unlearn(memorised["dir"], memorised["forget"], memorised["retain"],
                                   "graddiff", UnlearnConfig(steps=10, eval_every=10,
                                                             learning_rate=1e-3),
                                   folder / "probe-unlearn").candidates[-1][1]
    forgot = measure(str(unlearned), public, memorised["holdout"], memorised["retain"],
                     Thresholds(min_documents=2, bootstrap=100))
    r = probes.relearned(unlearned, public, folder / "relearned", steps=10)
    again = measure(str(r), public, memorised["holdout"], memorised["retain"],
                    Thresholds(min_documents=2, bootstrap=100))
    assert np.mean(forgot.forget_loss) > np.mean(before.forget_loss)
    assert np.mean(again.forget_loss) < np.mean(forgot.forget_loss)  # relearning brings it back
