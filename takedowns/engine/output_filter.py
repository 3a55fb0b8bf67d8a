"""The interim output filter: block any run of `n` words that occurs in a removed document.
Only 64-bit hashes of the lower-cased word n-grams are kept, never the text. Pure Python + numpy.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

import numpy as np

from provenance.engine.watermark import strip

WORD = re.compile(r"\w+")
BLOCKED = "[removed]"


def _hash(words: Iterable[str]) -> int:
    digest = hashlib.blake2b(" ".join(words).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def shingle_hashes(texts: Iterable[str], n: int) -> np.ndarray:
    """Sorted distinct hashes of every n-word run of the texts."""
    found: set[int] = set()
    for text in texts:
        words = [w.lower() for w in WORD.findall(strip(text))]
        found.update(_hash(words[i:i + n]) for i in range(len(words) - n + 1))
    return np.array(sorted(found), dtype=np.uint64)


def redact(text: str, hashes: np.ndarray, n: int) -> tuple[str, int]:
    """The text with every stretch covered by a blocked n-word run replaced by BLOCKED, and how
    many words were blocked."""
    matches = list(WORD.finditer(text))
    if len(matches) < n or hashes.size == 0:
        return text, 0
    words = [m.group().lower() for m in matches]
    keys = np.array([_hash(words[i:i + n]) for i in range(len(words) - n + 1)], dtype=np.uint64)
    hits = np.flatnonzero(np.isin(keys, hashes))
    covered = np.zeros(len(words), dtype=bool)
    for hit in hits:
        covered[hit:hit + n] = True
    if not covered.any():
        return text, 0
    out: list[str] = []
    cursor, i = 0, 0
    while i < len(words):
        if not covered[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(words) and covered[j + 1]:
            j += 1
        out += [text[cursor:matches[i].start()], BLOCKED]
        cursor, i = matches[j].end(), j + 1
    out.append(text[cursor:])
    return "".join(out), int(covered.sum())
