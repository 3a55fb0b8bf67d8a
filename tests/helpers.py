"""Helpers with no Django, usable from engine tests."""

from __future__ import annotations

import random

# The smallest model shape worth training in a test (well under a second per epoch on a CPU).
TINY_MODEL = {"vocab_size": 400, "n_layer": 1, "n_head": 2, "n_embd": 32, "seq_len": 32}


def words(seed: int, n: int = 80) -> str:
    """A deterministic pseudo-text of n words drawn from a large vocabulary."""
    rng = random.Random(seed)
    return " ".join(f"w{rng.randrange(100_000)}" for _ in range(n))
