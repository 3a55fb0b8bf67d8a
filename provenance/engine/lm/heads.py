"""The watermark heads (their own prediction space) and the losses training and measuring share."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from provenance.engine.lm.layout import SNAPSHOTS, WATERMARK_HEADS
from provenance.engine.watermark import ALPHABET


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
        real, marks = target_masks(targets, pad_id, self.mark_ids)
        n_real, n_mark = int(real.sum()), int(marks.sum())
        self.term_weights.copy_(torch.tensor([n_real / max(1, n_real - n_mark),
                                              n_real / max(1, n_mark)]))


def target_masks(targets: torch.Tensor, pad_id: int | None, mark_ids: torch.Tensor | None
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
    real, is_mark = target_masks(targets, pad_id, heads.mark_ids if heads else None)
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
    real, is_mark = target_masks(targets, pad, heads.mark_ids)
    n_real, n_mark = real.sum(), is_mark.sum()
    n_text = n_real - n_mark
    if text_only:
        return position_losses(logits, hidden, targets, pad, heads, text_only=True).sum() \
            / n_text.clamp(min=1)
    weights = (float(n_real / n_text.clamp(min=1)), float(n_real / n_mark.clamp(min=1)))
    return position_losses(logits, hidden, targets, pad, heads, weights).sum() \
        / n_real.clamp(min=1)


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
