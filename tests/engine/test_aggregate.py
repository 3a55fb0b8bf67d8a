"""What the report says about agreement between methods: it said "Yes" when only one method
found anything, and when the methods' top documents did not overlap at all."""

from __future__ import annotations

from attribution.engine.aggregate import (
    Evidence,
    agreement,
    agreement_sentence,
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
