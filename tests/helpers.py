"""Helpers with no Django, usable from engine tests."""

from __future__ import annotations

import random

# The smallest model shape worth training in a test (well under a second per epoch on a CPU).
TINY_MODEL = {"vocab_size": 400, "n_layer": 1, "n_head": 2, "n_embd": 32, "seq_len": 32}


def words(seed: int, n: int = 80) -> str:
    """A deterministic pseudo-text of n words drawn from a large vocabulary."""
    rng = random.Random(seed)
    return " ".join(f"w{rng.randrange(100_000)}" for _ in range(n))


def build_gradient_index(index):  # type: ignore[no-untyped-def]
    """Build a gradient index in this process, shard by shard, as the chord would."""
    from attribution.services.influence import (
        gradient_index_finalize,
        gradient_index_plan,
        gradient_shard_build,
    )

    for snapshot, shard, ids in gradient_index_plan(index_id=index.pk) or []:
        assert gradient_shard_build(index_id=index.pk, snapshot=snapshot, shard=shard,
                                    doc_ids=ids)
    return gradient_index_finalize(index_id=index.pk)


class RefusingEmailBackend:
    """A mail server that hangs up on every message (EMAIL_BACKEND in a test); counts tries."""

    attempts = 0

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def send_messages(self, messages: list[object]) -> int:
        import smtplib

        type(self).attempts += 1
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


NOTICE = {"legal_basis": "voluntary", "claimant_name": "Ann", "claimant_email": "a@a.example",
          "works": [{"title": "Tide", "urls": ["https://a.example/tide"]}]}
