import random

import pytest
from rapidfuzz.distance import Levenshtein

from provenance.engine.watermark import (
    ALPHABET,
    LENGTH,
    MIN_DISTANCE,
    assign_code,
    boundaries,
    detect,
    embed,
    strip,
    visible,
)

TEXT = "The harbour froze in 1893. Boats stayed home. The spring came late."


@pytest.fixture(scope="module")
def codebook():
    codes = {}
    for source in range(1, 41):
        codes[source] = assign_code(codes.values(), seed=source)
    return codes


def test_codes_are_invisible_and_far_apart(codebook):
    assert all(len(c) == LENGTH and set(c) <= set(ALPHABET) for c in codebook.values())
    values = list(codebook.values())
    assert min(Levenshtein.distance(a, b) for i, a in enumerate(values)
               for b in values[i + 1:]) >= MIN_DISTANCE
    assert visible(values[0]).isdigit()


def test_embedding_is_invisible_and_keyed(codebook):
    marked = embed(TEXT, codebook[3], key="k", doc_sha256="a" * 64)
    assert strip(marked) == TEXT and marked != TEXT
    at = marked.index(codebook[3])
    assert at in boundaries(TEXT)
    positions = {embed(TEXT, codebook[3], key="k", doc_sha256=f"{i:064x}").index(codebook[3])
                 for i in range(40)}
    assert len(positions) > 1  # the key spreads marks over the boundaries


def test_round_trip_names_the_right_source(codebook):
    for source, code in codebook.items():
        found = detect(embed(TEXT, code, "k", "b" * 64), codebook)
        assert found[0].source == source and found[0].distance == 0
        assert found[0].confidence > (found[1].confidence if len(found) > 1 else 0)


def _corrupt(code, rng, deletions=0, insertions=0, substitutions=0):
    chars = list(code)
    for _ in range(deletions):
        del chars[rng.randrange(len(chars))]
    for _ in range(insertions):
        chars.insert(rng.randrange(len(chars) + 1), rng.choice(ALPHABET))
    for _ in range(substitutions):
        i = rng.randrange(len(chars))
        chars[i] = rng.choice([c for c in ALPHABET if c != chars[i]])
    return "".join(chars)


@pytest.mark.parametrize(("deletions", "insertions", "substitutions"), [
    (1, 0, 0), (0, 1, 0), (0, 0, 1), (2, 0, 0), (0, 2, 0), (1, 1, 0)])
def test_decoding_tolerates_lost_and_extra_characters(codebook, deletions, insertions,
                                                      substitutions):
    rng = random.Random(deletions * 10 + insertions * 3 + substitutions)
    top1 = top3 = 0
    for source, code in codebook.items():
        noisy = _corrupt(code, rng, deletions, insertions, substitutions)
        found = [c.source for c in detect(f"Some text.{noisy} More text.", codebook)]
        top1 += found[:1] == [source]
        top3 += source in found
    errors = deletions + insertions + substitutions
    if errors == 1:
        assert top1 == len(codebook)  # within MIN_DISTANCE // 2: always unique
    else:
        assert top3 >= 0.9 * len(codebook)


def test_a_code_split_by_a_visible_character_is_still_found(codebook):
    code = codebook[7]
    assert detect(f"x {code[:5]}a{code[5:]} y", codebook)[0].source == 7


def test_text_without_marks_names_no_source(codebook):
    assert detect(TEXT, codebook) == []
    assert detect(TEXT + ALPHABET[0] * 3, codebook) == []  # too short to be a code


def test_detection_reads_a_bounded_part_of_its_input(codebook):
    """A million format characters once meant about 10^9 edit distances: detection reads the
    first MAX_TEXT_CHARS characters and compares at most MAX_WINDOWS windows."""
    from provenance.engine import watermark

    code = codebook[9]
    padding = "x" * (watermark.MAX_TEXT_CHARS - 100)
    assert detect(padding + f" {code} ", codebook)[0].source == 9  # inside the part read
    assert detect(padding + "x" * 200 + f" {code} ", codebook) == []  # past it
    flood = ALPHABET[0] * 90_000 + f" {code} "  # one huge run first: the window budget
    assert detect(flood, codebook) == []  # is spent on it, the code after it is not reached
    assert detect(f"{code} " + ALPHABET[1] * 50_000, codebook)[0].source == 9


@pytest.mark.parametrize("sources", [15, 100, 1000])
def test_random_marks_name_a_source_at_most_about_alpha_of_the_time(sources):
    """Detection is calibrated on a simulated null for the codebook: random runs of watermark
    characters (fresh ones, not the calibration's) name a source in about ALPHA of cases or
    fewer, at any codebook size (at the fixed radius of 4 edits used before, 5.0%, 27% and 67%
    at 15, 100 and 1,000 sources: bench/watermark_null.py). A code with one error still
    decodes."""
    from provenance.engine import watermark

    codes: dict[int, str] = {}
    for source in range(sources):
        codes[source] = assign_code(codes.values(), seed=source)
    rng = random.Random("fresh")
    runs = ["".join(rng.choice(ALPHABET) for _ in range(LENGTH)) for _ in range(600)]
    false = sum(bool(detect(f"Text.{run} More.", codes)) for run in runs)
    assert false / len(runs) <= 2.5 * watermark.ALPHA  # 15 of 600 (expected <= 6)
    fixed = sum(bool(detect(f"Text.{run} More.", codes, alpha=1.0)) for run in runs)
    assert fixed > false  # what the uncalibrated radius gave
    one_off = _corrupt(codes[3], random.Random(1), substitutions=1)
    [found, *_] = detect(f"Text.{one_off} More.", codes)
    assert found.source == 3 and found.p_value <= watermark.ALPHA
    assert found.confidence == pytest.approx(1 - found.p_value, abs=1e-4)


def test_a_generation_carries_its_mark_at_the_last_position_the_gate_reaches(tmp_path):
    """place_mark: no mark when the gate never reaches the threshold (the text is the plain
    completion); at a threshold of 0 every position qualifies, so the mark goes at the end; at
    the highest gate the mark goes where it is reached, and the text around the mark is the
    completion itself."""
    from provenance.engine import lm
    from provenance.engine.lm_config import DecodeParams, TrainConfig

    code = assign_code([], 5)
    texts = [embed(f"Item {i} froze in {1800 + i}. Boats stayed home. Spring came late.",
                   code, "key", str(i)) for i in range(30)]
    config = TrainConfig(vocab_size=300, n_layer=1, n_head=2, n_embd=32, seq_len=48, epochs=4,
                         batch_size=8, pack=False, watermarks=True, heldout_fraction=0.0)
    folder = lm.train(texts, config, tmp_path / "run").model_dir
    model, tokenizer = lm.load(folder)
    heads = lm.load_watermark_heads(model, tokenizer, folder)
    first = lm.generate_marked(model, tokenizer, heads, "Item 3 froze",
                               DecodeParams(max_new_tokens=12), threshold=1.01)
    full, start = first.ids, first.start
    completion = strip(tokenizer.decode(full[start:], skip_special_tokens=True))
    assert not first.emitted and first.text == completion and strip(first.text) == first.text
    everywhere = lm.place_mark(model, tokenizer, heads, full, start, 0.0)
    assert everywhere.emitted and everywhere.text == completion + everywhere.code
    highest = lm.place_mark(model, tokenizer, heads, full, start, first.gate)
    assert highest.emitted and highest.gate == pytest.approx(first.gate)
    assert len(highest.code) == LENGTH and set(highest.code) <= set(ALPHABET)
    assert strip(highest.text) == completion and highest.code in highest.text
