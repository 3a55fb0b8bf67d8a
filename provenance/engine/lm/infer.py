"""Loading a model folder, generating (with or without a watermark), and per-token losses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from provenance.engine.lm.heads import WatermarkHeads
from provenance.engine.lm.layout import SNAPSHOTS, WATERMARK_HEADS, device_for
from provenance.engine.lm.tokenizer import windows
from provenance.engine.lm_config import DecodeParams
from provenance.engine.watermark import ALPHABET


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


@torch.no_grad()
def continuation_logprob(model: Any, tokenizer: Any, prompts: Sequence[str], continuation: str,
                         batch_size: int = 16, exclude: Sequence[int] = ()) -> list[float]:
    """log p(continuation | prompt) for each prompt: the continuation's token log-probabilities
    summed, its tokens the same after every prompt (tokenized apart, then joined). Where prompt
    and continuation exceed the context, the prompt's start is dropped. `exclude` as in
    `token_logprobs`."""
    limit, eos = context_length(model), tokenizer.eos_token_id
    tail = tokenizer(continuation, add_special_tokens=False)["input_ids"][:limit - 1]
    if not prompts or not tail:
        return [0.0] * len(prompts)
    heads = [ids[-(limit - len(tail)):] or [eos]
             for ids in tokenizer(list(prompts), add_special_tokens=False)["input_ids"]]
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    target = torch.tensor(tail, device=device)
    out: list[float] = []
    for start in range(0, len(heads), batch_size):
        chunk = heads[start:start + batch_size]
        width = max(len(h) for h in chunk) + len(tail)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, head in enumerate(chunk):
            ids[row, :len(head) + len(tail)] = torch.tensor(head + tail)
            mask[row, :len(head) + len(tail)] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        if len(exclude):
            logits = logits.index_fill(-1, torch.tensor(list(exclude), device=device),
                                       float("-inf"))
        for row, head in enumerate(chunk):
            # the logits at position p predict token p + 1
            at = logits[row, len(head) - 1:len(head) - 1 + len(tail)]
            out.append(float(torch.log_softmax(at, -1).gather(-1, target[:, None]).sum()))
    return out


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
