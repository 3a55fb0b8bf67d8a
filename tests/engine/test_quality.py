"""Gopher's and C4's whole-document quality rules, each failing on the text made to fail it and
naming what it measured."""

import pytest

from provenance.engine.quality import DEFAULTS, judge, quality_params

PROSE = ("The keeper of the lighthouse wrote to his sister every week of that long winter. "
         "He told her of the storms that came in from the west, and of the ships that passed "
         "with their lamps lit against the dark. She kept the letters in a tin box with her "
         "recipes, and read them again when the spring came. Years later her grandson found "
         "the box and gave the letters to the museum in the harbour town.")


def test_ordinary_prose_passes_every_default_rule():
    assert judge(PROSE, quality_params(None)) is None


@pytest.mark.parametrize(("text", "rule", "detail"), [
    ("Too short to be a page of anything.", "min_words", "words 8 < 50"),
    (" ".join(["a b c d e f g"] * 10), "min_mean_word_length", "mean word length 1 < 3"),
    (PROSE.replace("winter.", "winter. " + "Supercalifragilisticexpialidocious " * 60),
     "max_mean_word_length", "mean word length"),
    (PROSE + " #tag" * 12, "max_symbol_ratio", "symbols per word"),
    ("\n".join(f"• Bring lanterns, blankets and fresh water to harbour {i}"
               for i in range(12)),
     "max_bullet_lines", "share of bulleted lines 1 > 0.9"),
    ("\n".join(f"Line {i} of the story, which goes on and on with the words to be..."
               for i in range(10)),
     "max_ellipsis_lines", "share of lines ending in an ellipsis 1 > 0.3"),
    (PROSE + " 1234 5678 9012 3456 %%%% &&&& ---- ==== " * 8, "min_alpha_words",
     "share of words with a letter"),
    (" ".join(["Bright red kite flying over green hills"] * 10) + ".", "min_stop_words",
     "stop words 0 < 2"),
    ("\n".join([PROSE] + ["Click here to subscribe to the newsletter of the week."] * 5),
     "max_duplicate_lines", "share of repeated lines 0.667 > 0.3"),
    (PROSE.replace(".", ","), "min_sentences", "sentences 0 < 3"),
    (PROSE + " Lorem ipsum dolor sit amet.", "reject_lorem_ipsum", "holds \"lorem ipsum\""),
])
def test_each_rule_fails_the_text_made_to_fail_it(text, rule, detail):
    failure = judge(text, quality_params(None))
    assert failure is not None and failure.rule == rule and detail in failure.detail


def test_a_rule_set_to_null_is_off_and_a_threshold_moves():
    short = "Too short to be a page. It has two sentences. And a third one with the end."
    assert judge(short, quality_params(None)).rule == "min_words"
    assert judge(short, quality_params({"min_words": None})) is None
    assert judge(short, quality_params({"min_words": 10})) is None
    assert judge(short, quality_params({"min_words": 10, "min_sentences": 4})).rule == \
        "min_sentences"
    code = PROSE + " def f(x): { return x }"
    assert judge(code, quality_params(None)) is None  # curly brackets allowed by default
    assert judge(code, quality_params({"reject_curly_bracket": True})).rule == \
        "reject_curly_bracket"


def test_repeated_lines_count_every_repeat_after_the_first():
    lines = ["One line about the sea and the ships that sail to the east."] * 3 + \
        [f"Another line, number {i}, about the town and the people of the coast." for i in range(3)]
    params = quality_params({"min_words": 0, "max_duplicate_lines": 0.3,
                             "max_duplicate_line_chars": None})
    assert judge("\n".join(lines), params).detail == "share of repeated lines 0.333 > 0.3"
    assert judge("\n".join(lines), {**params, "max_duplicate_lines": 0.34}) is None


@pytest.mark.parametrize(("data", "message"), [
    ({"min_word": 5}, "quality.min_word: no such rule"),
    ({"min_words": -1}, "quality.min_words: must be a number"),
    ({"min_words": "50"}, "quality.min_words: must be a number"),
    ({"min_words": True}, "quality.min_words: must be a number"),
    ({"max_bullet_lines": 1.5}, "quality.max_bullet_lines: a share"),
    ({"reject_lorem_ipsum": 1}, "quality.reject_lorem_ipsum: must be true or false"),
    ({"min_words": 200, "max_words": 100}, "quality.min_words: larger than max_words"),
])
def test_bad_parameters_name_their_field(data, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.", 1)):
        quality_params(data)


def test_defaults_are_gophers_and_c4s():
    params = quality_params({})
    assert params == DEFAULTS
    assert (params["min_words"], params["max_words"], params["min_stop_words"]) == (50, 100_000, 2)
    assert quality_params({"min_words": 10}, field="stages[2]")["min_words"] == 10
    with pytest.raises(ValueError, match=r"stages\[2\]\.nope"):
        quality_params({"nope": 1}, field="stages[2]")
