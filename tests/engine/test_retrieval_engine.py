"""Chunk spans and reciprocal-rank fusion."""

import pytest

from retrieval.engine.chunking import chunk, model_tokenizer, spans
from retrieval.engine.fusion import reciprocal_rank

TEXT = ("The harbour master kept a ledger of every ship that came in with the tide. " * 12
        + "Lanterns were lit at dusk along the quay.")


def test_windows_overlap_by_the_given_tokens_and_the_last_ends_at_the_end():
    offsets = [(i * 2, i * 2 + 1) for i in range(10)]
    got = list(spans(offsets, size=4, overlap=1))
    assert [(s.start, s.end, s.tokens) for s in got] == [(0, 7, 4), (6, 13, 4), (12, 19, 4)]
    assert list(spans(offsets[:3], size=4, overlap=1))[0].tokens == 3  # shorter than one window
    assert list(spans([], size=4, overlap=1)) == []
    with pytest.raises(ValueError):
        list(spans(offsets, size=4, overlap=4))


def test_chunks_are_slices_of_the_text_within_the_embedders_window():
    [doc_spans] = chunk([TEXT], size=32, overlap=8)
    tok = model_tokenizer()
    assert len(doc_spans) > 3
    assert doc_spans[0].start == 0 and doc_spans[-1].end == len(TEXT)
    for before, after in zip(doc_spans, doc_spans[1:], strict=False):
        assert after.start < before.end  # consecutive chunks overlap
    for span in doc_spans:
        piece = TEXT[span.start:span.end]
        assert len(tok.encode(piece, add_special_tokens=False).ids) <= 32
    # Every token of the text is in some chunk.
    covered = set()
    for span in doc_spans:
        covered |= set(range(span.start, span.end))
    assert all(i in covered for i, ch in enumerate(TEXT) if not ch.isspace())
    assert chunk(["", "   "], size=32, overlap=8) == [[], []]


def test_reciprocal_rank_rewards_agreement_and_keeps_each_lists_rank():
    fused = reciprocal_rank([["a", "b", "c"], ["c", "a", "d"]])
    assert [f.item for f in fused] == ["a", "c", "b", "d"]
    assert fused[0].ranks == (1, 2) and fused[2].ranks == (2, None)
    assert fused[0].score == pytest.approx(1 / 61 + 1 / 62)
    assert [f.item for f in reciprocal_rank([["a", "b"], []], limit=1)] == ["a"]
    assert reciprocal_rank([["x", "x", "y"]])[0].ranks == (1,)  # a repeat keeps its best rank


def test_weighted_reciprocal_rank_lets_the_heavier_list_rank_first():
    lists = [["k1", "k2", "both"], ["v1", "v2", "both"]]
    assert [f.item for f in reciprocal_rank(lists)][:3] == ["both", "k1", "v1"]  # tie: first seen
    heavier = reciprocal_rank(lists, weights=[2.0, 1.0])
    assert [f.item for f in heavier][:3] == ["both", "k1", "k2"]
    assert heavier[0].score == pytest.approx(2 / 63 + 1 / 63)
    # a weight of 0 drops a list's say, not its items' ranks
    alone = reciprocal_rank(lists, weights=[0.0, 1.0])
    assert [f.item for f in alone][:3] == ["v1", "v2", "both"]
    assert alone[2].ranks == (3, 3)
    with pytest.raises(ValueError, match="one weight"):
        reciprocal_rank(lists, weights=[1.0])
    with pytest.raises(ValueError, match="not negative"):
        reciprocal_rank(lists, weights=[-1.0, 1.0])
