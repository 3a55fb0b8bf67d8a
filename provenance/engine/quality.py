"""Document quality heuristics for curation recipes: the whole-document rules of Gopher (Rae et
al. 2021, MassiveText's quality and repetition filters) and of C4 (Raffel et al. 2020), each with
its threshold as a recipe parameter (`None` turns a rule off). Pure Python: no Django.

Written here rather than taken from datatrove, whose filters do the same: they split words and
sentences with NLTK's punkt models, which are downloaded at run time, and they work on its own
pipeline's documents. Words here are runs of non-space characters, as Gopher counts them.

`judge` returns the first rule a text fails, with a detail that names the measured value and the
threshold, for the version's exclusion list; `quality_params` validates a recipe's parameters and
names the field it refuses.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# Gopher's and C4's published thresholds; C4's "no curly bracket" rule is off by default: it
# drops every page of code, and code is a source a recipe may want.
DEFAULTS: dict[str, float | int | bool | None] = {
    "min_words": 50,                   # Gopher: 50 to 100,000 words
    "max_words": 100_000,
    "min_mean_word_length": 3.0,       # Gopher: mean word length 3 to 10 characters
    "max_mean_word_length": 10.0,
    "max_symbol_ratio": 0.1,           # Gopher: "#" and "..." per word
    "max_bullet_lines": 0.9,           # Gopher: share of lines that start with a bullet
    "max_ellipsis_lines": 0.3,         # Gopher: share of lines that end with an ellipsis
    "min_alpha_words": 0.8,            # Gopher: share of words with a letter in them
    "min_stop_words": 2,               # Gopher: occurrences of the, be, to, of, and, that, ...
    "max_duplicate_lines": 0.3,        # Gopher: share of lines that repeat an earlier line
    "max_duplicate_line_chars": 0.2,   # Gopher: share of characters in such lines
    "min_sentences": 3,                # C4: pages of fewer than 3 sentences go
    "reject_lorem_ipsum": True,        # C4: placeholder text
    "reject_curly_bracket": False,     # C4: "{" marks code (off, see above)
}
SHARES = frozenset({"max_bullet_lines", "max_ellipsis_lines", "min_alpha_words",
                    "max_duplicate_lines", "max_duplicate_line_chars"})
STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
BULLETS = ("•", "●", "○", "▪", "◦", "‣", "⁃", "-", "*", "·")
ELLIPSES = ("...", "…")
SENTENCE_END = re.compile(r"[.!?…]+(?:[\"'”’)\]]*)(?=\s|$)")
LETTER = re.compile(r"[^\W\d_]")


@dataclass(frozen=True)
class Failure:
    rule: str
    detail: str


@dataclass(frozen=True)
class _Measures:
    words: list[str]
    lines: list[str]
    text: str


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _duplicate_lines(lines: list[str]) -> tuple[int, int]:
    """Lines that repeat an earlier line, and their characters (Gopher's first occurrence is
    kept, every later one counts)."""
    seen: Counter[str] = Counter()
    count = chars = 0
    for line in lines:
        if seen[line]:
            count += 1
            chars += len(line)
        seen[line] += 1
    return count, chars


def _ratio(value: float) -> str:
    return f"{value:.3g}"


# Each rule: (parameter, lower bound?, measure, what the detail calls it). A rule fails when the
# measure is below a "min_" bound or above a "max_" one.
_MEASURES: list[tuple[str, Callable[[_Measures], float], str]] = [
    ("min_words", lambda m: len(m.words), "words"),
    ("max_words", lambda m: len(m.words), "words"),
    ("min_mean_word_length", lambda m: _share(sum(map(len, m.words)), len(m.words)),
     "mean word length"),
    ("max_mean_word_length", lambda m: _share(sum(map(len, m.words)), len(m.words)),
     "mean word length"),
    ("max_symbol_ratio", lambda m: _share(m.text.count("#") + sum(m.text.count(e)
                                                                  for e in ELLIPSES),
                                          len(m.words)), "symbols per word"),
    ("max_bullet_lines", lambda m: _share(sum(line.lstrip().startswith(BULLETS)
                                              for line in m.lines), len(m.lines)),
     "share of bulleted lines"),
    ("max_ellipsis_lines", lambda m: _share(sum(line.rstrip().endswith(ELLIPSES)
                                                for line in m.lines), len(m.lines)),
     "share of lines ending in an ellipsis"),
    ("min_alpha_words", lambda m: _share(sum(bool(LETTER.search(w)) for w in m.words),
                                         len(m.words)), "share of words with a letter"),
    ("min_stop_words", lambda m: sum(w.lower().strip(".,;:!?\"'()") in STOP_WORDS
                                     for w in m.words), "stop words"),
    ("max_duplicate_lines", lambda m: _share(_duplicate_lines(m.lines)[0], len(m.lines)),
     "share of repeated lines"),
    ("max_duplicate_line_chars", lambda m: _share(_duplicate_lines(m.lines)[1],
                                                  sum(map(len, m.lines))),
     "share of characters in repeated lines"),
    ("min_sentences", lambda m: len(SENTENCE_END.findall(m.text)), "sentences"),
]
_FLAGS = {"reject_lorem_ipsum": (lambda t: "lorem ipsum" in t.lower(), "holds \"lorem ipsum\""),
          "reject_curly_bracket": (lambda t: "{" in t, "holds a curly bracket")}


def quality_params(data: Mapping[str, Any] | None, field: str = "quality") -> dict[str, Any]:
    """The rules' parameters, DEFAULTS filled in; a ValueError names the field it refuses."""
    data = dict(data or {})
    unknown = sorted(set(data) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"{field}.{unknown[0]}: no such rule (rules: {', '.join(DEFAULTS)})")
    params = {**DEFAULTS, **data}
    for name, value in data.items():
        where = f"{field}.{name}"
        if name.startswith("reject_"):
            if not isinstance(value, bool):
                raise ValueError(f"{where}: must be true or false")
        elif value is not None and (isinstance(value, bool)
                                    or not isinstance(value, int | float) or value < 0):
            raise ValueError(f"{where}: must be a number ≥ 0, or null to turn the rule off")
        elif value is not None and name in SHARES and value > 1:
            raise ValueError(f"{where}: a share, between 0 and 1")
    for low, high in (("min_words", "max_words"),
                      ("min_mean_word_length", "max_mean_word_length")):
        if params[low] is not None and params[high] is not None and params[low] > params[high]:
            raise ValueError(f"{field}.{low}: larger than {high}")
    return params


def judge(text: str, params: Mapping[str, Any]) -> Failure | None:
    """The first rule `text` fails (in DEFAULTS' order), or None when it passes them all."""
    measures = _Measures(words=text.split(), lines=[ln for ln in text.splitlines()
                                                    if ln.strip()], text=text)
    for name, measure, called in _MEASURES:
        bound = params.get(name)
        if bound is None:
            continue
        value = measure(measures)
        if (value < bound) if name.startswith("min_") else (value > bound):
            sign = "<" if name.startswith("min_") else ">"
            shown = str(int(value)) if float(value).is_integer() else _ratio(value)
            return Failure(name, f"{called} {shown} {sign} {bound:g}")
    for name, (fails, said) in _FLAGS.items():
        if params.get(name) and fails(text):
            return Failure(name, said)
    return None
