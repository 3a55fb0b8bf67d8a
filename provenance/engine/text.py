"""Text normalisation, content hashing and MinHash signatures. Pure Python + numpy."""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import langcodes
import numpy as np

NUM_PERM = 128
SHINGLE_WORDS = 5
_WS = re.compile(r"\s+")
_MAX32 = np.uint64(0xFFFFFFFF)
# Polynomial weights for combining SHINGLE_WORDS word hashes into one n-gram hash (mod 2**64).
_WEIGHTS = np.array(
    [pow(0x9E3779B97F4A7C15, k, 1 << 64) for k in range(SHINGLE_WORDS)][::-1], dtype=np.uint64
)


def normalise(text: str) -> str:
    """Unicode NFC with every run of whitespace folded to one space, trimmed. NUL characters are
    dropped: they carry no text and PostgreSQL cannot store them."""
    return _WS.sub(" ", unicodedata.normalize("NFC", text.replace("\x00", ""))).strip()


def language_tag(value: str) -> str:
    """A record's declared language as a standard BCP 47 tag ("eng" and "EN_us" become "en" and
    "en-US"), or "" when it is not one: the language stays unknown rather than wrong."""
    value = value.strip()
    if not value or len(value) > 35:
        return ""
    try:
        return str(langcodes.standardize_tag(value.replace("_", "-")))
    except (ValueError, LookupError):
        return ""


def language_name(tag: str) -> str:
    """English name of a tag's language ("fr" -> "French"); the tag itself if it has none."""
    try:
        return str(langcodes.Language.get(tag).display_name())
    except (ValueError, LookupError):
        return tag


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def token_estimate(byte_count: int) -> int:
    # ~4 bytes per BPE token on English web text; exact counts come with a tokenizer (training).
    return (byte_count + 3) // 4


_WORD_HASHES: dict[str, int] = {}
_WORD_CACHE_LIMIT = 1 << 20


def _word_hash(word: str) -> int:
    # Natural text repeats its words (Zipf), so most lookups hit; the cache is bounded.
    value = _WORD_HASHES.get(word)
    if value is None:
        if len(_WORD_HASHES) >= _WORD_CACHE_LIMIT:
            _WORD_HASHES.clear()
        value = _WORD_HASHES[word] = zlib.crc32(word.encode())
    return value


def shingle_hashes(normalised: str) -> np.ndarray:
    """Distinct 32-bit hashes of the word 5-grams (lower-cased) of a text.

    Words are hashed once each (crc32, stable across processes) and combined per window in numpy,
    which is ~5x faster than hashing every shingle string separately.
    """
    words = normalised.lower().split() or [""]
    wh = np.fromiter(map(_word_hash, words), dtype=np.uint64, count=len(words))
    n = SHINGLE_WORDS
    if len(words) >= n:
        windows = np.lib.stride_tricks.sliding_window_view(wh, n)
        h = (windows * _WEIGHTS).sum(axis=1, dtype=np.uint64)
    else:
        h = np.array([(wh * _WEIGHTS[-len(words):]).sum(dtype=np.uint64)], dtype=np.uint64)
    return np.unique(((h >> np.uint64(32)) ^ h) & _MAX32)


def _identity(value: int) -> int:
    return value


def minhash_signatures(texts: Sequence[str]) -> list[bytes]:
    """datasketch MinHash (128 permutations, affine32 scheme) of each normalised text, as
    compact bytes (128 x uint32 little-endian = 512 bytes)."""
    if not texts:
        return []
    from datasketch import MinHash  # (and scipy): loaded by the processes that sketch

    sketches = MinHash.bulk(
        [shingle_hashes(t) for t in texts], num_perm=NUM_PERM, hashfunc=_identity
    )
    return [m.hashvalues.astype("<u4").tobytes() for m in sketches]


def minhash_from_bytes(blob: bytes) -> Any:
    """A stored signature as datasketch's LeanMinHash."""
    from datasketch import LeanMinHash

    return LeanMinHash(seed=1, hashvalues=np.frombuffer(blob, dtype="<u4"), scheme="affine32")


@dataclass(frozen=True)
class Prepared:
    """One document ready to store: the text as submitted (its layout kept; only NUL characters,
    which PostgreSQL cannot store, dropped) and its normalised form, used for matching alone."""

    text: str
    sha256: str             # of `text`, UTF-8: the bytes Trailmark stores and serves
    normalised: str
    normalised_sha256: str  # of `normalised`: the same words in another layout hash the same
    byte_count: int
    token_estimate: int


def prepare(raw: str) -> Prepared:
    text = raw.replace("\x00", "")
    normalised = normalise(text)
    size = len(text.encode("utf-8"))
    return Prepared(text=text, sha256=content_hash(text), normalised=normalised,
                    normalised_sha256=content_hash(normalised), byte_count=size,
                    token_estimate=token_estimate(size))
