"""Approximate unlearning from a trained checkpoint. Pure torch + transformers: no Django.

Three methods, each with a retain term (next-token loss on a sample of the retained data):
* gradient difference: ascend the forget set's next-token loss, descend the retain set's;
* NPO (Zhang et al. 2024): a bounded, preference-style forget loss,
  (2 / beta) * mean(softplus(beta * (log p_theta(x) - log p_ref(x)))), with the original model as
  the reference; it slows down as the forget likelihood falls, where gradient ascent runs away;
* SimNPO (Fan et al. 2024): NPO without the reference model, on the per-token (length-
  normalised) loss, -(2 / beta) * mean(logsigmoid(beta * (nll / |x| - delta))).

Every token of a document is seen (`lm.token_blocks` unpacked: a long document in as many rows
as it needs, so a canary at its end is forgotten too). A checkpoint trained with watermarks is
unlearned with the loss it was trained with (`lm.position_losses`: the text head without the
watermark characters, the gate and mark heads), and its heads are unlearned with it.

A candidate model is saved every `eval_every` steps (verification chooses among them), together
with a resumable state (model, optimizer, step): a killed worker goes on from the last candidate
and reaches the same weights, because each step's batches are drawn from (seed, step).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from provenance.engine import lm
from takedowns.engine.unlearn_config import APPROXIMATE, UnlearnConfig

CANDIDATES = "candidates"


@dataclass
class UnlearnResult:
    candidates: list[tuple[int, Path]]  # (step, model directory), in step order
    steps: int
    seconds: float  # of this call (a resumed run counts only what it did itself)
    device: str
    resumed_at: list[int] = field(default_factory=list)  # steps it went on from a saved state


def _rows_loglik(model: Any, rows: torch.Tensor, device: torch.device,
                 heads: lm.WatermarkHeads | None = None) -> torch.Tensor:
    """Log-likelihood of each unpacked row (padding skipped) under the model as trained: the
    next-token log-probabilities, or, with watermark heads, those of the text head without the
    watermark characters plus the gate's and the mark head's (`lm.position_losses`, each term
    weighed 1: a likelihood, not training's batch means)."""
    rows = rows.to(device)
    ids, targets = rows[:, :-1], rows[:, 1:]
    pad = model.config.pad_token_id
    out = model(input_ids=ids, attention_mask=(ids != pad).long(),
                output_hidden_states=heads is not None)
    hidden = out.hidden_states[-1].float() if heads is not None else None
    return -lm.position_losses(out.logits.float(), hidden, targets, pad, heads,
                               weights=(1.0, 1.0)).sum(-1)


def _batch(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randint(0, n, (min(size, n),), generator=generator)


def _save_candidate(model: Any, tokenizer: Any, heads: lm.WatermarkHeads | None,
                    out: Path) -> Path:
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if heads is not None:  # unlearned with the model: the forgotten source's mark goes too
        torch.save(heads.state_dict(), tmp / lm.WATERMARK_HEADS)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def unlearn(model_dir: Path, forget_texts: Sequence[str], retain_texts: Sequence[str],
            method: str, config: UnlearnConfig, work_dir: Path,
            on_progress: Callable[[lm.Progress], bool] | None = None,
            device: str | None = None) -> UnlearnResult:
    """Unlearn `forget_texts` from the model in `model_dir`; candidates land in
    work_dir / "candidates" / "step-NNNNN". `on_progress` returning False cancels (lm.Cancelled)
    after saving the state."""
    if method not in APPROXIMATE:
        raise ValueError(f"unknown unlearning method {method!r}")
    if not forget_texts or not retain_texts:
        raise ValueError("unlearning needs a forget set and a retain set")
    config.validate()
    started = time.perf_counter()
    model, tokenizer = lm.load(model_dir, device=device)
    # A watermark-trained checkpoint is unlearned with the loss it was trained with.
    heads = lm.load_watermark_heads(model, tokenizer, model_dir)
    dev = next(model.parameters()).device
    params = [*model.parameters(), *(heads.parameters() if heads is not None else ())]
    width = lm.context_length(model)
    forget = lm.token_blocks(tokenizer, forget_texts, width - 1, pack=False)
    retain = lm.token_blocks(tokenizer, retain_texts, width - 1, pack=False)
    reference = None
    if method == "npo":
        with torch.no_grad():
            reference = torch.cat([_rows_loglik(model, forget[i:i + 64], dev, heads)
                                   for i in range(0, len(forget), 64)]).cpu()
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.0)
    work_dir.mkdir(parents=True, exist_ok=True)
    state_path, step = work_dir / "state.pt", 0
    resumed_at: list[int] = []
    if state_path.exists():
        state = torch.load(state_path, map_location=dev, weights_only=False)
        model.load_state_dict(state["model"])
        if heads is not None:
            heads.load_state_dict(state["heads"])
        optimizer.load_state_dict(state["optimizer"])
        step = state["step"]
        resumed_at = [*state.get("resumed_at", []), step]
    model.train()
    last_loss = float("nan")
    while step < config.steps:
        generator = torch.Generator().manual_seed(config.seed * 100_003 + step)
        f_index = _batch(len(forget), config.batch_size, generator)
        r_index = _batch(len(retain), config.batch_size, generator)
        if method == "graddiff":
            forget_term = -lm.next_token_loss(model, forget[f_index], dev, heads)
        elif method == "simnpo":
            rows = forget[f_index]
            counted = (rows[:, 1:] != model.config.pad_token_id).sum(-1).clamp(min=1).to(dev)
            per_token = -_rows_loglik(model, rows, dev, heads) / counted
            forget_term = -torch.nn.functional.logsigmoid(
                config.simnpo_beta * (per_token - config.simnpo_delta)).mean() \
                * (2 / config.simnpo_beta)
        else:
            assert reference is not None
            ratio = _rows_loglik(model, forget[f_index], dev, heads) \
                - reference[f_index].to(dev)
            forget_term = torch.nn.functional.softplus(config.beta * ratio).mean() \
                * (2 / config.beta)
        retain_term = lm.next_token_loss(model, retain[r_index], dev, heads)
        loss = forget_term + config.retain_weight * retain_term
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        step += 1
        last_loss = loss.detach().item()
        if step % config.eval_every == 0 or step == config.steps:
            _save_candidate(model, tokenizer, heads, work_dir / CANDIDATES / f"step-{step:05d}")
            tmp = state_path.with_suffix(".tmp")
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "heads": heads.state_dict() if heads is not None else None,
                        "step": step, "resumed_at": resumed_at}, tmp)
            tmp.replace(state_path)  # atomic: a kill never leaves a half-written state
            tokens = step * config.batch_size * 2 * width
            rate = tokens / max(1e-9, time.perf_counter() - started)
            if on_progress and not on_progress(lm.Progress(step, config.steps, tokens,
                                                           last_loss, rate)):
                raise lm.Cancelled(f"cancelled at step {step}")
    return UnlearnResult(candidates=candidates(work_dir), steps=step,
                         seconds=time.perf_counter() - started, device=dev.type,
                         resumed_at=resumed_at)


def candidates(work_dir: Path) -> list[tuple[int, Path]]:
    folder = work_dir / CANDIDATES
    if not folder.exists():
        return []
    return sorted((int(p.name.split("-")[1]), p) for p in folder.iterdir()
                  if p.is_dir() and p.name.startswith("step-") and not p.name.endswith(".tmp"))
