"""Gradient influence in the TRAK / LoGra family. Pure torch + numpy: no Django, no settings.

* Featurize: per-example gradients of every Linear (and GPT-2 Conv1D) layer, projected the LoGra
  way. A layer's weight gradient for one example is sum_t delta_t x_t^T (output gradient times
  input); with seeded Gaussian projections P_in (d_in x k_in) and P_out (d_out x k_out), its
  projection P_out^T G P_in equals sum_t (P_out^T delta_t)(P_in^T x_t)^T, so only the two small
  projections are formed, from a forward hook and a gradient hook. The weights never get a
  gradient: backward runs through the activations alone, which is what keeps featurizing near
  the speed of training (bench/attribution_perf.py). k_in and k_out shrink with the number of
  layers so that one example is at most `max_dim` numbers.
* Precondition: the projected Fisher F = (1/N) sum_i mean_s f_is f_is^T, where f_is is the
  gradient of example i's loss with its next tokens drawn from the model (the true Fisher, whose
  expectation is the Gauss-Newton Hessian), or f_i = g_i (the empirical Fisher, from the
  training tokens); damped (F + lambda I, lambda = damping x mean eigenvalue), factorised
  (Cholesky). The draws are seeded per example, so a rebuild draws the same tokens.
* Score: g_q^T (F + lambda I)^-1 g_i for every stored example, as blocked matrix products over an
  fp16 memory-mapped store; an ensemble over checkpoints sums the per-checkpoint scores.
* Takedowns: removed rows are masked at query time and their Fisher rows (kept in the store
  for this) taken out of the Fisher sum (a downdate), so no rebuild is needed.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attribution.engine.features import FeatureSpec
from provenance.engine import lm

FORMAT = 1
__all__ = ["FeatureSpec"]


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
                targets = [ids[:, 1:], *_draws(drawable, seeds, samples)]
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


def _draws(logits: torch.Tensor, seeds: Sequence[int], samples: int) -> list[torch.Tensor]:
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
    tokens fit one window is read in one (a query's prompt cut from the left: see `_window`);
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
            at = _window(example.weights, width)
            n = min(width, len(example.ids))
            ids[row, :n] = torch.tensor(example.ids[at:at + n])
            mask[row, :n] = 1
            weights[row, :n] = torch.tensor(example.weights[at:at + n])
        yield order[start:stop], ids, mask, weights
        start = stop


def _window(weights: Sequence[float], width: int) -> int:
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


# --- the store -------------------------------------------------------------------------------


@dataclass
class Shard:
    ids: np.ndarray        # (n,) int64 example ids (document ids)
    vectors: np.ndarray    # (n, dim) float16, memory-mapped when opened
    # (n, samples, dim) float16 rows of the sampled Fisher (None: the Fisher is the vectors'
    # own), read only to take removed examples out of the Fisher
    fisher_rows: np.ndarray | None = None


def fisher_contribution(rows: np.ndarray) -> np.ndarray:
    """sum over examples of the mean over draws of f f^T, from (n, dim) or (n, samples, dim)
    rows, computed from their fp16 values (as stored) so a later downdate is exact."""
    if rows.ndim == 2:
        rows = rows[:, None, :]
    wide = rows.astype(np.float16).astype(np.float64).reshape(-1, rows.shape[-1])
    return (wide.T @ wide) / max(1, rows.shape[1])


def shard_save(folder: Path, name: str, ids: np.ndarray, vectors: np.ndarray,
               fisher_rows: np.ndarray | None = None) -> dict[str, Any]:
    """One shard: ids, fp16 vectors, its Fisher contribution (fp64) and, for a sampled Fisher,
    the fp16 rows it came from; written under temporary names and renamed, so a killed writer
    leaves no half shard."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays: list[tuple[str, np.ndarray]] = [
        ("ids", ids.astype(np.int64)), ("vectors", vectors.astype(np.float16)),
        ("fisher", fisher_contribution(vectors if fisher_rows is None else fisher_rows))]
    if fisher_rows is not None:
        arrays.append(("fisher_rows", fisher_rows.astype(np.float16)))
    for suffix, array in arrays:
        tmp = folder / f"{name}.{suffix}.tmp.npy"
        np.save(tmp, array)
        tmp.replace(folder / f"{name}.{suffix}.npy")
    return {"name": name, "rows": len(ids)}


@dataclass
class Preconditioner:
    fisher_sum: np.ndarray  # (dim, dim) float64, sum over the kept rows
    count: int
    damping: float

    def solve(self, queries: np.ndarray) -> np.ndarray:
        """(F + lambda I)^-1 q for each row q, F = fisher_sum / count."""
        dim = self.fisher_sum.shape[0]
        fisher = self.fisher_sum / max(1, self.count)
        lam = self.damping * max(float(np.trace(fisher)) / dim, 1e-12)
        factor = torch.linalg.cholesky(torch.from_numpy(fisher + lam * np.eye(dim)))
        solved = torch.cholesky_solve(torch.from_numpy(queries.astype(np.float64)).T, factor)
        return solved.T.numpy()

    def downdate(self, rows: np.ndarray) -> None:
        """Take examples out: their (n, dim) or (n, samples, dim) Fisher rows."""
        self.fisher_sum = self.fisher_sum - fisher_contribution(rows)
        self.count -= len(rows)


