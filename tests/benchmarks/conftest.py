"""A small benchmark world: two training domains (one commercial, one non-commercial), a
held-out evaluation version of both, a reference of everything and a commercial-only entry."""

from __future__ import annotations

import random
from typing import Any

import pytest

from benchmarks.services.setup import benchmark_create, entry_add
from tests.helpers import TINY_MODEL

RIVER = ("river bank water boat mill ferry current stone bridge reed heron salmon willow "
         "flood barge lock weir ford").split()
STARS = ("star orbit comet planet moon telescope galaxy nebula eclipse meteor quasar pulsar "
         "zenith solstice crater asteroid").split()
TRAINING = {**TINY_MODEL, "batch_size": 8, "warmup_steps": 2, "checkpoint_every": 5}
STEPS = 12
BUDGET = STEPS * 8 * TINY_MODEL["seq_len"]


def sentences(vocab: list[str], seed: int, n: int = 40) -> str:
    rng = random.Random(seed)
    return " ".join(" ".join(rng.choice(vocab) for _ in range(6)) + "." for _ in range(n // 6))


@pytest.fixture
def bench_world(make_source, ingest_texts, publish_version, users) -> dict[str, Any]:
    river = make_source(license_expression="CC0-1.0", name="river")
    stars = make_source(license_expression="CC-BY-NC-4.0", name="stars")
    held_river = make_source(license_expression="CC0-1.0", name="river (held out)")
    held_stars = make_source(license_expression="CC0-1.0", name="stars (held out)")
    ingest_texts(river, [sentences(RIVER, i) for i in range(30)])
    ingest_texts(stars, [sentences(STARS, 100 + i) for i in range(30)])
    ingest_texts(held_river, [sentences(RIVER, 500 + i, 120) for i in range(6)])
    ingest_texts(held_stars, [sentences(STARS, 600 + i, 120) for i in range(6)])
    everything = publish_version("everything", intended_use="academic",
                                 sources=[river.pk, stars.pk])
    commercial = publish_version("commercial", sources=[river.pk, stars.pk])
    evaluation = publish_version("evaluation", sources=[held_river.pk, held_stars.pk])
    benchmark = benchmark_create(
        actor=users["researcher"], name="tiny bench", evaluation=evaluation,
        token_budget=BUDGET, training=TRAINING,
        probes=[{"prompt": "the heron waits by the", "choices": ["weir", "quasar"],
                 "answer": 0},
                {"prompt": "through the telescope a", "choices": ["ferry", "comet"],
                 "answer": 1}])
    entry_add(actor=None, benchmark=benchmark, version=everything, label="everything",
              reference=True)
    entry_add(actor=None, benchmark=benchmark, version=commercial, label="commercial only")
    return {"benchmark": benchmark, "everything": everything, "commercial": commercial,
            "evaluation": evaluation, "sources": {"river": river, "stars": stars,
                                                  "held_river": held_river}}
