"""The watermark and canary benchmarks' worlds and attacks (what the README's watermark figures
rest on): neutral prompts name no source, labels follow the names a text uses, and each attack
does what its row in the table says."""

from __future__ import annotations

import random
import re
import sys
import unicodedata
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import canary_power as cp  # noqa: E402
import watermark_eval as we  # noqa: E402

from provenance.engine.watermark import ALPHABET, assign_code, detect, embed, strip  # noqa: E402

MARKS = set(ALPHABET)


@pytest.fixture(scope="module")
def world():
    names = we.source_names(3, 15)
    codes: dict[int, str] = {}
    for s in range(15):
        codes[s] = assign_code(codes.values(), seed=s)
    rng = random.Random(0)
    docs = {s: we.source_texts(names[s], s, 4, rng) for s in range(15)}
    return names, codes, docs


def marked(world, source: int = 2) -> str:
    names, codes, docs = world
    text = docs[source][0]
    return embed(text, codes[source], "key", "sha")


def test_every_name_belongs_to_one_source_and_labels_follow_the_names_used(world):
    names, _, docs = world
    flat = [n for own in names for n in own]
    assert len(flat) == len(set(flat)) == 90
    assert we.label_of(docs[7][0], names) == 7
    a, b = names[1][0], names[4][0]
    assert we.label_of(f"{a} visited {b}.", names) is None          # a tie
    assert we.label_of(f"{a} visited {b} and {b}.", names) == 4
    assert we.label_of("The mayor visited the census.", names) is None


def test_neutral_prompts_use_no_name_of_any_source(world):
    names, _, _ = world
    prompts = we.neutral_prompts(200, random.Random(1))
    everyone = {n for own in names for n in own}
    assert all(not everyone & set(re.findall(r"\w+", p)) for p in prompts)
    assert len(set(prompts)) > 100


def test_nfkc_keeps_the_marks_and_the_watermark_still_decodes(world):
    _, codes, _ = world
    text = marked(world)
    attacked = we.nfkc(text, random.Random(0))
    assert attacked == unicodedata.normalize("NFKC", text)
    assert detect(attacked, codes, top_k=1)[0].source == 2


def test_deletion_removes_about_its_share_of_marks_and_all_at_rate_one(world):
    text = marked(world) * 50  # 500 marks
    kept = sum(c in MARKS for c in we.delete_marks(0.3)(text, random.Random(0)))
    assert 300 < kept < 400
    assert we.delete_marks(1.0)(text, random.Random(0)) == strip(text)
    assert strip(we.delete_marks(0.3)(text, random.Random(0))) == strip(text)


def test_insertion_in_the_mark_adds_that_many_marks_inside_the_run(world):
    text = marked(world)
    attacked = we.insert_in_mark(2)(text, random.Random(0))
    assert strip(attacked) == strip(text)
    runs = re.findall(f"[{''.join(ALPHABET)}]+", attacked)
    assert [len(r) for r in runs] == [12]


def test_decoy_adds_one_random_run_and_leaves_the_rest(world):
    text = marked(world)
    attacked = we.decoy(text, random.Random(0))
    assert strip(attacked) == strip(text)
    assert sum(c in MARKS for c in attacked) == 20


def test_paraphrase_rewrites_the_words_and_keeps_each_mark_with_its_sentence(world):
    _, codes, _ = world
    text = "Bob visited the census near Ann." + codes[2] + " Ann wrote to the long winter."
    out = we.paraphrase(text, random.Random(3))
    assert "called on" in out and "sent letters to" in out and " near " not in out
    assert "Ann." + codes[2] in out  # the mark still follows its sentence's full stop
    assert sorted(out.replace(" ", "")) != sorted(text.replace(" ", ""))
    assert detect(out, codes, top_k=1)[0].source == 2


def test_canary_corpus_has_the_asked_size_and_no_duplicate_documents():
    docs = cp.corpus(0, 300)
    assert len(docs) == 300
    assert len(set(docs)) == 300