@dataclass
class GradientStore:
    """The featurized training set of one checkpoint: shards + preconditioner + meta."""

    folder: Path
    shards: list[Shard]
    preconditioner: Preconditioner
    meta: dict[str, Any]

    @classmethod
    def finalize(cls, folder: Path, names: Iterable[str], meta: dict[str, Any],
                 damping: float) -> GradientStore:
        """Join the shards' Fisher sums into the store's preconditioner and write meta.json."""
        names = sorted(names)
        dim = int(meta["dim"])
        total, count = np.zeros((dim, dim)), 0
        for name in names:
            total += np.load(folder / f"{name}.fisher.npy")
            count += len(np.load(folder / f"{name}.ids.npy", mmap_mode="r"))
        np.save(folder / "fisher.npy", total)
        full = {**meta, "format": FORMAT, "shards": names, "rows": count, "damping": damping}
        tmp = folder / "meta.json.tmp"
        tmp.write_text(json.dumps(full, sort_keys=True))
        tmp.replace(folder / "meta.json")
        return cls.open(folder)

    @classmethod
    def open(cls, folder: Path) -> GradientStore:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{folder}: gradient store format {meta.get('format')}")
        shards = [Shard(np.load(folder / f"{n}.ids.npy"),
                        np.load(folder / f"{n}.vectors.npy", mmap_mode="r"),
                        np.load(folder / f"{n}.fisher_rows.npy", mmap_mode="r")
                        if (folder / f"{n}.fisher_rows.npy").exists() else None)
                  for n in meta["shards"]]
        pre = Preconditioner(np.load(folder / "fisher.npy"), int(meta["rows"]),
                             float(meta["damping"]))
        return cls(folder, shards, pre, meta)

    def fisher_rows(self, ids: Iterable[int]) -> np.ndarray:
        """(n, samples, dim): what these examples added to the Fisher."""
        wanted = np.fromiter(ids, dtype=np.int64)
        out = []
        for shard in self.shards:
            keep = np.isin(shard.ids, wanted)
            source = shard.vectors[:, None, :] if shard.fisher_rows is None else shard.fisher_rows
            out.append(np.asarray(source[keep]))
        return np.concatenate(out) if out else np.zeros((0, 1, int(self.meta["dim"])))

    def without(self, removed: Iterable[int]) -> GradientStore:
        """The same store with removed ids masked out of scoring and out of the Fisher."""
        removed = np.fromiter(removed, dtype=np.int64)
        pre = Preconditioner(self.preconditioner.fisher_sum.copy(), self.preconditioner.count,
                             self.preconditioner.damping)
        if len(removed):
            pre.downdate(self.fisher_rows(removed.tolist()))
        masked = GradientStore(self.folder, self.shards, pre, {**self.meta})
        masked.meta["removed"] = removed
        return masked


@dataclass(frozen=True)
class Ranked:
    ids: np.ndarray     # (k,) example ids, best first
    scores: np.ndarray  # (k,) higher = more helpful to the query (lowers its loss more)


def score_all(stores: Sequence[GradientStore], queries: Sequence[np.ndarray],
              block_rows: int = 2048, precondition: bool = True) -> tuple[np.ndarray,
                                                                          np.ndarray]:
    """Scores of every stored example for each query, summed over an ensemble of stores (one
    per checkpoint, each with its own query features). Returns (ids, scores (n_queries, n)).

    Blocks are small enough that their fp32 copy stays in cache while it is multiplied, torch
    converts fp16 on every core, and the block buffers are allocated once (fresh ones cost a
    page fault per 4 KB): see bench/attribution_perf.py for the speed against plain numpy."""
    ids: np.ndarray | None = None
    total: np.ndarray | None = None
    for store, query in zip(stores, queries, strict=True):
        q = np.atleast_2d(query)
        solved = store.preconditioner.solve(q) if precondition else q.astype(np.float64)
        solved32 = torch.from_numpy(solved.astype(np.float32).T.copy())  # (dim, n_queries)
        n = sum(len(shard.ids) for shard in store.shards)
        scores_t = np.empty((n, len(q)), dtype=np.float32)
        these_ids = np.concatenate([shard.ids for shard in store.shards]) if n else \
            np.zeros(0, np.int64)
        half = np.empty((block_rows, solved32.shape[0]), dtype=np.float16)
        wide = torch.empty(half.shape, dtype=torch.float32)
        at = 0
        for shard in store.shards:
            for start in range(0, len(shard.ids), block_rows):
                m = min(block_rows, len(shard.ids) - start)
                np.copyto(half[:m], shard.vectors[start:start + m])
                wide[:m].copy_(torch.from_numpy(half[:m]))
                torch.matmul(wide[:m], solved32, out=torch.from_numpy(scores_t[at:at + m]))
                at += m
        scores = scores_t.T
        order = np.argsort(these_ids, kind="stable")
        these_ids, scores = these_ids[order], scores[:, order]
        if ids is None:
            ids, total = these_ids, scores.astype(np.float64)
        elif not np.array_equal(ids, these_ids):
            raise ValueError("the ensemble's stores hold different examples")
        else:
            total = total + scores  # type: ignore[operator]
    if ids is None or total is None:
        raise ValueError("no gradient store to score against")
    removed = stores[0].meta.get("removed")
    if removed is not None and len(removed):
        keep = ~np.isin(ids, removed)
        ids, total = ids[keep], total[:, keep]
    return ids, total


def rank(stores: Sequence[GradientStore], query: Sequence[np.ndarray], k: int,
         precondition: bool = True) -> Ranked:
    """The k stored examples with the highest scores for one query (one feature row per
    store)."""
    ids, scores = score_all(stores, [np.atleast_2d(q) for q in query],
                            precondition=precondition)
    row = scores[0]
    k = min(k, len(row))
    top = np.argpartition(-row, k - 1)[:k] if k else np.zeros(0, dtype=np.int64)
    top = top[np.argsort(-row[top], kind="stable")]
    return Ranked(ids[top], row[top])
