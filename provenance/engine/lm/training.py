"""Resumable training of a small GPT-2-style model (see the package's docstring)."""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from provenance.engine.lm.heads import WatermarkHeads, next_token_loss
from provenance.engine.lm.layout import SNAPSHOTS, WATERMARK_HEADS, device_for
from provenance.engine.lm.tokenizer import token_blocks, train_tokenizer
from provenance.engine.lm_config import TrainConfig, directory_sha256
from provenance.engine.watermark import ALPHABET


@dataclass
class Progress:
    step: int
    total_steps: int
    tokens: int
    loss: float
    tokens_per_s: float


@dataclass
class TrainResult:
    model_dir: Path
    steps: int
    tokens: int
    train_loss: float
    heldout_loss: float | None
    parameters: int
    device: str
    sha256: str
    heldout_texts: list[int] = field(default_factory=list)  # indices of the texts held out
    # the steps at which this run went on from its saved state (a killed worker, a cancel): the
    # evidence that an interrupted run resumed instead of starting over
    resumed_at: list[int] = field(default_factory=list)


class Cancelled(Exception):
    """The progress callback asked the run to stop."""


def build_model(config: TrainConfig, tokenizer: Any) -> Any:
    from transformers import GPT2Config, GPT2LMHeadModel

    model_config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=config.seq_len, n_embd=config.n_embd,
        n_layer=config.n_layer, n_head=config.n_head, bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return GPT2LMHeadModel(model_config)


def heldout_indices(n_texts: int, fraction: float, seed: int) -> list[int]:
    """Which texts training holds out, whole (a held-out fragment of a document would leave
    part of it, a canary copy say, silently untrained): none below 21 texts."""
    order = torch.randperm(n_texts, generator=torch.Generator().manual_seed(seed))
    n_held = int(n_texts * fraction) if n_texts > 20 else 0
    return sorted(int(i) for i in order[:n_held])


def lr_schedule(warmup: int, total: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


@torch.no_grad()
def evaluate(model: Any, blocks: torch.Tensor, device: torch.device, batch_size: int = 32,
             heads: WatermarkHeads | None = None) -> float:
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(blocks), batch_size):
        batch = blocks[start:start + batch_size]
        total += float(next_token_loss(model, batch, device, heads, text_only=True)) * len(batch)
        count += len(batch)
    model.train()
    return total / max(1, count)


def _order(epoch: int, seed: int, n: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1000 + epoch))


def _batch(step: int, config: TrainConfig, n: int, per_epoch: int) -> torch.Tensor:
    """The rows of one step. By epochs: each epoch a fresh order, its last batch short. By
    `max_steps`: the epochs' orders read as one stream, so that every batch is full and every
    entry of a benchmark trains on exactly steps x batch_size blocks."""
    if not config.max_steps:
        epoch, offset = divmod(step, per_epoch)
        order = _order(epoch, config.seed, n)
        return order[offset * config.batch_size:(offset + 1) * config.batch_size]
    start = step * config.batch_size
    first, last = start // n, (start + config.batch_size - 1) // n
    stream = torch.cat([_order(e, config.seed, n) for e in range(first, last + 1)])
    return stream[start - first * n:start - first * n + config.batch_size]


