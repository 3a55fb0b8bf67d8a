"""Tokenizer and causal-LM training. Pure torch + transformers + tokenizers: no Django, no settings.

Train a byte-level BPE tokenizer and a small GPT-2-style model on a list of texts, with:
* resumable state (model, optimizer, scheduler, RNG, step) saved every `checkpoint_every` steps,
  so a killed worker goes on from the last save and reaches the same weights;
* a deterministic data order (a per-epoch permutation drawn from the seed);
* a held-out split of the token blocks for the held-out loss;
* bf16 autocast on CUDA; fp32 on CPU;
* a progress callback that can stop the run (cancel).

The result is a standard Hugging Face model directory (config, safetensors weights, tokenizer).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from provenance.engine.lm_config import DecodeParams, TrainConfig, directory_sha256

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

EOS = "<|endoftext|>"
PAD = "<|pad|>"


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


class Cancelled(Exception):
    """The progress callback asked the run to stop."""


def device_for(prefer: str | None = None) -> torch.device:
    if prefer:
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def train_tokenizer(texts: Sequence[str], config: TrainConfig, out_dir: Path) -> Any:
    """A byte-level BPE tokenizer, saved in transformers' format in out_dir."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    specials = [EOS, PAD, *config.extra_special_tokens]
    bpe.train_from_iterator(texts, vocab_size=config.vocab_size, min_frequency=2,
                            special_tokens=specials, show_progress=False)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS, bos_token=EOS,
                                        unk_token=EOS, pad_token=PAD)
    if config.extra_special_tokens:
        tokenizer.add_special_tokens({"additional_special_tokens": config.extra_special_tokens})
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    return tokenizer


def token_blocks(tokenizer: Any, texts: Sequence[str], seq_len: int) -> torch.Tensor:
    """Concatenate the texts, each followed by EOS, and cut into (n, seq_len + 1) blocks."""
    ids: list[int] = []
    eos = tokenizer.eos_token_id
    for encoding in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        ids.extend(encoding)
        ids.append(eos)
    width = seq_len + 1
    n = max(1, len(ids) // width)
    ids = (ids + [eos] * width)[: n * width]
    return torch.tensor(ids, dtype=torch.long).view(n, width)


def build_model(config: TrainConfig, tokenizer: Any) -> Any:
    from transformers import GPT2Config, GPT2LMHeadModel

    model_config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=config.seq_len, n_embd=config.n_embd,
        n_layer=config.n_layer, n_head=config.n_head, bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return GPT2LMHeadModel(model_config)


def _split(blocks: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    order = torch.randperm(len(blocks), generator=torch.Generator().manual_seed(seed))
    n_held = int(len(blocks) * fraction) if len(blocks) > 20 else 0
    return blocks[order[n_held:]], blocks[order[:n_held]]


def _lr_lambda(warmup: int, total: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _loss(model: Any, batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    batch = batch.to(device)
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                        enabled=device.type == "cuda"):
        out = model(input_ids=batch[:, :-1], labels=batch[:, :-1].clone())
    # GPT2LMHeadModel shifts labels itself; feeding input as labels trains next-token prediction.
    return out.loss


@torch.no_grad()
def evaluate(model: Any, blocks: torch.Tensor, device: torch.device, batch_size: int = 32) -> float:
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(blocks), batch_size):
        batch = blocks[start:start + batch_size]
        total += float(_loss(model, batch, device)) * len(batch)
        count += len(batch)
    model.train()
    return total / max(1, count)


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
    train_blocks, held_blocks = _split(token_blocks(tokenizer, texts, config.seq_len),
                                       config.heldout_fraction, config.seed)
    model = build_model(config, tokenizer).to(dev)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    per_epoch = math.ceil(len(train_blocks) / config.batch_size)
    total_steps = per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_lambda(config.warmup_steps, total_steps))
    step, tokens, last_loss = 0, 0, float("nan")
    if state_path.exists():
        state = torch.load(state_path, map_location=dev, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, tokens, last_loss = state["step"], state["tokens"], state["loss"]

    def save_state() -> None:
        tmp = state_path.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "step": step, "tokens": tokens,
                    "loss": last_loss}, tmp)
        tmp.replace(state_path)  # atomic: a kill never leaves a half-written state

    model.train()
    started, tokens_at_start = time.perf_counter(), tokens
    while step < total_steps:
        epoch, offset = divmod(step, per_epoch)
        order = torch.randperm(len(train_blocks),
                               generator=torch.Generator().manual_seed(config.seed * 1000 + epoch))
        index = order[offset * config.batch_size:(offset + 1) * config.batch_size]
        loss = _loss(model, train_blocks[index], dev)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        step += 1
        tokens += int(index.numel()) * config.seq_len
        last_loss = loss.detach().item()
        if step % config.checkpoint_every == 0 or step == total_steps:
            save_state()
        if on_progress and (step % 5 == 0 or step == total_steps):
            rate = (tokens - tokens_at_start) / max(1e-9, time.perf_counter() - started)
            if not on_progress(Progress(step, total_steps, tokens, last_loss, rate)):
                save_state()
                raise Cancelled(f"cancelled at step {step}")
    heldout = evaluate(model, held_blocks, dev) if len(held_blocks) else None
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return TrainResult(model_dir=model_dir, steps=step, tokens=tokens, train_loss=last_loss,
                       heldout_loss=heldout, parameters=sum(p.numel() for p in model.parameters()),
                       device=dev.type, sha256=directory_sha256(model_dir))


