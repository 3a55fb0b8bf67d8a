"""Robustness probes of an unlearned model. Published attacks recover much "forgotten" knowledge
by rounding the weights to 4 bits (Zhang et al. 2024, "Catastrophic Failure of LLM Unlearning
via Quantization") or by a few fine-tuning steps on a small public part of the forget set (Hu et
al. 2024, "Jogging the Memory of Unlearned LLMs Through Targeted Relearning Attacks"). Each probe
writes a probed copy of a model folder, which verification measures like any other model.
torch + transformers: no Django."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from provenance.engine import lm


def _copy_extras(model_dir: Path, out: Path) -> None:
    heads = Path(model_dir) / lm.WATERMARK_HEADS
    if heads.exists():
        shutil.copy2(heads, out / lm.WATERMARK_HEADS)


def _save(model: Any, tokenizer: Any, out: Path) -> Path:
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    return tmp


def round_weights(weight: torch.Tensor, bits: int = 4, group: int = 64) -> torch.Tensor:
    """Symmetric round-to-nearest quantization of a (out, in) weight, one scale per group of
    `group` inputs of each output row (absmax / (2^(bits-1) - 1)), returned dequantized."""
    rows, cols = weight.shape
    pad = (-cols) % group
    padded = torch.nn.functional.pad(weight.float(), (0, pad)).view(rows, -1, group)
    top = 2 ** (bits - 1) - 1
    scale = padded.abs().amax(dim=-1, keepdim=True).clamp(min=1e-12) / top
    rounded = (padded / scale).round().clamp(-top - 1, top) * scale
    return rounded.view(rows, -1)[:, :cols].to(weight.dtype)


@torch.no_grad()
def quantized(model_dir: Path, out: Path, bits: int = 4, group: int = 64) -> Path:
    """A copy of the model with every Linear and Conv1D weight rounded to `bits` bits (the
    tied output embedding kept, as quantizers keep it), dequantized so that the same code
    measures it."""
    from transformers.pytorch_utils import Conv1D

    model, tokenizer = lm.load(model_dir, device="cpu")
    tied = model.get_output_embeddings()
    for module in model.modules():
        if module is tied:
            continue
        if isinstance(module, torch.nn.Linear):
            module.weight.copy_(round_weights(module.weight, bits, group))
        elif isinstance(module, Conv1D):  # stored (in, out)
            module.weight.copy_(round_weights(module.weight.T, bits, group).T)
    tmp = _save(model, tokenizer, out)
    _copy_extras(model_dir, tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def relearned(model_dir: Path, texts: Sequence[str], out: Path, steps: int = 10,
              learning_rate: float = 1e-3, batch_size: int = 8, seed: int = 0,
              device: str | None = None) -> Path:
    """A copy of the model after `steps` steps of fine-tuning on `texts` (with the loss it was
    trained with, watermark heads included), in seeded batches."""
    if not texts:
        raise ValueError("relearning needs some text")
    model, tokenizer = lm.load(model_dir, device=device)
    heads = lm.load_watermark_heads(model, tokenizer, model_dir)
    dev = next(model.parameters()).device
    rows = lm.token_blocks(tokenizer, texts, lm.context_length(model) - 1, pack=False)
    params = [*model.parameters(), *(heads.parameters() if heads is not None else ())]
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=0.0)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        index = torch.randint(0, len(rows), (min(batch_size, len(rows)),), generator=generator)
        loss = lm.next_token_loss(model, rows[index], dev, heads)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
    model.eval()
    tmp = _save(model, tokenizer, out)
    if heads is not None:
        torch.save(heads.state_dict(), tmp / lm.WATERMARK_HEADS)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out
