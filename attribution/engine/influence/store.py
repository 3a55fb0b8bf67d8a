"""The store of featurized examples: fp16 shards, the Fisher preconditioner, masking."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = 1

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
    # ids masked out of scoring (and of the Fisher) by `without`: a takedown's documents
    removed: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

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
        return GradientStore(self.folder, self.shards, pre, {**self.meta}, removed)
