"""Helpers with no Django, usable from engine tests."""

from __future__ import annotations

import random


def words(seed: int, n: int = 80) -> str:
    """A deterministic pseudo-text of n words drawn from a large vocabulary."""
    rng = random.Random(seed)
    return " ".join(f"w{rng.randrange(100_000)}" for _ in range(n))
