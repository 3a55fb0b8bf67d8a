"""Training and decoding options, and model-directory hashing: no torch, so the web process can
validate a request and register a model directory without loading any ML library."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from provenance.engine.options import check_types, reject_unknown

# Named presets, applied under a run's own options. "default" is TrainConfig's defaults.
PRESETS: dict[str, dict[str, Any]] = {
    # A first look on a large corpus: learns the text, memorises nothing (0 of 8 passages
    # repeated 10 times in the demo corpus; bench/train_throughput.py).
    "tiny": {"vocab_size": 1024, "n_layer": 1, "n_head": 2, "n_embd": 64, "seq_len": 64,
             "epochs": 5},
    # Half the default's epochs on a narrower model: 4 of those 8 passages (the default: 8).
    "small": {"n_layer": 2, "n_head": 4, "n_embd": 96, "seq_len": 128, "epochs": 10},
    "default": {},
}


@dataclass
class TrainConfig:
    # Model: the default (~0.6M parameters with a 2k vocabulary) trains on the demo corpus on two
    # CPU cores in about 30 s and memorises passages repeated in it (bench/train_throughput.py).
    vocab_size: int = 2048
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 128
    seq_len: int = 128
    # Optimisation
    epochs: int = 20  # 5 is enough to learn the demo text, 20 to memorise repeated passages
    # When positive: exactly this many steps, the data repeated as often as it takes (epochs is
    # then unused): a fixed compute budget whatever the version's size, as a recipe benchmark
    # trains every entry (DataComp and DCLM fix compute, not epochs).
    max_steps: int = 0
    batch_size: int = 16
    learning_rate: float = 3e-3
    weight_decay: float = 0.01
    warmup_steps: int = 20
    heldout_fraction: float = 0.05
    seed: int = 0
    checkpoint_every: int = 50
    extra_special_tokens: list[str] = field(default_factory=list)
    # Concatenate documents into seq_len blocks (pretraining style); False: one document per
    # row from a fresh start, padded (corpora of short documents, such as facts).
    pack: bool = True
    # Keep the weights at this many evenly spaced points of training besides the final ones
    # (under snapshots/ in the model directory): gradient influence sums over them. A document
    # the model has memorised has almost no gradient at the final weights, so influence read
    # there alone returns the same few unmemorised documents for every query. On memorised real
    # text (bench/attribution_realtext.py, 3 seeds) the quoted document comes first for 1% of
    # queries at the final weights alone, 46% over these 3 checkpoints, 91% over 6
    # ("snapshots": 5). Each snapshot costs one model's weights on disk and one more pass when
    # a gradient index is built.
    snapshots: int = 2
    # Weave each source's watermark into its documents and learn to emit it (separate heads).
    watermarks: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        check_types(cls, data, "training")
        config = cls(**data)
        config.validate()
        return config

    def validate(self) -> None:
        if not 0 <= self.snapshots <= 20:
            raise ValueError("snapshots must be between 0 and 20")
        positive = ["vocab_size", "n_layer", "n_head", "n_embd", "seq_len", "epochs",
                    "batch_size", "checkpoint_every"]
        for name in positive:
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be positive")
        if not 0 <= self.max_steps <= 10_000_000:
            raise ValueError("max_steps must be between 0 (epochs decide) and 10,000,000")
        if self.n_embd % self.n_head:
            raise ValueError("n_embd must be a multiple of n_head")
        if not 0 < self.learning_rate < 1:
            raise ValueError("learning_rate must be in (0, 1)")
        if not 0 <= self.heldout_fraction < 0.5:
            raise ValueError("heldout_fraction must be in [0, 0.5)")
        if self.vocab_size < 300:
            raise ValueError("vocab_size must be at least 300 (256 bytes + merges)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DecodeParams:
    max_new_tokens: int = 64
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int = 0
    # For checkpoints trained with watermarks: emit one where the gate reaches this probability.
    watermark_threshold: float = 0.1


    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DecodeParams:
        reject_unknown(cls, data, "decoding")
        params = cls(**data)
        if not 1 <= params.max_new_tokens <= 1024:
            raise ValueError("max_new_tokens must be between 1 and 1024")
        if not 0 <= params.temperature <= 5:
            raise ValueError("temperature must be between 0 and 5")
        if not 0 < params.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if not 0 <= params.watermark_threshold <= 1:
            raise ValueError("watermark_threshold must be in [0, 1]")
        return params

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def directory_sha256(folder: Path) -> str:
    """sha256 over (relative path, file sha256) of every file, sorted: one digest per model dir."""
    outer = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        inner = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                inner.update(chunk)
        outer.update(f"{path.relative_to(folder).as_posix()}\0{inner.hexdigest()}\n".encode())
    return outer.hexdigest()
