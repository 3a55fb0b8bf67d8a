import hashlib

import numpy as np
import pytest

from provenance.engine import dedup
from provenance.engine.merkle import (
    leaf_hash,
    manifest_root,
    manifest_root_stream,
    node_hash,
    root_from_leaf_hashes,
    root_from_leaf_stream,
)
from provenance.engine.text import (
    NUM_PERM,
    content_hash,
    language_name,
    language_tag,
    minhash_batch,
    minhash_from_bytes,
    minhash_signatures,
    normalise,
    prepare,
    shingle_hashes,
)
from tests.helpers import words


def test_normalising_composes_unicode_and_folds_whitespace():
    decomposed = "Cafe\u0301  au\tlait\n\n"
    assert normalise(decomposed) == "Caf\u00e9 au lait"
    assert content_hash(normalise(decomposed)) == content_hash(normalise("Café au lait"))


def test_prepare_keeps_the_submitted_text_and_hashes_both_forms():
    submitted = "  héllo\n   world \n"
    doc = prepare(submitted)
    assert doc.text == submitted  # the layout is kept (verse, man pages)
    assert doc.byte_count == len(submitted.encode())
    assert doc.sha256 == hashlib.sha256(submitted.encode()).hexdigest()
    assert doc.normalised == "héllo world"
    assert doc.normalised_sha256 == hashlib.sha256("héllo world".encode()).hexdigest()
    # another layout of the same words: another stored text, the same normalised hash
    other = prepare("héllo world")
    assert other.sha256 != doc.sha256 and other.normalised_sha256 == doc.normalised_sha256
    # only NUL, which PostgreSQL cannot store, is dropped
    assert prepare("a\x00b").text == "ab"


def test_minhash_estimates_jaccard_of_word_shingles():
    base = words(1, 200)
    edited = base.split()
    edited[150] = "changed"
    near = " ".join(edited)
    other = words(2, 200)
    a, b, c = (minhash_from_bytes(s) for s in minhash_signatures([base, near, other]))
    assert len(minhash_signatures([base])[0]) == 512  # 128 x uint32
    assert a.jaccard(b) > 0.9
    assert a.jaccard(c) < 0.1
    assert minhash_signatures([base]) == minhash_signatures([base])  # stable across calls


def _reference_mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.1, written recursively as in the RFC."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(_reference_mth(leaves[:k]), _reference_mth(leaves[k:]))


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 7, 8, 9, 13, 31, 64, 100])
def test_merkle_root_matches_the_rfc_9162_definition(n):
    leaves = [hashlib.sha256(str(i).encode()).digest() for i in range(n)]
    assert root_from_leaf_hashes([leaf_hash(x) for x in leaves]) == _reference_mth(leaves)


def test_manifest_root_ignores_order_and_repeats():
    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(10)]
    assert manifest_root(hashes) == manifest_root(list(reversed(hashes)) + hashes[:3])
    assert manifest_root(hashes) != manifest_root(hashes[:-1])


def test_nul_characters_are_dropped_when_normalising():
    assert normalise("a\x00b \x00 c") == "ab c"


@pytest.mark.parametrize("declared, tag", [
    ("en", "en"), ("eng", "en"), ("EN_us", "en-US"), ("fr-FR", "fr-FR"), (" de ", "de"),
    ("english", ""), ("", ""), ("x", ""), ("zz-1", ""), ("a" * 40, "")])
def test_declared_languages_become_standard_tags_or_unknown(declared, tag):
    assert language_tag(declared) == tag


def test_languages_have_english_names():
    assert language_name("fr") == "French" and language_name("pt-BR") == "Portuguese (Brazil)"
    assert language_name("not a tag") == "not a tag"


def test_json_depth_counts_levels_without_recursion():
    from provenance.engine.canonical import json_depth

    assert [json_depth(v) for v in (1, "s", [], {}, [1, [2]], {"a": [{"b": {}}]})] == [
        0, 0, 1, 1, 2, 4]
    deep: list = []
    for _ in range(200_000):
        deep = [deep]
    assert json_depth(deep) == 200_001


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 8, 13, 64, 100])
def test_a_streamed_root_is_the_root_of_the_whole_list(n):
    leaves = [leaf_hash(bytes([i % 256, i // 256])) for i in range(n)]
    assert root_from_leaf_stream(iter(leaves)) == root_from_leaf_hashes(leaves)
    hexes = sorted(hashlib.sha256(bytes([i])).hexdigest() for i in range(n))
    assert manifest_root_stream(iter(hexes)) == manifest_root(list(reversed(hexes)))
    if n > 1:
        with pytest.raises(ValueError, match="out of order"):
            manifest_root_stream(iter(hexes[::-1]))


def test_band_keys_agree_with_datasketch_buckets_and_collisions_are_checked_again():
    bands, rows = dedup.lsh_params(0.8)
    rng = np.random.default_rng(3)
    sigs = rng.integers(0, 1 << 32, size=(6, NUM_PERM), dtype=np.uint64).astype(np.uint32)
    sigs[1, :rows] = sigs[0, :rows]              # shares band 0 with 0 and little else
    sigs[2] = sigs[0]
    sigs[2, 110:] = 7                            # shares most bands with 0
    keys = dedup.band_keys(sigs, bands, rows)
    assert keys.shape == (6, bands)
    assert keys[1, 0] == keys[0, 0] and (keys[1, 1:] != keys[0, 1:]).all()
    assert (keys[2, :7] == keys[0, :7]).all()
    assert len({int(k) for k in keys[3:].ravel()}) == 3 * bands  # nothing shared by chance
    near = dedup.near_pairs(sigs[[1, 2, 3]], sigs[[0, 0, 0]], bands, rows, 0.8)
    assert near.tolist() == [False, True, False]  # 1 shares a band but is far; 3 shares none
    # A pair that shares no whole band (as two documents whose keys merely collide) is never
    # a near-duplicate, even at threshold 0.
    assert not dedup.near_pairs(sigs[[3]], sigs[[4]], bands, rows, 0.0).any()


def test_batched_minhash_is_datasketchs_minhash_bit_for_bit():
    from datasketch import MinHash

    texts = [normalise(words(i, n)) for i, n in enumerate([1, 2, 4, 5, 6, 50, 170, 3000] * 40)]
    texts.append(normalise(words(999, 40_000)))  # more shingles than one array operation takes
    shingles = [shingle_hashes(t) for t in texts] + [np.zeros(0, dtype=np.uint64)]
    expected = [m.hashvalues for m in MinHash.bulk(shingles, num_perm=NUM_PERM, hashfunc=int)]
    assert (minhash_batch(shingles) == np.array(expected)).all()
    assert minhash_signatures(texts) == [e.astype("<u4").tobytes() for e in expected[:-1]]
