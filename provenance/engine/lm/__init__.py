"""Tokenizer and causal-LM training and inference. Pure torch + transformers + tokenizers: no
Django, no settings.

Train a byte-level BPE tokenizer and a small GPT-2-style model on a list of texts, with:
* resumable state (model, optimizer, scheduler, RNG, step) saved every `checkpoint_every` steps,
  so a killed worker goes on from the last save and reaches the same weights;
* a deterministic data order (a per-epoch permutation drawn from the seed);
* a held-out split of the token blocks for the held-out loss;
* bf16 autocast on CUDA; fp32 on CPU;
* a progress callback that can stop the run (cancel).

The result is a standard Hugging Face model directory (config, safetensors weights, tokenizer).
Modules: `tokenizer`, `heads` (watermark heads and the shared losses), `training`, `infer`, and
`layout` (special tokens, model-folder files, device). Everything is importable from here.
"""

from __future__ import annotations

from provenance.engine.lm.heads import (
    WatermarkHeads,
    load_watermark_heads,
    next_token_loss,
    position_losses,
    target_masks,
)
from provenance.engine.lm.infer import (
    MarkedGeneration,
    context_length,
    continuation_logprob,
    generate,
    generate_marked,
    load,
    place_mark,
    sequence_loss,
    snapshots,
    text_space,
    token_logprobs,
)
from provenance.engine.lm.layout import (
    EOS,
    PAD,
    SNAPSHOTS,
    WATERMARK_HEADS,
    device_for,
)
from provenance.engine.lm.tokenizer import (
    special_tokens,
    token_blocks,
    train_tokenizer,
    windows,
)
from provenance.engine.lm.training import (
    Cancelled,
    Progress,
    TrainResult,
    build_model,
    evaluate,
    heldout_indices,
    lr_schedule,
    train,
)
from provenance.engine.lm_config import DecodeParams, TrainConfig

__all__ = [
    "DecodeParams",
    "TrainConfig",
    "Cancelled",
    "EOS",
    "MarkedGeneration",
    "PAD",
    "Progress",
    "SNAPSHOTS",
    "TrainResult",
    "WATERMARK_HEADS",
    "WatermarkHeads",
    "build_model",
    "context_length",
    "continuation_logprob",
    "device_for",
    "evaluate",
    "generate",
    "generate_marked",
    "heldout_indices",
    "load",
    "load_watermark_heads",
    "lr_schedule",
    "next_token_loss",
    "place_mark",
    "position_losses",
    "sequence_loss",
    "snapshots",
    "special_tokens",
    "target_masks",
    "text_space",
    "token_blocks",
    "token_logprobs",
    "train",
    "train_tokenizer",
    "windows",
]
