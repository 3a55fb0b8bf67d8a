"""Per-example gradients, projected the LoGra way, and the Fisher's label draws (see the
package's docstring)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from attribution.engine.features import FeatureSpec
from provenance.engine import lm


def _projected_layers(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module, int, int]]:
    """(name, module, d_in, d_out) of every Linear and Conv1D layer, in module order."""
    from transformers.pytorch_utils import Conv1D

    layers: list[tuple[str, torch.nn.Module, int, int]] = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            layers.append((name, module, module.in_features, module.out_features))
        elif isinstance(module, Conv1D):
            d_in, d_out = module.weight.shape  # Conv1D stores (in, out)
            layers.append((name, module, int(d_in), int(d_out)))
    return layers


def _gaussian(name: str, seed: int, rows: int, cols: int) -> torch.Tensor:
    digest = hashlib.sha256(f"{seed}:{name}:{rows}x{cols}".encode()).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)
    return torch.randn(rows, cols, generator=generator) / math.sqrt(cols)


class Featurizer:
    """Projected per-example gradients of a causal LM, one row per example, of the loss it was
    trained with: for a checkpoint trained with watermarks, pass its `heads` (the text head
    without the watermark characters, the gate and the mark head, whose two layers are
    featurized too; `lm.position_losses`)."""

    def __init__(self, model: Any, spec: FeatureSpec,
                 heads: lm.WatermarkHeads | None = None) -> None:
        self.model, self.spec, self.heads = model, spec, heads
        self.device = next(model.parameters()).device
        layers = _projected_layers(model) + (
            [(f"watermark.{name}", module, d_in, d_out)
             for name, module, d_in, d_out in _projected_layers(heads)]
            if heads is not None else [])
        if not layers:
            raise ValueError("the model has no Linear or Conv1D layer to featurize")
        k = max(1, min(spec.k_max, int(math.isqrt(spec.max_dim // len(layers)))))
        self.layers = [(name, module, min(k, d_in), min(k, d_out))
                       for name, module, d_in, d_out in layers]
        self.dim = sum(k_in * k_out for _, _, k_in, k_out in self.layers)
        self._proj = {name: (_gaussian(name + ":in", spec.seed, d_in, k_in).to(self.device),
                             _gaussian(name + ":out", spec.seed, d_out, k_out).to(self.device))
                      for (name, _, k_in, k_out), (_, _, d_in, d_out) in zip(self.layers, layers,
                                                                            strict=True)}
        self._inputs: dict[str, torch.Tensor] = {}
        self._grads: dict[str, torch.Tensor] = {}

    def _hook(self, name: str) -> Callable[..., None]:
        p_in, p_out = self._proj[name]

        def forward(_module: Any, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            self._inputs[name] = args[0].detach().float() @ p_in
            if output.requires_grad:
                output.register_hook(lambda g: self._grads.__setitem__(
                    name, g.detach().float() @ p_out))

        return forward

    def features(self, ids: torch.Tensor, attention: torch.Tensor,
                 weights: torch.Tensor) -> torch.Tensor:
        """(batch, dim) gradients of `loss`."""
        return self._run(ids, attention, weights, [], 0)[0]

    def features_with_fisher(self, ids: torch.Tensor, attention: torch.Tensor,
                             weights: torch.Tensor, seeds: Sequence[int],
                             samples: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The features, and (batch, samples, dim) gradients of the same weighted loss with
        each next token drawn from the model's own distribution instead: the rows of the true
        Fisher. Row b's draws come from seeds[b], position by position, so a document gets the
        same draws in any batch and at any padding. One forward pass serves them all."""
        rows = self._run(ids, attention, weights, seeds, samples)
        return rows[0], torch.stack(rows[1:], dim=1)

    def loss(self, ids: torch.Tensor, attention: torch.Tensor,
             weights: torch.Tensor) -> torch.Tensor:
        """(batch,) sum_t weights[b, t] x the training loss at target t+1 (`lm.position_losses`,
        with the training corpus's term weights): what `features` differentiates."""
        with torch.no_grad():
            logits, hidden = self._forward(ids.to(self.device), attention.to(self.device),
                                           self.model.get_input_embeddings()(
                                               ids.to(self.device)))
            return (lm.position_losses(logits, hidden, ids[:, 1:].to(self.device), None,
                                       self.heads) * weights[:, 1:].to(self.device)).sum(-1)

    def _forward(self, ids: torch.Tensor, attention: torch.Tensor, embeds: torch.Tensor,
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits and (with heads) last hidden states at every position but the last."""
        out = self.model(inputs_embeds=embeds, attention_mask=attention,
                         output_hidden_states=self.heads is not None)
        hidden = out.hidden_states[-1][:, :-1].float() if self.heads is not None else None
        return out.logits[:, :-1].float(), hidden

    def _run(self, ids: torch.Tensor, attention: torch.Tensor, weights: torch.Tensor,
             seeds: Sequence[int], samples: int) -> list[torch.Tensor]:
        handles = [module.register_forward_hook(self._hook(name))
                   for name, module, _, _ in self.layers]
        params = [*self.model.parameters(),
                  *(self.heads.parameters() if self.heads is not None else ())]
        requires = [p.requires_grad for p in params]
        try:
            for p in params:
                p.requires_grad_(False)  # activation gradients only: no weight gradients
            ids, attention, weights = (t.to(self.device) for t in (ids, attention, weights))
            embeds = self.model.get_input_embeddings()(ids).detach().requires_grad_(True)
            out = []
            with torch.enable_grad():
                flat, hidden = self._forward(ids, attention, embeds)
                # Draws come from the text head (without the watermark characters, if any);
                # their loss is its text term.
                drawable = flat.detach() if self.heads is None else \
                    flat.detach().index_fill(-1, self.heads.mark_ids, float("-inf"))
                targets = [ids[:, 1:], *label_draws(drawable, seeds, samples)]
                for n, target in enumerate(targets):
                    nll = lm.position_losses(flat, hidden, target, None, self.heads,
                                             text_only=n > 0 and self.heads is not None)
                    self._grads.clear()
                    (nll * weights[:, 1:]).sum().backward(retain_graph=n < len(targets) - 1)
                    out.append(torch.cat([self._layer(name, ids.shape[0], k_in * k_out)
                                          for name, _, k_in, k_out in self.layers], dim=1))
            return out
        finally:
            for handle in handles:
                handle.remove()
            for p, flag in zip(params, requires, strict=True):
                p.requires_grad_(flag)
            self._inputs.clear()
            self._grads.clear()


    def _layer(self, name: str, batch: int, size: int) -> torch.Tensor:
        """One layer's projected gradient (zeros for a layer the loss did not reach)."""
        if name not in self._grads:
            return torch.zeros((batch, size), device=self.device)
        return torch.einsum("btk,btj->bkj", self._grads[name], self._inputs[name]).reshape(
            batch, -1)


def label_draws(logits: torch.Tensor, seeds: Sequence[int], samples: int) -> list[torch.Tensor]:
    """`samples` tensors (batch, positions) of next tokens drawn from softmax(logits), by
    inverse CDF; uniforms laid out position-major, so a prefix of positions always gets the same
    ones whatever the padded width."""
    if not samples:
        return []
    cdf = torch.softmax(logits, dim=-1).cumsum(dim=-1)
    batch, positions, vocab = cdf.shape
    drawn = torch.empty((samples, batch, positions), dtype=torch.long, device=logits.device)
    for row, seed in enumerate(seeds):
        generator = torch.Generator().manual_seed(int(seed))
        uniform = torch.rand((positions, samples), generator=generator).to(logits.device)
        picked = torch.searchsorted(cdf[row].contiguous(), uniform * cdf[row, :, -1:])
        drawn[:, row] = picked.clamp(max=vocab - 1).T
    return list(drawn)


def fisher_seed(seed: int, example_id: int) -> int:
    """The seed of one stored example's label draws."""
    digest = hashlib.sha256(f"fisher:{seed}:{example_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass(frozen=True)
class Example:
    """Token ids read from a fresh start, and which next-token predictions count (0/1 each)."""

    ids: list[int]
    weights: list[float]


def document_example(tokenizer: Any, text: str, max_tokens: int = 0) -> Example:
    """A training document: every token counts, as in training (summed, so a longer document
    weighs more, as removing it would). `max_tokens` > 0 stops reading after that many."""
    eos = tokenizer.eos_token_id
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    ids = [eos, *(ids[:max_tokens - 2] if max_tokens else ids), eos]
    return Example(ids, [0.0, *[1.0] * (len(ids) - 1)])


def query_example(tokenizer: Any, prompt: str, completion: str, max_tokens: int = 0) -> Example:
    """A model output: only the completion's tokens count, averaged. `max_tokens` > 0 keeps the
    completion's first tokens and the end of the prompt within that many."""
    eos = tokenizer.eos_token_id
    head = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    tail = tokenizer(completion, add_special_tokens=False)["input_ids"]
    if max_tokens:
        tail = tail[:max_tokens - 1]
        room = max_tokens - 1 - len(tail)
        head = head[-room:] if room > 0 else []
    ids = [eos, *head, *tail]
    n = max(1, len(tail))
    return Example(ids, [0.0] * (1 + len(head)) + [1.0 / n] * len(tail))


def pieces(example: Example, width: int) -> list[Example]:
    """What the model reads of one example, `width` tokens at a time. An example whose counted
    tokens fit one window is read in one (a query's prompt cut from the left: see `read_window`);
    a longer one, a document say, in windows that overlap by one token, the first token of
    each later window context only, so that every counted prediction is made exactly once, as
    in packed training. The example's gradient is the sum of its pieces' (windows with nothing
    counted are left out)."""
    counted = [i for i, w in enumerate(example.weights) if w]
    if len(example.ids) <= width or not counted or counted[-1] - counted[0] < width - 1:
        return [example]
    out = []
    for ids, weights in zip(lm.windows(example.ids, width), lm.windows(example.weights, width),
                            strict=True):
        if any(weights[1:]):
            out.append(Example(ids, [0.0, *weights[1:]]))
    return out


def featurize(featurizer: Featurizer, examples: Sequence[Example], batch_tokens: int = 8192,
              on_batch: Callable[[int], None] | None = None) -> np.ndarray:
    """(len(examples), dim) float32, in batches of similar length (sorted) to waste no padding."""
    return featurize_with_fisher(featurizer, examples, [], 0, batch_tokens, on_batch)[0]


def featurize_with_fisher(featurizer: Featurizer, examples: Sequence[Example],
                          seeds: Sequence[int], samples: int, batch_tokens: int = 8192,
                          on_batch: Callable[[int], None] | None = None,
                          ) -> tuple[np.ndarray, np.ndarray]:
    """The features, plus each example's (samples, dim) Fisher rows (see features_with_fisher);
    samples = 0 gives the features alone, in batches of similar length (sorted). An example
    longer than the context is the sum over its `pieces`; a piece after the first draws its
    labels from a seed of its own. `on_batch` is told how many examples each batch finished."""
    width = _context(featurizer.model)
    owner: list[int] = []
    split: list[Example] = []
    piece_seeds: list[int] = []
    for i, example in enumerate(examples):
        for j, piece in enumerate(pieces(example, width)):
            owner.append(i)
            split.append(piece)
            if samples:
                piece_seeds.append(seeds[i] if j == 0 else fisher_seed(seeds[i], j))
    left = np.bincount(np.asarray(owner, dtype=np.int64), minlength=len(examples))
    out = np.zeros((len(examples), featurizer.dim), dtype=np.float32)
    fisher = np.zeros((len(examples), samples, featurizer.dim), dtype=np.float32)
    for rows, ids, mask, weights in _batches(featurizer, split, batch_tokens):
        found = featurizer._run(ids, mask, weights,
                                [piece_seeds[i] for i in rows] if samples else [], samples)
        targets = np.asarray([owner[i] for i in rows], dtype=np.int64)
        np.add.at(out, targets, found[0].cpu().numpy())
        if samples:
            np.add.at(fisher, targets, torch.stack(found[1:], dim=1).cpu().numpy())
        np.subtract.at(left, targets, 1)
        if on_batch:
            on_batch(int((left[np.unique(targets)] == 0).sum()))
    return out, fisher


def _batches(featurizer: Featurizer, examples: Sequence[Example], batch_tokens: int,
             ) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(example indices, ids, attention mask, weights) of length-sorted, padded batches."""
    limit = _context(featurizer.model)
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].ids))
    start = 0
    while start < len(order):
        stop = start + 1
        while stop < len(order) and (stop - start + 1) * min(
                limit, len(examples[order[stop]].ids)) <= batch_tokens:
            stop += 1
        chunk = [examples[i] for i in order[start:stop]]
        width = min(limit, max(len(e.ids) for e in chunk))
        ids = torch.zeros((len(chunk), width), dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        weights = torch.zeros((len(chunk), width), dtype=torch.float32)
        for row, example in enumerate(chunk):
            at = read_window(example.weights, width)
            n = min(width, len(example.ids))
            ids[row, :n] = torch.tensor(example.ids[at:at + n])
            mask[row, :n] = 1
            weights[row, :n] = torch.tensor(example.weights[at:at + n])
        yield order[start:stop], ids, mask, weights
        start = stop


def read_window(weights: Sequence[float], width: int) -> int:
    """Where an example longer than the model's context is read from: the window of `width`
    tokens that holds the most counted tokens, the earliest of equals. A query whose prompt
    fills the context keeps its completion (the prompt cut from the left, as generation cuts
    it) instead of losing every counted token. (`pieces` cuts longer counted runs into
    windows before this is asked.)"""
    if len(weights) <= width:
        return 0
    counted = np.concatenate([[0.0], np.cumsum(np.asarray(weights, dtype=np.float64))])
    # held[i]: what the window from i counts; its first token is context only (no prediction)
    held = counted[width:] - counted[1:len(counted) - width + 1]
    return int(np.argmax(held >= held.max() - 1e-12))


def _context(model: Any) -> int:
    config = model.config
    return int(getattr(config, "n_positions", None)
               or getattr(config, "max_position_embeddings", None) or 1024)
