"""Options of the gradient featurizer. No torch: the web process validates them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from provenance.engine.options import reject_unknown


@dataclass(frozen=True)
class FeatureSpec:
    max_dim: int = 4096      # numbers per example, over all layers
    k_max: int = 16          # at most k_max x k_max per layer
    seed: int = 0            # seeds the projections: same seed, same features
    # lambda as a fraction of the Fisher's mean eigenvalue; 1.0 did best on the fact world
    # (bench/attribution_eval.py: higher LDS and strict recall than 0.01-0.3)
    damping: float = 1.0
    max_tokens: int = 2048   # a document longer than this is featurized from its first tokens

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        reject_unknown(cls, data, "influence")
        spec = cls(**data)
        if not 16 <= spec.max_dim <= 65536:
            raise ValueError("max_dim must be between 16 and 65536")
        if not 1 <= spec.k_max <= 128:
            raise ValueError("k_max must be between 1 and 128")
        if not 0 < spec.damping <= 100:
            raise ValueError("damping must be in (0, 100]")
        return spec

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