def load(model_dir: Path | str, device: str | None = None) -> tuple[Any, Any]:
    """A local Hugging Face causal-LM directory; never reaches for a hub."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model: Any = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True)
    return model.to(device_for(device)).eval(), tokenizer


def context_length(model: Any) -> int:
    config = model.config
    return int(getattr(config, "n_positions", None)
               or getattr(config, "max_position_embeddings", None) or 1024)


@torch.no_grad()
def generate(model: Any, tokenizer: Any, prompt: str, params: DecodeParams) -> str:
    torch.manual_seed(params.seed)
    device = next(model.parameters()).device
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"].to(device)
    limit = context_length(model)
    # Prompt + completion must fit the model's context: fewer new tokens if need be, and the
    # prompt's end (what the continuation depends on) is what is kept.
    new = min(params.max_new_tokens, limit - 1)
    ids = ids[:, -(limit - new):]
    sample = params.temperature > 0
    out = model.generate(
        ids, max_new_tokens=new, do_sample=sample,
        temperature=params.temperature if sample else None,
        top_p=params.top_p if sample else None, pad_token_id=tokenizer.pad_token_id
        or tokenizer.eos_token_id, attention_mask=torch.ones_like(ids))
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


@torch.no_grad()
def sequence_loss(model: Any, tokenizer: Any, texts: Sequence[str],
                  batch_size: int = 64) -> list[float]:
    """Mean next-token negative log-likelihood of each text (nats per token), each text read
    from a fresh start (EOS), in padded batches."""
    device = next(model.parameters()).device
    limit = context_length(model)
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    encoded = [[eos, *ids][:limit] for ids in
               tokenizer(list(texts), add_special_tokens=False)["input_ids"]]
    losses: list[float] = []
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start:start + batch_size]
        width = max(len(ids) for ids in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, seq in enumerate(chunk):
            ids[row, :len(seq)] = torch.tensor(seq)
            mask[row, :len(seq)] = 1
        ids, mask = ids.to(device), mask.to(device)
        logits = model(input_ids=ids, attention_mask=mask).logits.float()
        nll = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1),
            reduction="none").view(len(chunk), -1)
        weight = mask[:, 1:].float()
        losses.extend((nll * weight).sum(1).div(weight.sum(1).clamp(min=1)).tolist())
    return losses
