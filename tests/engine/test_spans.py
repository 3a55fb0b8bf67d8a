import json
import random

import numpy as np
import pytest

from attribution.engine.spans import (
    PackedSpans,
    SpanParams,
    SpanShard,
    find_spans,
    suffix_array,
    suffix_array_doubling,
    write_index,
)


def brute_suffix_array(tokens):
    return sorted(range(len(tokens)), key=lambda i: list(tokens[i:]))


@pytest.mark.parametrize("seed", range(5))
def test_suffix_array_matches_a_plain_sort(seed):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(-3, 4, size=300)
    assert suffix_array(tokens).tolist() == brute_suffix_array(tokens.tolist())


@pytest.mark.parametrize("seed", range(3))
def test_libdivsufsort_and_prefix_doubling_give_the_same_suffix_array(seed):
    rng = np.random.default_rng(seed)
    tokens = np.concatenate([rng.integers(0, 30, size=2000), [-1], np.tile([5, 6, 7], 300),
                             [-2], rng.integers(0, 3, size=500), [-3]])
    assert suffix_array(tokens).tolist() == suffix_array_doubling(tokens).tolist()


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


def test_sources_share_suffix_arrays_up_to_the_group_size(corpus, tmp_path):
    sources = [(f"s{k}", corpus[k * 10:(k + 1) * 10]) for k in range(4)]
    sources.append(("big", [(500, corpus[0][1] * 30)]))  # larger than a group: alone
    size = {name: sum(len(t) + 1 for _, t in docs) for name, docs in sources}
    limit = size["s0"] + size["s1"]
    stats = write_index(tmp_path / "index", sources, group_tokens=limit)
    assert {name: s["tokens"] for name, s in stats.items()} == size
    packed = PackedSpans.open(tmp_path / "index")
    groups = json.loads((tmp_path / "index" / "packed.json").read_text())["sources"]
    assert groups[0] == ["s0", "s1"] and groups[-1] == ["big"]
    assert sum(groups, []) == [name for name, _ in sources]
    assert len(packed.buckets) == len(groups) == len(packed.names)
    for group, after in zip(groups[:-1], groups[1:], strict=True):  # each full: next too big
        assert sum(size[s] for s in group) <= limit or len(group) == 1
        assert sum(size[s] for s in group) + size[after[0]] > limit
    whole = SpanShard.build([d for _, docs in sources for d in docs])
    for doc in (3, 17, 25, 38):
        query = [60, *corpus[doc][1][2:], 61]
        assert find_spans(packed, query, SpanParams(min_length=5)) == \
            find_spans([whole], query, SpanParams(min_length=5))
    assert find_spans(packed, corpus[0][1] * 2, SpanParams(min_length=5, max_count=1000)) == \
        find_spans([whole], corpus[0][1] * 2, SpanParams(min_length=5, max_count=1000))


def test_packed_shards_find_what_each_shard_finds_alone(corpus, tmp_path):
    """The packed index (all shards searched at once, single-occurrence matches extended by
    direct comparison) gives each shard the same longest match, interval size and documents
    as that shard searched on its own, including a copy longer than the comparison block."""
    rng = random.Random(5)
    long_doc = (999, [rng.randrange(50) for _ in range(150)])
    parts = [corpus[:10], corpus[10:25] + [long_doc], corpus[25:], []]
    folders = []
    for k, part in enumerate(parts):
        SpanShard.build(part).save(tmp_path / str(k))
        folders.append((f"source-{k}", tmp_path / str(k)))
    PackedSpans.write(tmp_path / "packed", folders)
    packed = PackedSpans.open(tmp_path / "packed")
    assert packed.names == ["source-0", "source-1", "source-2", "source-3"]
    query = (corpus[30][1] + [rng.randrange(60) for _ in range(30)] + long_doc[1][3:140]
             + corpus[3][1][5:40] + [77, 78])
    lengths, lows, highs = packed.match(query)
    assert lengths[1].max() == 137
    for k in range(len(parts)):
        shard = SpanShard.open(tmp_path / str(k))
        alone, alone_lows, alone_highs = shard.match_all(query)
        assert lengths[k].tolist() == alone.tolist()
        for start in np.nonzero(alone)[0]:
            lo, hi = alone_lows[alone[start] - 1][start], alone_highs[alone[start] - 1][start]
            assert highs[k, start] - lows[k, start] == hi - lo
            assert packed.documents(lows[k, start], highs[k, start], 100) == \
                shard.documents(lo, hi, 100)
    spans = find_spans(packed, query, SpanParams(min_length=8))
    assert spans[0].length == 137 and [d.document for d in spans[0].documents] == [999]
    # A copy that runs to the end of both the document and the query stops at both ends,
    # and a negative id (a separator's value) matches nothing.
    tail = find_spans(packed, [-1, *long_doc[1][-60:]], SpanParams(min_length=8))
    assert [(s.start, s.length, s.count) for s in tail] == [(1, 60, 1)]
    assert find_spans([SpanShard.open(tmp_path / str(k)) for k in range(4)], query,
                      SpanParams(min_length=8)) == spans
