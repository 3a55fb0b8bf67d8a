"""What the report says about agreement between methods: it said "Yes" when only one method
found anything, and when the methods' top documents did not overlap at all."""

from __future__ import annotations

from attribution.engine.aggregate import (
    Evidence,
    agreement,
    agreement_sentence,
    evaluation_sentence,
    method_shares,
)

NAMES = {1: "Harbor essays", 2: "Forum posts"}
METHODS = ["spans", "influence", "embedding", "watermark"]


def _judged(evidence: list[Evidence]) -> dict:
    return agreement(evidence, method_shares(evidence), methods=METHODS)


def test_one_method_alone_is_nothing_to_compare():
    found = _judged([Evidence("spans", 1, 10, 5.0)])
    assert found["status"] == "single" and found["agree"] is False
    assert found["found_nothing"] == ["embedding", "influence", "watermark"]
    assert agreement_sentence(found, NAMES) == (
        "Only spans found evidence (top source: Harbor essays): nothing to compare. "
        "embedding, influence, watermark found nothing.")


def test_the_same_source_with_disjoint_documents_agrees_on_the_source_only():
    found = _judged([Evidence("spans", 1, 10, 5.0), Evidence("influence", 1, 11, 2.0),
                     Evidence("influence", 1, 12, 1.0)])
    assert found["status"] == "source" and found["agree"] is False
    sentence = agreement_sentence(found, NAMES)
    assert sentence == ("On the source only: spans, influence all point to Harbor essays, but "
                        "their top documents overlap by 0.00 (Jaccard of the top 5): they credit "
                        "different documents. embedding, watermark found nothing.")


def test_agreement_on_source_and_documents_and_disagreement_are_told_apart():
    agree = _judged([Evidence("spans", 1, 10, 5.0), Evidence("embedding", 1, 10, 0.9),
                     Evidence("embedding", 2, 20, 0.1)])
    assert agree["status"] == "agree" and agree["agree"] is True
    assert agreement_sentence(agree, NAMES).startswith(
        "Yes: spans, embedding all point to Harbor essays, and their top documents overlap by "
        "0.50 (Jaccard")
    apart = _judged([Evidence("spans", 1, 10, 5.0), Evidence("embedding", 2, 20, 0.9)])
    assert apart["status"] == "disagree"
    assert "(spans: Harbor essays; embedding: Forum posts)" in agreement_sentence(apart, NAMES)
    assert _judged([])["status"] == "none"


def test_reports_made_before_the_status_are_still_read():
    old = {"top_source": {"spans": 1}, "agree": True, "pairs": []}
    assert agreement_sentence(old, NAMES).startswith("Yes: spans all point to Harbor essays")


def test_influence_is_set_beside_the_cheap_baselines_and_says_where_it_differs():
    from attribution.engine.aggregate import baseline_check, baseline_sentence

    evidence = [Evidence("influence", 1, 10, 3.0), Evidence("influence", 2, 20, 1.0),
                Evidence("bm25", 2, 20, 9.0), Evidence("bm25", 2, 21, 4.0),
                Evidence("embedding", 1, 10, 0.9), Evidence("spans", 1, 10, 12.0)]
    check = baseline_check(evidence, method_shares(evidence))
    assert set(check) == {"influence", "spans"} and check["influence"]["top_source"] == 1
    bm25 = check["influence"]["against"]["bm25"]
    assert bm25["top_source"] == 2 and bm25["same_top_source"] is False
    assert bm25["top_documents"] == [20, 21] and bm25["top_documents_jaccard"] == 0.333
    assert check["influence"]["against"]["embedding"]["same_top_source"] is True
    sentence = baseline_sentence(check, NAMES)
    assert sentence.startswith("Influence's top source is Harbor essays, which is not the top "
                               "source of BM25: it says something the cheap baselines do not")
    assert "BM25: Forum posts, top-document overlap 0.33" in sentence
    alone = baseline_check([Evidence("influence", 1, 10, 3.0)],
                           method_shares([Evidence("influence", 1, 10, 3.0)]))
    assert alone["influence"]["against"]["bm25"]["top_source"] is None
    assert "BM25 found nothing" in baseline_sentence(alone, NAMES)
    assert baseline_sentence({}, NAMES) == "No influence or span evidence to compare with."


def test_bm25_ranks_by_shared_rare_words_and_survives_a_save(tmp_path):
    from attribution.engine.lexical import Lexical

    texts = ["The harbor master keeps the old lighthouse lamp burning.",
             "A recipe for bread with rye flour and caraway.",
             "The lighthouse keeper writes letters to the harbor."]
    index = Lexical.build(texts, [7, 8, 9])
    found = index.search("who keeps the lighthouse lamp", 3)
    assert [d for d, _ in found][:2] == [7, 9] and found[0][1] > found[1][1] > 0
    assert index.search("the and a", 3) == []  # stop words only: no evidence
    index.save(tmp_path / "v1")
    again = Lexical.open(tmp_path / "v1")
    assert again is not None and again.search("rye bread", 2)[0][0] == 8
    assert Lexical.open(tmp_path / "missing") is None


def test_the_evaluation_sentence_says_when_influence_misses_its_goal_or_trails_a_peer():
    measured = {"applies": True, "configuration": "influence, 1 checkpoint, damping 0.003",
                "lds": 0.62, "lds_ci": [0.58, 0.66], "recall_at_1": 0.95,
                "strict_recall_at_2": 0.7, "mrr": 0.97, "goal": {"lds": 0.7, "lower_bound": 0.65},
                "best_peer": {"method": "BM25", "lds": 0.66, "lds_ci": [0.6, 0.7]},
                "bm25": {"lds": 0.66, "lds_ci": [0.6, 0.7]},
                "benchmark": "bench/results/attribution_eval.json", "world": "4 held-out worlds"}
    sentence = evaluation_sentence(measured)
    assert sentence.startswith("The configuration this run used (influence, 1 checkpoint, "
                               "damping 0.003) scored LDS 0.620 [95% CI 0.580, 0.660] on worlds "
                               "it was not tuned on, below the goal (LDS 0.70, lower bound 0.65)")
    assert ("; the best peer, BM25, scored LDS 0.660 [95% CI 0.600, 0.700]: influence is not "
            "ahead of it (") in sentence
    assert sentence.count("BM25") == 1  # the best peer is BM25: said once
    assert sentence.endswith("(bench/results/attribution_eval.json; 4 held-out worlds).")
    # met, and ahead: no warning words
    good = {**measured, "lds": 0.74, "lds_ci": [0.7, 0.78],
            "best_peer": {"method": "MiniLM cosine", "lds": 0.6, "lds_ci": [0.55, 0.65]}}
    sentence = evaluation_sentence(good)
    assert "below the goal" not in sentence and "influence is ahead of it" in sentence
    assert "; BM25 scored LDS 0.660" in sentence
    # ahead on the mean, the intervals overlapping: not called ahead
    close = {**good, "best_peer": {"method": "Kronfluence", "lds": 0.72, "lds_ci": [0.69, 0.75]}}
    assert "influence is level with it within the intervals" in evaluation_sentence(close)
    # met on the mean but not on the lower bound: a miss
    assert "below the goal" in evaluation_sentence({**good, "lds_ci": [0.62, 0.8]})
    assert evaluation_sentence({"applies": False, "reason": "no evaluation results"}) == (
        "No evaluated configuration applies: no evaluation results.")
