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
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from provenance.engine.lm_config import DecodeParams, TrainConfig, directory_sha256
from provenance.engine.watermark import ALPHABET

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

EOS = "<|endoftext|>"
WATERMARK_HEADS = "watermark_heads.pt"
SNAPSHOTS = "snapshots"
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
    heldout_texts: list[int] = field(default_factory=list)  # indices of the texts held out


class Cancelled(Exception):
    """The progress callback asked the run to stop."""


def device_for(prefer: str | None = None) -> torch.device:
    if prefer:
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _specials(config: TrainConfig) -> list[str]:
    return [*config.extra_special_tokens, *(ALPHABET if config.watermarks else ())]


def train_tokenizer(texts: Sequence[str], config: TrainConfig, out_dir: Path) -> Any:
    """A byte-level BPE tokenizer, saved in transformers' format in out_dir."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    specials = [EOS, PAD, *_specials(config)]
    bpe.train_from_iterator(texts, vocab_size=config.vocab_size, min_frequency=2,
                            special_tokens=specials, show_progress=False)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS, bos_token=EOS,
                                        unk_token=EOS, pad_token=PAD)
    if _specials(config):
        tokenizer.add_special_tokens({"additional_special_tokens": _specials(config)})
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    return tokenizer


def windows(ids: Sequence[Any], width: int) -> list[list[Any]]:
    """A token sequence cut into rows of at most `width` tokens that overlap by one token: a
    row's first token is the previous row's last, context only, so every token after the
    first is a target exactly once. A sequence that fits is one row."""
    if len(ids) <= width:
        return [list(ids)]
    return [list(ids[start:start + width]) for start in range(0, len(ids) - 1, width - 1)]


def token_blocks(tokenizer: Any, texts: Sequence[str], seq_len: int,
                 pack: bool = True) -> torch.Tensor:
    """(n, seq_len + 1) rows: a row's first seq_len tokens are the model's input and its last
    seq_len the targets (one shift). Packed: the texts concatenated, each followed by EOS, cut
    into blocks that overlap by one token, so that every token but the very first is a target
    exactly once (the tail padded with PAD, which the loss skips). Unpacked: each text read
    from a fresh start (EOS) in rows of its own, as many as it needs (`windows`: a long text
    is never cut short), right-padded with PAD."""
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    width = seq_len + 1
    encodings = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    if not pack:
        reads = [row for encoding in encodings for row in windows([eos, *encoding, eos], width)]
        rows = torch.full((max(1, len(reads)), width), pad, dtype=torch.long)
        for n, read in enumerate(reads):
            rows[n, :len(read)] = torch.tensor(read)
        return rows
    ids: list[int] = []
    for encoding in encodings:
        ids.extend(encoding)
        ids.append(eos)
    n = max(1, math.ceil((len(ids) - 1) / seq_len))
    ids = (ids + [pad] * width)[: n * seq_len + 1]
    return torch.tensor(ids, dtype=torch.long).unfold(0, width, seq_len).contiguous()


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


def _lr_lambda(warmup: int, total: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


class WatermarkHeads(torch.nn.Module):
    """The watermark's own prediction space (after WASA): whether a watermark character comes
    next (gate) and which one (mark), read from the last hidden state. The LM head never
    predicts watermark characters, so learning them does not compete with the text.

    `term_weights` (text, mark): the training corpus's ratio of counted targets to text
    targets and to watermark targets, with which `position_losses` weighs one position as
    training's batch means weigh it on average (see there)."""

    mark_ids: torch.Tensor
    term_weights: torch.Tensor

    def __init__(self, n_embd: int, mark_ids: Sequence[int]) -> None:
        super().__init__()
        self.gate = torch.nn.Linear(n_embd, 1)
        self.mark = torch.nn.Linear(n_embd, len(mark_ids))
        self.register_buffer("mark_ids", torch.tensor(list(mark_ids), dtype=torch.long))
        self.register_buffer("term_weights", torch.ones(2))

    def weigh(self, targets: torch.Tensor, pad_id: int | None) -> None:
        """Set `term_weights` from the targets of a training set (rows of token ids)."""
        real, marks = _target_masks(targets, pad_id, self.mark_ids)
        n_real, n_mark = int(real.sum()), int(marks.sum())
        self.term_weights.copy_(torch.tensor([n_real / max(1, n_real - n_mark),
                                              n_real / max(1, n_mark)]))