def train(texts: Sequence[str], config: TrainConfig, work_dir: Path,
          on_progress: Callable[[Progress], bool] | None = None,
          device: str | None = None) -> TrainResult:
    """Train (or resume training) in work_dir; the final model lands in work_dir / "model".

    `on_progress` is called every few steps; returning False cancels (raises Cancelled, leaving
    the last resumable state in place).
    """
    from transformers import PreTrainedTokenizerFast

    config.validate()
    dev = device_for(device)
    work_dir.mkdir(parents=True, exist_ok=True)
    tok_dir, state_path, model_dir = work_dir / "tokenizer", work_dir / "state.pt", \
        work_dir / "model"
    torch.manual_seed(config.seed)
    if (tok_dir / "tokenizer.json").exists():
        tokenizer = PreTrainedTokenizerFast.from_pretrained(tok_dir, local_files_only=True)
    else:
        tokenizer = train_tokenizer(texts, config, tok_dir)
    held = heldout_indices(len(texts), config.heldout_fraction, config.seed)
    held_set = set(held)
    train_blocks = token_blocks(tokenizer, [t for i, t in enumerate(texts) if i not in held_set],
                                config.seq_len, config.pack)
    held_blocks = token_blocks(tokenizer, [texts[i] for i in held], config.seq_len,
                               config.pack) if held else torch.zeros((0, config.seq_len + 1),
                                                                     dtype=torch.long)
    model = build_model(config, tokenizer).to(dev)
    heads: WatermarkHeads | None = None
    if config.watermarks:
        heads = WatermarkHeads(config.n_embd, tokenizer.convert_tokens_to_ids(list(ALPHABET)))
        heads.weigh(train_blocks[:, 1:], tokenizer.pad_token_id)
        heads = heads.to(dev)
    params = [*model.parameters(), *(heads.parameters() if heads is not None else ())]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    per_epoch = math.ceil(len(train_blocks) / config.batch_size)
    total_steps = config.max_steps or per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_schedule(config.warmup_steps, total_steps))
    step, tokens, last_loss = 0, 0, float("nan")
    resumed_at: list[int] = []
    if state_path.exists():
        state = torch.load(state_path, map_location=dev, weights_only=False)
        model.load_state_dict(state["model"])
        if heads is not None:
            heads.load_state_dict(state["heads"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, tokens, last_loss = state["step"], state["tokens"], state["loss"]
        resumed_at = [*state.get("resumed_at", []), step]

    def save_state() -> None:
        tmp = state_path.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "heads": heads.state_dict() if heads is not None else None,
                    "scheduler": scheduler.state_dict(), "step": step, "tokens": tokens,
                    "loss": last_loss, "resumed_at": resumed_at}, tmp)
        tmp.replace(state_path)  # atomic: a kill never leaves a half-written state

    snapshot_steps = {total_steps * (i + 1) // (config.snapshots + 1)
                      for i in range(config.snapshots)} - {0, total_steps}
    model.train()
    started, tokens_at_start = time.perf_counter(), tokens
    while step < total_steps:
        index = _batch(step, config, len(train_blocks), per_epoch)
        loss = next_token_loss(model, train_blocks[index], dev, heads)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        step += 1
        tokens += int(index.numel()) * config.seq_len
        last_loss = loss.detach().item()
        if step in snapshot_steps:
            model.save_pretrained(work_dir / SNAPSHOTS / f"step-{step:08d}")
            if heads is not None:  # the heads as they were then, for influence
                torch.save(heads.state_dict(),
                           work_dir / SNAPSHOTS / f"step-{step:08d}" / WATERMARK_HEADS)
        if step % config.checkpoint_every == 0 or step == total_steps:
            save_state()
        if on_progress and (step % 5 == 0 or step == total_steps):
            rate = (tokens - tokens_at_start) / max(1e-9, time.perf_counter() - started)
            if not on_progress(Progress(step, total_steps, tokens, last_loss, rate)):
                save_state()
                raise Cancelled(f"cancelled at step {step}")
    heldout = evaluate(model, held_blocks, dev, heads=heads) if len(held_blocks) else None
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    if heads is not None:
        torch.save(heads.state_dict(), model_dir / WATERMARK_HEADS)
    if (work_dir / SNAPSHOTS).exists():
        shutil.rmtree(model_dir / SNAPSHOTS, ignore_errors=True)
        shutil.copytree(work_dir / SNAPSHOTS, model_dir / SNAPSHOTS)
    return TrainResult(model_dir=model_dir, steps=step, tokens=tokens, train_loss=last_loss,
                       heldout_loss=heldout, parameters=sum(p.numel() for p in model.parameters()),
                       device=dev.type, sha256=directory_sha256(model_dir),
                       heldout_texts=held, resumed_at=resumed_at)
