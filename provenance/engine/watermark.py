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
    confidence: float   # 1 at an exact match, falling with distance and with a close runner-up
    found: str          # the run of watermark characters it was decoded from (visible form)


# Detection reads at most this much of a text, and compares at most MAX_WINDOWS stretches of
# marks with the codebook: each comparison is one edit distance per source, so an input of a
# million format characters would otherwise cost about 10^9 of them. Model outputs are far
# shorter than either bound.
MAX_TEXT_CHARS = 100_000
MAX_WINDOWS = 4096


def detect(text: str, codebook: Mapping[int, str], top_k: int = 3,
           max_distance: int = 4) -> list[Candidate]:
    """Decode every run of watermark characters in `text` against the codebook and return the
    best `top_k` sources, best first. Tolerates lost and extra characters up to max_distance.
    Runs split by a few visible characters are joined first. Reads the first MAX_TEXT_CHARS
    characters and the first MAX_WINDOWS windows."""
    runs = [m.group() for m in _RUN.finditer(re.sub(
        f"(?<=[{''.join(ALPHABET)}])[^{''.join(ALPHABET)}]{{1,2}}(?=[{''.join(ALPHABET)}])",
        "", text[:MAX_TEXT_CHARS]))]
    best: dict[int, tuple[int, str]] = {}
    budget = MAX_WINDOWS
    for run in (r for r in runs if len(r) >= LENGTH // 2):
        windows = [run] if len(run) <= LENGTH + max_distance else \
            [run[i:i + LENGTH] for i in range(0, min(len(run) - LENGTH + 1, budget))]
        budget -= len(windows)
        if budget < 0:
            break
        for window in windows:
            for source, code in codebook.items():
                d = Levenshtein.distance(window, code, score_cutoff=max_distance)
                if d <= max_distance and (source not in best or d < best[source][0]):
                    best[source] = (d, window)
    ranked = sorted(best.items(), key=lambda item: (item[1][0], item[0]))[:top_k]
    out = []
    for rank, (source, (d, window)) in enumerate(ranked):
        runner_up = ranked[rank + 1][1][0] if rank + 1 < len(ranked) else max_distance + 1
        margin = (runner_up - d) / (max_distance + 1)
        out.append(Candidate(source=source, distance=d, found=visible(window),
                             confidence=round(max(0.0, 1 - d / LENGTH) * (0.5 + 0.5 * margin),
                                              3)))
    return out