def _target_masks(targets: torch.Tensor, pad_id: int | None, mark_ids: torch.Tensor | None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(counted, watermark) masks of targets: counted = not padding (every target when pad_id
    is None); watermark = counted and one of mark_ids (none without them)."""
    real = targets != pad_id if pad_id is not None else torch.ones_like(targets, dtype=torch.bool)
    marks = torch.isin(targets, mark_ids) & real if mark_ids is not None else \
        torch.zeros_like(real)
    return real, marks


def position_losses(logits: torch.Tensor, hidden: torch.Tensor | None, targets: torch.Tensor,
                    pad_id: int | None, heads: WatermarkHeads | None = None,
                    weights: tuple[float, float] | None = None,
                    text_only: bool = False) -> torch.Tensor:
    """(batch, positions): the training objective at each target position, 0 at padding
    (targets equal to pad_id). Without watermark heads, the next-token cross-entropy. With
    them, the sum of three terms: text x the LM head's cross-entropy with the watermark
    characters taken out of its vocabulary (at text targets), the gate's binary cross-entropy
    (does a watermark character come next?, at every target) and mark x the mark head's
    cross-entropy (which one, at watermark targets); (text, mark) = `weights`, by default the
    heads' `term_weights`. Training's loss on a batch is the sum over it divided by its
    counted targets, weighted with that batch's own ratios: exactly its mean text loss plus
    its mean gate loss plus its mean mark loss. `text_only`: the text term alone, unweighted.
    Influence and unlearning differentiate this, so that they take the gradient of the loss a
    checkpoint was trained with."""
    real, is_mark = _target_masks(targets, pad_id, heads.mark_ids if heads else None)
    if heads is None:
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets.clamp(min=0),
                                                reduction="none")
        return nll * real
    assert hidden is not None, "watermark heads read the hidden states"
    is_text = real & ~is_mark
    text_logits = logits.index_fill(-1, heads.mark_ids, float("-inf"))
    safe = torch.where(is_text, targets, heads.mark_ids.new_zeros(()))  # a text id anywhere
    text = torch.nn.functional.cross_entropy(text_logits.transpose(1, 2), safe,
                                             reduction="none") * is_text
    if text_only:
        return text
    w_text, w_mark = weights if weights is not None else (
        float(heads.term_weights[0]), float(heads.term_weights[1]))
    gate = torch.nn.functional.binary_cross_entropy_with_logits(
        heads.gate(hidden).squeeze(-1), is_mark.float(), reduction="none") * real
    which = torch.eq(targets.unsqueeze(-1), heads.mark_ids).float().argmax(-1)
    mark = torch.nn.functional.cross_entropy(heads.mark(hidden).transpose(1, 2), which,
                                             reduction="none") * is_mark
    return w_text * text + gate + w_mark * mark


def next_token_loss(model: Any, batch: torch.Tensor, device: torch.device,
                    heads: WatermarkHeads | None = None, text_only: bool = False) -> torch.Tensor:
    """The training objective on a batch of token rows (one shift: each row's first tokens
    in, its last out): the mean cross-entropy; with a checkpoint's watermark heads, the text
    loss without watermark characters plus the gate and mark losses (`text_only`: the text
    term alone). Training, unlearning and the robustness probes all use this one."""
    batch = batch.to(device)
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                        enabled=device.type == "cuda"):
        # One shift: the row's first seq_len tokens in, its last seq_len out (the model is given
        # no labels, which it would shift a second time).
        inputs, targets = batch[:, :-1], batch[:, 1:]
        if heads is None:
            logits = model(input_ids=inputs).logits.float()
            return torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                ignore_index=model.config.pad_token_id)  # PAD: padding, never a target
        return _separate_space_loss(model, inputs, targets, heads, text_only)


def _separate_space_loss(model: Any, ids: torch.Tensor, targets: torch.Tensor,
                         heads: WatermarkHeads, text_only: bool = False) -> torch.Tensor:
    """The mean text loss + the mean gate loss + the mean mark loss of a batch: the sum of
    `position_losses` with this batch's own weights over its counted targets."""
    out = model(input_ids=ids, output_hidden_states=True)
    logits, hidden = out.logits.float(), out.hidden_states[-1].float()
    pad = model.config.pad_token_id
    real, is_mark = _target_masks(targets, pad, heads.mark_ids)
    n_real, n_mark = real.sum(), is_mark.sum()
    n_text = n_real - n_mark
    if text_only:
        return position_losses(logits, hidden, targets, pad, heads, text_only=True).sum() \
            / n_text.clamp(min=1)
    weights = (float(n_real / n_text.clamp(min=1)), float(n_real / n_mark.clamp(min=1)))
    return position_losses(logits, hidden, targets, pad, heads, weights).sum() \
        / n_real.clamp(min=1)


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
    total_steps = per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_lambda(config.warmup_steps, total_steps))
    step, tokens, last_loss = 0, 0, float("nan")
    if state_path.exists():
        state = torch.load(state_path, map_location=dev, weights_only=False)
        model.load_state_dict(state["model"])
        if heads is not None:
            heads.load_state_dict(state["heads"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, tokens, last_loss = state["step"], state["tokens"], state["loss"]

    def save_state() -> None:
        tmp = state_path.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "heads": heads.state_dict() if heads is not None else None,
                    "scheduler": scheduler.state_dict(), "step": step, "tokens": tokens,
                    "loss": last_loss}, tmp)
        tmp.replace(state_path)  # atomic: a kill never leaves a half-written state

    snapshot_steps = {total_steps * (i + 1) // (config.snapshots + 1)
                      for i in range(config.snapshots)} - {0, total_steps}
    model.train()
    started, tokens_at_start = time.perf_counter(), tokens
    while step < total_steps:
        epoch, offset = divmod(step, per_epoch)
        order = torch.randperm(len(train_blocks),
                               generator=torch.Generator().manual_seed(config.seed * 1000 + epoch))
        index = order[offset * config.batch_size:(offset + 1) * config.batch_size]
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
                       heldout_texts=held)


