import random

import numpy as np
import pytest

from attribution.engine.spans import SpanParams, SpanShard, find_spans, suffix_array


def brute_suffix_array(tokens):
    return sorted(range(len(tokens)), key=lambda i: list(tokens[i:]))


@pytest.mark.parametrize("seed", range(5))
def test_suffix_array_matches_a_plain_sort(seed):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(-3, 4, size=300)
    assert suffix_array(tokens).tolist() == brute_suffix_array(tokens.tolist())


def occurrences(docs, needle):
    found = []
    for doc_id, toks in docs:
        for i in range(len(toks) - len(needle) + 1):
            if toks[i:i + len(needle)] == needle:
                found.append(doc_id)
    return found


@pytest.fixture
def corpus():
    rng = random.Random(0)
    docs = [(100 + d, [rng.randrange(50) for _ in range(rng.randrange(20, 60))]) for d in range(40)]
    return docs


def test_the_longest_match_at_each_position_is_exact(corpus):
    shard = SpanShard.build(corpus)
    rng = random.Random(1)
    doc_id, toks = corpus[7]
    query = [rng.randrange(50) for _ in range(5)] + toks[3:23] + [rng.randrange(50)
                                                                 for _ in range(5)]
    for start in range(len(query)):
        found = shard.intervals(query, start)
        length = len(found)
        assert occurrences(corpus, query[start:start + length])  # it occurs
        if start + length < len(query):
            assert not occurrences(corpus, query[start:start + length + 1])  # and is longest
        if length:
            lo, hi = found[-1]
            assert hi - lo == len(occurrences(corpus, query[start:start + length]))


def test_a_copied_passage_is_one_maximal_span_naming_its_document(corpus):
    shard = SpanShard.build(corpus)
    doc_id, toks = corpus[12]
    query = [999, 998] + toks[5:25] + [997]
    spans = find_spans([shard], query, SpanParams(min_length=8))
    assert len(spans) == 1
    assert (spans[0].start, spans[0].length) == (2, 20)
    assert [d.document for d in spans[0].documents] == [doc_id]
    assert not spans[0].documents[0].blocked


def test_matches_never_cross_document_boundaries():
    docs = [(1, [1, 2, 3, 4]), (2, [5, 6, 7, 8])]
    shard = SpanShard.build(docs)
    assert len(shard.intervals([3, 4, 5, 6], 0)) == 2


def test_common_phrases_short_spans_and_density_are_capped():
    phrase = [7, 7, 8, 9, 10, 11, 12, 13, 14, 15]
    docs = [(i, [i + 100] + phrase + [i + 200]) for i in range(30)]
    shard = SpanShard.build(docs)
    assert find_spans([shard], phrase, SpanParams(min_length=5, max_count=10)) == []
    found = find_spans([shard], phrase, SpanParams(min_length=5, max_count=50, max_docs=10))
    assert found[0].count == 30 and len(found[0].documents) == 10
    assert find_spans([shard], phrase[:4], SpanParams(min_length=5)) == []
    many = [(i, list(range(1000 * i, 1000 * i + 10))) for i in range(10)]
    query = [t for _, toks in many for t in toks]
    spans = find_spans([SpanShard.build(many)], query, SpanParams(min_length=5,
                                                                  max_density=0.02))
    assert len(spans) == 2  # 100 tokens x 0.02


def test_shards_combine_counts_and_documents(corpus, tmp_path):
    half = len(corpus) // 2
    a, b = SpanShard.build(corpus[:half]), SpanShard.build(corpus[half:])
    a.save(tmp_path / "a")
    b.save(tmp_path / "b")
    shards = [SpanShard.open(tmp_path / "a"), SpanShard.open(tmp_path / "b")]
    shared = [40, 41, 42, 43, 44, 45, 46, 47, 48, 49]
    docs = corpus[:2] + [(900, shared)] + corpus[half:half + 1] + [(901, [1] + shared)]
    sharded = [SpanShard.build(docs[:3]), SpanShard.build(docs[3:])]
    spans = find_spans(sharded, shared, SpanParams(min_length=8))
    assert spans[0].count == 2 and {d.document for d in spans[0].documents} == {900, 901}
    assert isinstance(shards[0].tokens, np.memmap)
    whole = find_spans([SpanShard.build(corpus)], corpus[30][1][:20], SpanParams(min_length=8))
    split = find_spans(shards, corpus[30][1][:20], SpanParams(min_length=8))
    assert [(s.start, s.length, s.count) for s in whole] == \
        [(s.start, s.length, s.count) for s in split]


def test_removed_documents_count_but_are_blocked(corpus):
    shard = SpanShard.build(corpus)
    doc_id, toks = corpus[3]
    spans = find_spans([shard], toks[:15], SpanParams(min_length=8),
                       blocked=frozenset({doc_id}))
    assert spans and spans[0].documents[0].document == doc_id
    assert spans[0].documents[0].blocked and spans[0].count >= 1


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError):
        find_spans([], [1, 2], SpanParams(max_density=0))


def test_the_batched_search_agrees_with_the_one_at_a_time_search(corpus):
    shard = SpanShard.build(corpus)
    rng = random.Random(3)
    query = corpus[5][1][2:30] + [rng.randrange(60) for _ in range(40)] + corpus[9][1][:25]
    lengths, lows, highs = shard.match_all(query)
    for start in range(len(query)):
        one = shard.intervals(query, start)
        assert lengths[start] == len(one)
        if one:
            assert (lows[len(one) - 1][start], highs[len(one) - 1][start]) == one[-1]
