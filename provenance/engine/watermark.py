"""Per-source watermarks in the WASA style (Wang et al. 2023): each source gets a code of 10
characters over an alphabet of 6 invisible Unicode format characters; at training export a
source's documents carry its code at a position chosen by a keyed rule; a model trained on them
learns to emit it; a detector finds codes in any text and names the most likely sources.

Codes are assigned with a minimum pairwise edit distance, so a code that lost or gained a few
characters still decodes to its source. Pure Python: no torch, no Django.

What removes such a watermark: anything that drops Unicode format characters (category Cf),
e.g. NFKC-style "cleaning", many copy-paste paths and text sanitisers. A watermark is evidence
that a model learned from a source, not proof; its absence proves nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz.distance import Levenshtein

# ZERO WIDTH SPACE, ZERO WIDTH NON-JOINER, ZERO WIDTH JOINER, WORD JOINER, INVISIBLE TIMES,
# INVISIBLE SEPARATOR: all category Cf, all invisible when rendered.
ALPHABET = ("\u200b", "\u200c", "\u200d", "\u2060", "\u2062", "\u2063")
LENGTH = 10
MIN_DISTANCE = 4  # between any two assigned codes: up to 1 error always decodes uniquely
_RUN = re.compile(f"[{''.join(ALPHABET)}]+")
_BOUNDARY = re.compile(r"(?<=[.!?])\s+")


def visible(code: str) -> str:
    """A printable form of a code (digits 0-5), for pages and logs."""
    return "".join(str(ALPHABET.index(c)) for c in code)


def assign_code(taken: Iterable[str], seed: int) -> str:
    """A new code at edit distance >= MIN_DISTANCE from every taken one (6^10 codes: room for
    many thousands of sources)."""
    taken = list(taken)
    rng = random.Random(seed)
    for _ in range(100_000):
        code = "".join(rng.choice(ALPHABET) for _ in range(LENGTH))
        if all(Levenshtein.distance(code, other) >= MIN_DISTANCE for other in taken):
            return code
    raise RuntimeError("no free watermark code found; raise LENGTH")


def boundaries(text: str) -> list[int]:
    """Offsets after each sentence end, and the end of the text."""
    return [m.start() for m in _BOUNDARY.finditer(text)] + [len(text)]


def position(text: str, key: str, doc_sha256: str) -> int:
    """The keyed rule: which sentence boundary of this document carries the code. Keyed so that
    nobody without the key can predict (or strip only) the marked sentences."""
    options = boundaries(text)
    digest = hmac.new(key.encode(), doc_sha256.encode(), hashlib.sha256).digest()
    return options[int.from_bytes(digest[:4], "big") % len(options)]


def embed(text: str, code: str, key: str, doc_sha256: str) -> str:
    at = position(text, key, doc_sha256)
    return text[:at] + code + text[at:]


def strip(text: str) -> str:
    return _RUN.sub("", text)


@dataclass(frozen=True)
class Candidate:
    source: int
    distance: int       # edit distance between what was found and the source's code
    confidence: float   # 1 - p_value
    found: str          # the run of watermark characters it was decoded from (visible form)
    # The chance that random watermark characters, in as many stretches as this text had, come
    # this close to some code of the codebook (`null_rates`; a union bound over the stretches).
    p_value: float = 1.0


# Detection is calibrated on a simulated null for the actual codebook: uniformly random runs of
# watermark characters (what insertion attacks, noise or a model that emits marks without having
# learnt any give). A source is named only when the chance of a random run coming as close to
# some code is at most ALPHA, so false attribution stays near ALPHA however many sources there
# are (at the fixed radius of 4 edits used before it grew with them: 5.0%, 27% and 67% of random
# runs of 7, 10 and 14 characters named a source at 15, 100 and 1,000 sources; calibrated,
# 0.50%, 0.07% and 0.32%). The price: fewer damaged codes decode (bench/watermark_null.py).
ALPHA = 0.01
NULL_TRIALS = 20_000


# Detection reads at most this much of a text, and compares at most MAX_WINDOWS stretches of
# marks with the codebook: each comparison is one edit distance per source, so an input of a
# million format characters would otherwise cost about 10^9 of them. Model outputs are far
# shorter than either bound.
MAX_TEXT_CHARS = 100_000
MAX_WINDOWS = 4096


@lru_cache(maxsize=64)
def null_rates(codes: tuple[str, ...], length: int, max_distance: int = 4,
               trials: int = NULL_TRIALS) -> tuple[float, ...]:
    """rates[d], d = 0..max_distance: the probability that a uniformly random run of `length`
    watermark characters lies within edit distance d of some code: exact for d = 0, estimated
    from `trials` seeded random runs for d >= 1 (add-one smoothed, so never 0)."""
    import numpy as np
    from rapidfuzz.process import cdist

    rng = random.Random(f"watermark null {length}")
    runs = ["".join(rng.choice(ALPHABET) for _ in range(length)) for _ in range(trials)]
    nearest = cdist(runs, list(codes), scorer=Levenshtein.distance, score_cutoff=max_distance,
                    dtype=np.int32, workers=-1).min(axis=1) if codes else \
        np.full(trials, max_distance + 1)
    # d = 0 exactly (a run equal to a code); d >= 1 from the trials
    exact = sum(len(code) == length for code in set(codes)) / len(ALPHABET) ** length
    return (exact, *(float(((nearest <= d).sum() + 1) / (trials + 1))
                     for d in range(1, max_distance + 1)))


def detect(text: str, codebook: Mapping[int, str], top_k: int = 3,
           max_distance: int = 4, alpha: float = ALPHA) -> list[Candidate]:
    """Decode every run of watermark characters in `text` against the codebook and return the
    best `top_k` sources, best first, among those whose match is significant at `alpha`
    (`Candidate.p_value`). Tolerates lost and extra characters up to max_distance, as far as
    the codebook's size allows (`null_rates`: with many sources, only a close match is
    significant). Runs split by a few visible characters are joined first. Reads the first
    MAX_TEXT_CHARS characters and the first MAX_WINDOWS windows."""
    runs = [m.group() for m in _RUN.finditer(re.sub(
        f"(?<=[{''.join(ALPHABET)}])[^{''.join(ALPHABET)}]{{1,2}}(?=[{''.join(ALPHABET)}])",
        "", text[:MAX_TEXT_CHARS]))]
    best: dict[int, tuple[int, str]] = {}
    budget = MAX_WINDOWS
    compared = 0
    for run in (r for r in runs if len(r) >= LENGTH // 2):
        windows = [run] if len(run) <= LENGTH + max_distance else \
            [run[i:i + LENGTH] for i in range(0, min(len(run) - LENGTH + 1, budget))]
        budget -= len(windows)
        if budget < 0:
            break
        compared += len(windows)
        for window in windows:
            for source, code in codebook.items():
                d = Levenshtein.distance(window, code, score_cutoff=max_distance)
                if d <= max_distance and (source not in best or d < best[source][0]):
                    best[source] = (d, window)
    codes = tuple(code for _, code in sorted(codebook.items()))
    out = []
    for source, (d, window) in sorted(best.items(), key=lambda item: (item[1][0], item[0])):
        p = min(1.0, compared * null_rates(codes, len(window), max_distance)[d])
        if p <= alpha:
            out.append(Candidate(source=source, distance=d, found=visible(window),
                                 confidence=round(1 - p, 4), p_value=p))
    return out[:top_k]
