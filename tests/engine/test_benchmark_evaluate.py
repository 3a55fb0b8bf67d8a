"""A benchmark's evaluations on a tiny model trained here: bits per byte follow what the model
learned, and the multiple-choice probe finds the facts it saw."""

import math
import random

import pytest

from benchmarks.engine.evaluate import DomainScore, Probe, domain_scores, probe_answers
from provenance.engine import lm
from provenance.engine.lm.infer import token_logprobs
from provenance.engine.lm_config import TrainConfig
from tests.helpers import TINY_MODEL

COLOURS = ["red", "blue", "green", "amber", "violet", "grey"]
TOWNS = ["Oslo", "Lima", "Pune", "Kobe", "Bern", "Rabat"]


def facts():
    return [f"The harbour of {town} is painted {colour}." for town, colour in
            zip(TOWNS, COLOURS, strict=True)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    corpus = facts() * 20
    config = TrainConfig(**{**TINY_MODEL, "batch_size": 8, "epochs": 40, "warmup_steps": 2,
                            "pack": False, "seq_len": 32, "heldout_fraction": 0.0})
    result = lm.train(corpus, config, tmp_path_factory.mktemp("bench") / "run")
    return lm.load(result.model_dir)


def test_bits_per_byte_sum_every_token_and_divide_by_the_bytes(trained):
    model, tokenizer = trained
    texts = {"seen": facts()[:3], "noise": ["zq xv jk wp " * 3, "pf gh qq zz " * 3]}
    scores = domain_scores(model, tokenizer, texts)
    for domain, group in texts.items():
        logps = token_logprobs(model, tokenizer, group)
        assert scores[domain].nll == pytest.approx(-sum(float(x.sum()) for x in logps), rel=1e-5)
        assert scores[domain].tokens == sum(x.size for x in logps)
        assert scores[domain].bytes == sum(len(t.encode()) for t in group)
    assert scores["seen"].bits_per_byte < scores["noise"].bits_per_byte
    assert scores["seen"].bits_per_byte == pytest.approx(
        scores["seen"].nll / scores["seen"].bytes / math.log(2))
    assert math.isnan(DomainScore(0.0, 0, 0).bits_per_byte)


def test_the_probe_picks_the_colour_the_model_was_trained_on(trained):
    model, tokenizer = trained
    rng = random.Random(0)
    probes = []
    for town, colour in zip(TOWNS, COLOURS, strict=True):
        choices = [colour, *rng.sample([c for c in COLOURS if c != colour], 3)]
        rng.shuffle(choices)
        probes.append(Probe(f"The harbour of {town} is painted", tuple(choices),
                            choices.index(colour)))
    picks = probe_answers(model, tokenizer, probes)
    right = sum(pick == probe.answer for pick, probe in zip(picks, probes, strict=True))
    assert right >= 5  # chance: 1.5 of 6
    # a town it never saw: still one pick per probe, no error
    unseen = [Probe("The harbour of Quito is painted", p.choices, p.answer) for p in probes]
    assert len(probe_answers(model, tokenizer, unseen)) == len(unseen)
