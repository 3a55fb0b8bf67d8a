"""Options of the gradient featurizer. No torch: the web process validates them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from provenance.engine.options import reject_unknown


@dataclass(frozen=True)
class FeatureSpec:
    max_dim: int = 4096      # numbers per example, over all layers
    k_max: int = 16          # at most k_max x k_max per layer
    seed: int = 0            # seeds the projections and the label draws: same seed, same index
    # The preconditioner's Fisher: "sampled" draws each document's next tokens from the model's
    # own distribution (the true Fisher, an estimate of the Gauss-Newton Hessian); "empirical"
    # uses the training tokens (the stored gradients themselves). On held-out fact worlds the
    # sampled Fisher's LDS over 6 checkpoints is 0.61 against the empirical one's 0.51
    # (bench/attribution_eval.py, alpha 0.5).
    fisher: str = "sampled"
    # Label draws per document for the sampled Fisher; 0 = enough that documents x draws >=
    # 2 x max_dim (so the estimate has full rank), at most 16: one draw once a corpus is large.
    fisher_samples: int = 0
    # lambda as a fraction of the Fisher's mean eigenvalue; with the sampled Fisher the tuning
    # world's LDS is flat from 0.001 to 0.003 (0.746 at 3 checkpoints, both) and falls beyond
    # (0.01: 0.739, 0.1: 0.688); 1.0 suits the empirical one
    damping: float = 0.003
    # A document is featurized over all its tokens, in context-sized windows whose gradients
    # are summed; a positive value stops reading a document after that many tokens (a bound on
    # the cost of very long documents). 0: no bound.
    max_tokens: int = 0

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
        if spec.fisher not in ("sampled", "empirical"):
            raise ValueError("fisher must be 'sampled' or 'empirical'")
        if spec.max_tokens and not 16 <= spec.max_tokens <= 10_000_000:
            raise ValueError("max_tokens must be 0 (every token) or between 16 and 10000000")
        if not 0 <= spec.fisher_samples <= 64:
            raise ValueError("fisher_samples must be between 0 (automatic) and 64")
        return spec

    def samples_for(self, documents: int) -> int:
        """Label draws per document for a corpus of this size (0: the empirical Fisher)."""
        if self.fisher == "empirical":
            return 0
        if self.fisher_samples:
            return self.fisher_samples
        return min(16, max(1, -(-2 * self.max_dim // max(1, documents))))

    def resolved(self, documents: int) -> FeatureSpec:
        """The spec with the automatic choices made, as an index records it."""
        return replace(self, fisher_samples=self.samples_for(documents))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
