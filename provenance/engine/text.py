"""Text normalisation, content hashing and MinHash signatures. Pure Python + numpy."""

from __future__ import annotations

import hashlib
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import langcodes
import numpy as np

NUM_PERM = 128
SHINGLE_WORDS = 5
_MAX32 = np.uint64(0xFFFFFFFF)
# Polynomial weights for combining SHINGLE_WORDS word hashes into one n-gram hash (mod 2**64).
_WEIGHTS = np.array(
    [pow(0x9E3779B97F4A7C15, k, 1 << 64) for k in range(SHINGLE_WORDS)][::-1], dtype=np.uint64
)


def normalise(text: str) -> str:
    """Unicode NFC with every run of whitespace folded to one space, trimmed. NUL characters are
    dropped: they carry no text and PostgreSQL cannot store them."""
    # str.split() splits at exactly what `\s` matches (str.isspace), faster than a regex.
    return " ".join(unicodedata.normalize("NFC", text.replace("\x00", "")).split())


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


def _word_hashes(words: list[str]) -> np.ndarray:
    """crc32 of each word (stable across processes). Natural text repeats its words (Zipf), so
    the words new to the bounded cache are hashed and the rest looked up, both in C loops."""
    missing = set(words).difference(_WORD_HASHES)
    if missing:
        if len(_WORD_HASHES) + len(missing) > _WORD_CACHE_LIMIT:
            _WORD_HASHES.clear()
            missing = set(words)
        _WORD_HASHES.update(zip(missing, map(zlib.crc32, map(str.encode, missing)), strict=True))
    return np.fromiter(map(_WORD_HASHES.__getitem__, words), dtype=np.uint64, count=len(words))


def shingle_hashes(normalised: str) -> np.ndarray:
    """Distinct 32-bit hashes of the word 5-grams (lower-cased) of a text.

    Words are hashed once each (crc32, stable across processes) and combined per window in numpy,
    which is ~5x faster than hashing every shingle string separately.
    """
    words = normalised.lower().split() or [""]
    wh = _word_hashes(words)
    n = SHINGLE_WORDS
    if len(words) >= n:
        windows = np.lib.stride_tricks.sliding_window_view(wh, n)
        h = (windows * _WEIGHTS).sum(axis=1, dtype=np.uint64)
    else:
        h = np.array([(wh * _WEIGHTS[-len(words):]).sum(dtype=np.uint64)], dtype=np.uint64)
    return np.unique(((h >> np.uint64(32)) ^ h) & _MAX32)


_CHUNK_SHINGLES = 1 << 15  # shingles per array operation: (32768 x 128) uint32 = 16 MiB


@lru_cache(maxsize=1)
def _permutations() -> tuple[np.ndarray, np.ndarray]:
    """datasketch's (a, b) for 128 permutations, seed 1, affine32 scheme, taken from datasketch
    itself, so that the signatures stay its signatures."""
    from datasketch import MinHash  # (and scipy): loaded by the processes that sketch

    a, b = MinHash(num_perm=NUM_PERM, seed=1).permutations
    return np.asarray(a, dtype=np.uint32), np.asarray(b, dtype=np.uint32)


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, which datasketch's affine32 scheme applies to each value
    before its permutations (uint32 arithmetic, wrapping)."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def minhash_batch(shingles: Sequence[np.ndarray]) -> np.ndarray:
    """MinHash signatures of many documents at once, (n, 128) uint32: the values datasketch's
    `MinHash.update_batch` (affine32) gives each, computed for thousands of documents per numpy
    operation instead of one (a document without shingles keeps datasketch's initial values)."""
    a, b = _permutations()
    out = np.full((len(shingles), NUM_PERM), 0xFFFFFFFF, dtype=np.uint32)
    sizes = np.fromiter(map(len, shingles), dtype=np.int64, count=len(shingles))
    ends = np.cumsum(sizes)
    start = 0
    while start < len(shingles):
        # Documents from `start` while their shingles fit a chunk (at least one document).
        done = int(ends[start - 1]) if start else 0
        end = max(start + 1, int(np.searchsorted(ends, done + _CHUNK_SHINGLES, side="right")))
        docs = [int(i) for i in np.flatnonzero(sizes[start:end]) + start]
        if docs:
            values = _fmix32(np.concatenate([shingles[i] for i in docs]).astype(np.uint32))
            # (128, shingles), so that each permutation's minimum per document is a reduction
            # along contiguous memory (~10x faster than along the other axis).
            with np.errstate(over="ignore"):
                permuted = np.multiply(a[:, None], values[None, :])
                permuted += b[:, None]
            offsets = np.concatenate([[0], np.cumsum(sizes[docs])[:-1]])
            out[docs] = np.minimum.reduceat(permuted, offsets, axis=1).T
        start = end
    return out


def minhash_signatures(texts: Sequence[str]) -> list[bytes]:
    """MinHash (datasketch's: 128 permutations, affine32 scheme) of each normalised text, as
    compact bytes (128 x uint32 little-endian = 512 bytes)."""
    if not texts:
        return []
    signatures = minhash_batch([shingle_hashes(t) for t in texts]).astype("<u4")
    return [row.tobytes() for row in signatures]


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
