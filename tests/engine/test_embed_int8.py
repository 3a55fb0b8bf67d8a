"""Sentence embeddings in int8: the smoothing keeps the fp32 function, a build is checked against
fp32 and records whether it passed, and its embeddings stay close to fp32's on texts it was
neither calibrated nor checked on."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from provenance.engine import embed_int8
from provenance.engine.embeddings import MAX_TOKENS, embed, int8_build, model_dir


def unseen_texts() -> list[str]:
    """English prose of another kind than the standard library's docstrings (the calibration
    and check texts): the demo corpus's documents."""
    from demo import corpus

    return [t for s in corpus.build_corpus() for t in s.texts][:48]


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """The build the product makes: in the suite's state folder, where the first test that
    embeds (or this one) builds it once for the whole run, as a host does on first use."""
    state = os.environ.get("TRAILMARK_STATE_DIR")
    root = Path(state) / "cache" if state else tmp_path_factory.mktemp("int8")
    folder = root / embed_int8.cache_name()
    return folder, embed_int8.built_once(folder, int8_build)


def test_calibration_texts_are_many_fixed_and_real_prose():
    texts = embed_int8.calibration_texts()
    assert len(texts) == 256
    assert texts == embed_int8.calibration_texts()
    assert all(80 <= len(t) <= 1000 for t in texts)
    assert np.mean([" the " in t for t in texts]) > 0.8  # sentences, not code


def test_smoothing_moves_the_range_into_the_weights_without_changing_the_function():
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir(), local_files_only=True)
    model = AutoModel.from_pretrained(model_dir(), local_files_only=True,
                                      attn_implementation="eager").eval()
    texts = embed_int8.calibration_texts()[:8]
    ranges = {"encoder.layer.0.intermediate.dense": torch.full((384,), 7.0),
              "encoder.layer.1.attention.self.query": torch.full((384,), 0.1)}
    smoothed = embed_int8.smooth(model, ranges, alpha=0.7)
    for layer in (smoothed.encoder.layer[0].intermediate.dense,
                  smoothed.encoder.layer[1].attention.self.query):
        assert not isinstance(layer, torch.nn.Linear)  # wrapped: input divided, weight scaled
    assert isinstance(smoothed.encoder.layer[0].attention.self.query, torch.nn.Linear)  # no range
    assert not torch.equal(layer.linear.weight, model.encoder.layer[0].intermediate.dense.weight)
    batch = tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS,
                      return_tensors="pt")
    with torch.inference_mode():
        before = model(**batch).last_hidden_state
        after = smoothed(**batch).last_hidden_state
    assert torch.allclose(before, after, atol=1e-4)


def test_a_build_passes_its_check_and_stays_within_0_99_of_fp32_on_unseen_texts(build):
    folder, result = build
    assert result.passed and result.cosine_min >= 0.99
    assert result.calibration_texts == result.check_texts == 128
    assert embed_int8.built(folder) == result  # kept with what it measured
    import onnx

    ops = {n.op_type for n in onnx.load(str(folder / "model.onnx")).graph.node}
    assert {"MatMulInteger", "DynamicQuantizeLinear"} <= ops  # int8 Linears
    texts = unseen_texts()
    fp32 = embed(texts, device="cpu")
    int8 = embed(texts, device="cpu", int8=folder)
    assert int8.shape == fp32.shape == (len(texts), 384)
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    cosine = (fp32 * int8).sum(1)
    assert cosine.min() >= 0.99, cosine.min()
    # Not the fp32 model under another name: int8 is measurably different.
    assert cosine.max() < 0.99999


def test_int8_keeps_each_texts_nearest_neighbour(build):
    folder, _ = build
    texts = unseen_texts()
    fp32 = embed(texts, device="cpu")
    int8 = embed(texts, device="cpu", int8=folder)
    np.fill_diagonal(sims_fp32 := fp32 @ fp32.T, -1)
    np.fill_diagonal(sims_int8 := int8 @ int8.T, -1)
    agree = (sims_fp32.argmax(1) == sims_int8.argmax(1)).mean()
    assert agree >= 0.9, agree


def test_a_build_that_misses_its_bar_says_so_and_a_second_build_keeps_the_first(tmp_path):
    folder = tmp_path / "minilm"
    texts = embed_int8.calibration_texts()
    missed = int8_build(folder, calibration=texts[:8], check=texts[8:16], min_cosine=1.0)
    assert not missed.passed and missed.cosine_min < 1.0
    assert embed_int8.built(folder) == missed
    again = int8_build(folder, calibration=texts[:8], check=texts[8:16], min_cosine=0.0)
    assert again == missed  # the folder already held a build: it is what callers get
    assert not list(tmp_path.glob(".minilm-*"))  # no half-built folder left beside it