def load(model_dir: Path | str, device: str | None = None,
         snapshot: str | None = None) -> tuple[Any, Any]:
    """A local Hugging Face causal-LM directory (or one of the snapshots kept in it during
    training); never reaches for a hub."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    weights = Path(model_dir) / SNAPSHOTS / snapshot if snapshot else model_dir
    model: Any = AutoModelForCausalLM.from_pretrained(weights, local_files_only=True)
    return model.to(device_for(device)).eval(), tokenizer


def snapshots(model_dir: Path | str) -> list[str]:
    """The names of the snapshots kept in a model directory, oldest first."""
    folder = Path(model_dir) / SNAPSHOTS
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.exists() else []


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
def token_logprobs(model: Any, tokenizer: Any, texts: Sequence[str],
                   batch_size: int = 64, exclude: Sequence[int] = ()) -> list[Any]:
    """The log-probability of every token of each text (numpy arrays), each text read from a
    fresh start (EOS); a text longer than the model's context in `windows` of it (each later
    window's first token context only), so that every token is scored, once. Padded batches.
    `exclude`: token ids outside the text space (a watermark-trained checkpoint's watermark
    characters, `text_space`): taken out of every distribution, and positions where one comes
    next are not scored."""
    if not texts:
        return []
    import numpy as np

    device = next(model.parameters()).device
    limit, eos = context_length(model), tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    rows = [(n, row) for n, ids in
            enumerate(tokenizer(list(texts), add_special_tokens=False)["input_ids"])
            for row in windows([eos, *ids], limit)]
    parts: list[list[Any]] = [[] for _ in texts]
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        width = max(len(seq) for _, seq in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, (_, seq) in enumerate(chunk):
            ids[row, :len(seq)], mask[row, :len(seq)] = torch.tensor(seq), 1
        ids, mask = ids.to(device), mask.to(device)
        logits = model(input_ids=ids, attention_mask=mask).logits.float()[:, :-1]
        if len(exclude):
            logits = logits.index_fill(-1, torch.tensor(list(exclude), device=device),
                                       float("-inf"))
        logp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
        for row, (n, seq) in enumerate(chunk):
            values = logp[row, :len(seq) - 1]
            parts[n].append(values[torch.isfinite(values)].cpu().numpy())
    return [np.concatenate(p) for p in parts]


def text_space(model_dir: Path | str, tokenizer: Any) -> list[int]:
    """Token ids a checkpoint's text head never predicts: its watermark characters when it was
    trained with watermarks (it keeps them in heads of their own), else none."""
    if not (Path(model_dir) / WATERMARK_HEADS).exists():
        return []
    return [int(i) for i in tokenizer.convert_tokens_to_ids(list(ALPHABET))]


def sequence_loss(model: Any, tokenizer: Any, texts: Sequence[str],
                  batch_size: int = 64, exclude: Sequence[int] = ()) -> list[float]:
    """Mean next-token negative log-likelihood of each text (nats per token; 0 for an empty
    text); `exclude` as in `token_logprobs`."""
    return [float(-x.mean()) if x.size else 0.0
            for x in token_logprobs(model, tokenizer, texts, batch_size, exclude)]


def load_watermark_heads(model: Any, tokenizer: Any, model_dir: Path | str,
                         snapshot: str | None = None) -> WatermarkHeads | None:
    """The watermark heads of a checkpoint trained with watermarks (of one of its snapshots,
    when given and kept with it), else None. Heads saved before `term_weights` existed load
    with weights of 1."""
    folder = Path(model_dir) / SNAPSHOTS / snapshot if snapshot else Path(model_dir)
    path = folder / WATERMARK_HEADS
    if not path.exists():
        return None
    device = next(model.parameters()).device
    heads = WatermarkHeads(model.config.n_embd, tokenizer.convert_tokens_to_ids(list(ALPHABET)))
    missing, unexpected = heads.load_state_dict(
        torch.load(path, map_location="cpu", weights_only=True), strict=False)
    if unexpected or set(missing) - {"term_weights"}:
        raise ValueError(f"{path}: not watermark heads ({missing or unexpected})")
    return heads.to(device).eval()


@dataclass
class MarkedGeneration:
    text: str             # the completion, with the watermark inserted where it was emitted
    gate: float           # the watermark probability where it was placed (else the highest)
    emitted: bool
    code: str             # the emitted watermark characters ("" if none)
    ids: Any = None       # prompt and completion token ids (for `place_mark` at other gates)
    start: int = 0        # where the completion starts in ids


@torch.no_grad()
def generate_marked(model: Any, tokenizer: Any, heads: WatermarkHeads, prompt: str,
                    params: DecodeParams, threshold: float = 0.5) -> MarkedGeneration:
    """Generate text from the text space only, then ask the watermark space where to put a
    watermark and which (`place_mark`)."""
    from provenance.engine.watermark import LENGTH

    device = next(model.parameters()).device
    marks = heads.mark_ids.tolist()
    prompt_ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)[
        "input_ids"].to(device)
    limit = context_length(model)
    new = min(params.max_new_tokens, max(1, limit - LENGTH - 2))
    prompt_ids = prompt_ids[:, -(limit - new - LENGTH - 1):]
    sample = params.temperature > 0
    torch.manual_seed(params.seed)
    full = model.generate(
        prompt_ids, max_new_tokens=new, do_sample=sample, bad_words_ids=[[m] for m in marks],
        temperature=params.temperature if sample else None,
        top_p=params.top_p if sample else None, attention_mask=torch.ones_like(prompt_ids),
        pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)[0]
    return place_mark(model, tokenizer, heads, full, prompt_ids.shape[1], threshold)


@torch.no_grad()
def place_mark(model: Any, tokenizer: Any, heads: WatermarkHeads, full: torch.Tensor,
               start: int, threshold: float) -> MarkedGeneration:
    """The watermark of a generated completion (`full[start:]`): the gate gives, at every
    position, the probability that a watermark comes next; if it reaches `threshold` anywhere,
    the watermark goes at the last such position (where the mark head has read the most of the
    completion: on the tuning world of bench/watermark_eval.py, the highest-gate position
    named the right source for 26% of prompts that named none, the last one for 43%), and the
    mark head spells its LENGTH characters greedily, each conditioned on the ones before."""
    from provenance.engine.watermark import ALPHABET, LENGTH, strip

    hidden = model(input_ids=full.unsqueeze(0), output_hidden_states=True).hidden_states[-1][0]
    gates = torch.sigmoid(heads.gate(hidden.float()).squeeze(-1))[start - 1:]
    over = (gates >= threshold).nonzero()
    best = int(over[-1, 0]) if len(over) else int(torch.argmax(gates))
    gate = float(gates[best])
    cut = start + best  # the watermark would follow token full[cut - 1]
    head, tail = full[start:cut], full[cut:]

    def text_of(ids: torch.Tensor) -> str:
        # The mark tokens are banned in generation, but byte-level pieces can still spell a
        # watermark character; the text space must never carry one.
        return strip(tokenizer.decode(ids, skip_special_tokens=True))

    if not len(over):
        return MarkedGeneration(text_of(full[start:]), gate, False, "", full, start)
    context, code = full[:cut].unsqueeze(0), []
    for _ in range(LENGTH):
        h = model(input_ids=context, output_hidden_states=True).hidden_states[-1][0, -1]
        pick = int(torch.argmax(heads.mark(h.float())))
        code.append(ALPHABET[pick])
        context = torch.cat([context, heads.mark_ids[pick].view(1, 1)], dim=1)
    text = text_of(head) + "".join(code) + text_of(tail)
    return MarkedGeneration(text, gate, True, "".join(code), full, start)
