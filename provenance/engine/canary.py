"""Per-source canaries: a membership test with an exact false-positive rate (the "data
watermarks" of Wei et al. 2024).

A source that opts in registers a distribution (random pseudo-words, or random characters, of a
fixed length) and a secret seed. One sequence drawn from it is inserted into k of the source's
documents when a version is exported for training. To test a checkpoint, compare the model's loss
on that sequence with its losses on n sequences drawn from the same distribution but never
inserted: under the null hypothesis (the model never saw the sequence) its rank among them is
uniform, so p = (1 + #{null losses <= observed}) / (n + 1) is exact whatever the model. The z-score
is for display only. Pure Python + numpy: no torch, no Django.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import random
import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from provenance.engine.options import reject_unknown

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


def _pseudo_words() -> list[str]:
    """2,450 pronounceable two-syllable words: a fixed, public vocabulary for canaries."""
    syllables = [c + v for c in _CONSONANTS for v in _VOWELS]
    return [a + b for a in syllables for b in syllables if a != b][:2450]


WORDS = _pseudo_words()
CHARS = string.ascii_lowercase + string.digits
MIN_BITS = 64  # a canary's entropy at least: 6 pseudo-words, or 13 characters


@dataclass(frozen=True)
class CanarySpec:
    kind: str = "words"   # "words": pseudo-words; "chars": lowercase letters and digits
    length: int = 12      # words, or characters
    copies: int = 8       # k: documents that carry the sequence (the pilot: k = 8 gave z ~ -6)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CanarySpec:
        reject_unknown(cls, data, "canary")
        spec = cls(**data)
        if spec.kind not in ("words", "chars"):
            raise ValueError("kind must be 'words' or 'chars'")
        for name, low, high in (("length", 4, 256), ("copies", 1, 1000)):
            value = getattr(spec, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name} must be an integer from {low} to {high}")
        if spec.bits < MIN_BITS:
            per = math.log2(len(WORDS) if spec.kind == "words" else len(CHARS))
            raise ValueError(f"length: a {spec.kind} canary needs at least "
                             f"{math.ceil(MIN_BITS / per)} {spec.kind} ({MIN_BITS} bits of "
                             f"entropy) so that it cannot be guessed; {spec.length} give "
                             f"{spec.bits:.0f} bits")
        return spec

    @property
    def bits(self) -> float:
        """The sequence's entropy: how hard it is to guess (or to find from its commitment)."""
        return self.length * math.log2(len(WORDS) if self.kind == "words" else len(CHARS))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def draw(spec: CanarySpec, rng: random.Random) -> str:
    if spec.kind == "words":
        return " ".join(rng.choice(WORDS) for _ in range(spec.length))
    return "".join(rng.choice(CHARS) for _ in range(spec.length))


def commitment(spec: CanarySpec, secret: str) -> tuple[str, str]:
    """(salt, sha256(salt || sequence)), both hex: the ledger holds the digest, which reveals
    nothing; revealing the salt and the sequence later opens it. The salt (derived from the
    secret, 256 bits) keeps a short sequence from being found by hashing every candidate."""
    salt = hmac.new(secret.encode(), b"trailmark canary commitment salt", hashlib.sha256).digest()
    digest = hashlib.sha256(salt + canary_sequence(spec, secret).encode()).hexdigest()
    return salt.hex(), digest


def canary_sequence(spec: CanarySpec, secret: str) -> str:
    """The sequence a source inserts: drawn with its secret, so nobody else can predict it."""
    return draw(spec, random.Random(hashlib.sha256(f"canary:{secret}".encode()).digest()))


def null_sequences(spec: CanarySpec, secret: str, n: int, stream: str = "null") -> list[str]:
    """n sequences from the same distribution that were never inserted (a different stream;
    "probe" gives another independent set, for calibration)."""
    rng = random.Random(hashlib.sha256(f"{stream}:{secret}".encode()).digest())
    return [draw(spec, rng) for _ in range(n)]


def carrier_documents(secret: str, candidates: Sequence[str], copies: int) -> list[str]:
    """Which documents (by sha256) carry the canary: a keyed, reproducible choice."""
    def key(sha: str) -> bytes:
        return hmac.new(secret.encode(), sha.encode(), hashlib.sha256).digest()

    return sorted(candidates, key=key)[:copies]


def insert(text: str, canary: str) -> str:
    return f"{text} {canary}"


@dataclass(frozen=True)
class MembershipTest:
    observed: float         # loss on the inserted sequence
    p_value: float          # exact rank p-value
    z: float                # (observed - mean(null)) / sd(null), display only
    null_n: int
    null_mean: float
    null_sd: float
    null_quantiles: dict[str, float]


def exact_p_value(observed: float, null: np.ndarray) -> float:
    """Probability under H0 of a loss at most this low: the rank decides, not the z-score."""
    return float((1 + np.count_nonzero(null <= observed)) / (len(null) + 1))


def membership_test(observed: float, null_losses: Sequence[float]) -> MembershipTest:
    null = np.asarray(null_losses, dtype=float)
    if len(null) < 1:
        raise ValueError("need at least one null sequence")
    sd = float(null.std(ddof=1)) if len(null) > 1 else 0.0
    quantiles = {f"q{q:02d}": float(np.quantile(null, q / 100)) for q in (1, 5, 50, 95, 99)}
    return MembershipTest(observed=float(observed), p_value=exact_p_value(observed, null),
                          z=float((observed - null.mean()) / sd) if sd > 0 else 0.0,
                          null_n=len(null), null_mean=float(null.mean()), null_sd=sd,
                          null_quantiles=quantiles)


def min_null_size(tests: int, alpha: float) -> int:
    """The smallest exact p-value is 1 / (n + 1), so after Bonferroni over `tests` sources a
    detection needs tests / (n + 1) < alpha. Twice that resolution leaves room for a canary
    that is not the very lowest loss."""
    return math.ceil(2 * tests / alpha)


def bonferroni(p_values: Sequence[float]) -> list[float]:
    m = len(p_values)
    return [min(1.0, p * m) for p in p_values]


def calibration(null_losses: Sequence[float], probe_losses: Sequence[float],
                alpha: float = 0.01) -> float:
    """Share of never-inserted probe sequences whose p-value falls below alpha: it should stay
    near alpha; far above it means the test is not calibrated for this model."""
    null = np.asarray(null_losses, dtype=float)
    hits = sum(exact_p_value(x, null) < alpha for x in probe_losses)
    return hits / max(1, len(probe_losses))
