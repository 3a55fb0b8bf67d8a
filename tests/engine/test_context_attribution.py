"""Context attribution's pure parts: the surrogate, its held-out score, shares, spans, MMR, and
the prompt's fitting into a checkpoint's context."""

import math

import numpy as np
import pytest

from retrieval.engine import context, prompts


def test_the_surrogate_recovers_which_passages_an_answer_rests_on():
    weights = np.array([4.0, 0.0, 0.0, 1.5, 0.0])  # passage 0 matters most, 3 a little
    masks = context.ablation_masks(5, 64, seed=1)
    rng = np.random.default_rng(2)
    targets = masks @ weights - 20 + rng.normal(0, 0.05, len(masks))
    fit = context.surrogate_fit(masks[:48], targets[:48])
    assert int(np.argmax(fit.weights)) == 0
    assert fit.weights[3] == pytest.approx(1.5, abs=0.2)
    assert max(abs(fit.weights[i]) for i in (1, 2, 4)) < 0.2  # sparse: the rest near 0
    assert fit.intercept == pytest.approx(-20, abs=0.3)
    assert context.lds(fit, masks[48:], targets[48:]) > 0.9
    # A surrogate that ranks held-out ablations backwards scores below 0
    backwards = context.Surrogate([-w for w in fit.weights], 0.0)
    assert context.lds(backwards, masks[48:], targets[48:]) < -0.9
    assert context.lds(fit, masks[48:], np.zeros(16)) is None  # nothing to rank


def test_masks_keep_about_half_and_are_reproducible():
    a, b = context.ablation_masks(6, 200, seed=3), context.ablation_masks(6, 200, seed=3)
    assert (a == b).all() and set(np.unique(a)) == {0.0, 1.0}
    assert 0.4 < a.mean() < 0.6
    assert not (a == context.ablation_masks(6, 200, seed=4)).all()


def test_logit_probability_is_stable_for_long_and_for_certain_answers():
    assert context.logit_probability(math.log(0.5)) == pytest.approx(0.0, abs=1e-12)
    assert context.logit_probability(-500.0) == pytest.approx(-500.0)  # p tiny: ~log p
    assert context.logit_probability(math.log(0.9)) == pytest.approx(math.log(9))


def test_shares_split_positive_contributions_over_each_passages_sources():
    owed = context.shares([3.0, 1.0, -2.0, 0.5], [[10], [10, 11], [12], []])
    assert owed == pytest.approx({10: 0.875, 11: 0.125})  # 3/4 + (1/4)/2; 12 hurt; [] no source
    assert sum(owed.values()) == pytest.approx(1.0)
    assert context.shares([-1.0, 0.0], [[1], [2]]) == {}


def test_verbatim_spans_find_the_runs_an_answer_copied_with_their_offsets():
    passages = ["The lantern on the harbour wall was painted golden every spring by the keeper.",
                "Nothing here is shared with the answer at all."]
    answer = "They say the lantern on the harbour wall was painted golden, long ago."
    [span] = context.verbatim_spans(answer, passages, min_words=5)
    assert span.passage == 0 and span.words == 7  # "the" and "The", "golden," and "golden" differ
    assert answer[span.start:span.end] == "lantern on the harbour wall was painted"
    assert passages[0][span.passage_start:span.passage_end] == answer[span.start:span.end]
    assert context.verbatim_spans(answer, passages, min_words=8) == []


def test_diverse_picks_relevant_passages_but_not_the_same_one_twice():
    q = np.array([1.0, 0.0, 0.0])
    near = np.array([0.95, 0.312, 0.0]) / np.linalg.norm([0.95, 0.312, 0.0])
    other = np.array([0.7, 0.0, 0.714]) / np.linalg.norm([0.7, 0.0, 0.714])
    candidates = np.vstack([near, near, other, [0.0, 0.0, 1.0]])
    assert context.diverse(q, candidates, 2) == [0, 2]  # the duplicate of 0 is skipped
    assert context.diverse(q, candidates, 2, weight=1.0) == [0, 1]  # relevance alone
    assert context.diverse(q, candidates[:0], 2) == []


class WordTokenizer:
    """Whitespace tokens with offsets, the way a fast Hugging Face tokenizer reports them."""
    is_fast = True

    def __call__(self, text, add_special_tokens=False, return_offsets_mapping=False):
        import re
        found = list(re.finditer(r"\S+", text))
        out = {"input_ids": [hash(m.group()) % 1000 for m in found]}
        if return_offsets_mapping:
            out["offset_mapping"] = [(m.start(), m.end()) for m in found]
        return out


def test_passages_are_cut_to_an_equal_share_of_the_context():
    tok = WordTokenizer()
    long = " ".join(f"w{i}" for i in range(100))
    texts, cut, new = prompts.fit(tok, "why?", [long, "short one"], "passages", context=60,
                                  new_tokens=10)
    assert cut == [True, False] and new == 10 and texts[1] == "short one"
    assert long.startswith(texts[0]) and len(texts[0].split()) < 25
    whole = prompts.prompt("why?", texts)
    assert len(tok(whole)["input_ids"]) + new <= 60
    assert whole.endswith("Question: why?\nAnswer:") and "Passage: short one" in whole
    # A question that leaves no room: fewer new tokens, passages cut to nothing
    _, _, fewer = prompts.fit(tok, " ".join(["q"] * 55), [long], "passages", 60, 10)
    assert fewer < 10


def test_a_cut_passage_ends_at_a_word_boundary():
    class Chars(WordTokenizer):
        def __call__(self, text, add_special_tokens=False, return_offsets_mapping=False):
            out = {"input_ids": [ord(c) for c in text]}
            if return_offsets_mapping:
                out["offset_mapping"] = [(i, i + 1) for i in range(len(text))]
            return out

    text = "the harbour master kept a ledger of ships"
    [cut], [was_cut], _ = prompts.fit(Chars(), "q", [text], "passages", context=60,
                                      new_tokens=5)
    assert was_cut and text.startswith(cut) and text[len(cut)] == " "
    assert cut == "the harbour master kept a"  # 25 characters of room, whole words
