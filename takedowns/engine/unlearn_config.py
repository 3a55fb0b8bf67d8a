"""Model-remediation options and verification thresholds. No torch: the web process validates a
request with these before a worker loads any model."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from provenance.engine.options import check_types

METHODS = ("retrain", "graddiff", "npo", "simnpo", "output_filter")
APPROXIMATE = ("graddiff", "npo", "simnpo")


@dataclass
class UnlearnConfig:
    """Gradient difference, NPO (Zhang et al. 2024, "Negative Preference Optimization") and
    SimNPO (Fan et al. 2024: NPO without the reference model, on the length-normalised loss),
    each with a retain term. A candidate model is saved every `eval_every` steps; verification picks
    the first candidate that meets every criterion, never simply the last one."""

    steps: int = 60
    learning_rate: float = 1e-3
    batch_size: int = 8
    beta: float = 0.1           # NPO's inverse temperature
    # SimNPO's inverse temperature and margin on the per-token loss (the paper's TOFU setting)
    simnpo_beta: float = 2.5
    simnpo_delta: float = 0.0
    retain_weight: float = 1.0  # weight of the retain set's next-token loss
    eval_every: int = 5
    retain_documents: int = 256  # sample of the retained data used as the retain set
    seed: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UnlearnConfig:
        check_types(cls, data, "unlearning")
        config = cls(**data)
        config.validate()
        return config

    def validate(self) -> None:
        if not 1 <= self.steps <= 10_000:
            raise ValueError("steps must be between 1 and 10000")
        if not 1 <= self.eval_every <= self.steps:
            raise ValueError("eval_every must be between 1 and steps")
        if self.steps // self.eval_every > 40:
            raise ValueError("at most 40 candidates: raise eval_every")
        if not 0 < self.learning_rate < 1:
            raise ValueError("learning_rate must be in (0, 1)")
        if self.batch_size <= 0 or self.retain_documents <= 0:
            raise ValueError("batch_size and retain_documents must be positive")
        if not 0 < self.beta <= 10 or not 0 < self.simnpo_beta <= 10:
            raise ValueError("beta and simnpo_beta must be in (0, 10]")
        if not 0 <= self.simnpo_delta <= 20:
            raise ValueError("simnpo_delta must be in [0, 20]")
        if not 0 <= self.retain_weight <= 100:
            raise ValueError("retain_weight must be in [0, 100]")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Thresholds:
    """When a remediated model passes. Defaults from the issue: privleak (MUSE) with its whole
    95% interval within +-15, on at least 100 forget and 100 held-out documents; the removed
    source's canary at p > 0.05 (p <= 0.01 is a hard fail), when the original's was detected;
    verbatim memorisation within 0.02 of the retrain's (at most held-out text's + 0.02 without
    one); retain perplexity at most 1.1 x the original's. Below `min_verbatim_documents` forget
    documents long enough for a prefix test, verbatim memorisation is reported but not judged
    (one document's ROUGE-L is noise)."""

    privleak: float = 15.0
    min_documents: int = 100
    min_verbatim_documents: int = 10  # fewer prefixes: ROUGE-L is measured, not judged
    canary_p: float = 0.05
    canary_hard_p: float = 0.01
    verbatim_margin: float = 0.02
    retain_perplexity_ratio: float = 1.1
    bootstrap: int = 1000
    prefix_tokens: int = 32
    continuation_tokens: int = 32
    min_k: float = 0.2

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Thresholds:
        check_types(cls, data, "verification")
        thresholds = cls(**data)
        if thresholds.min_documents < 2 or thresholds.bootstrap < 100:
            raise ValueError("min_documents must be at least 2 and bootstrap at least 100")
        if not 0 < thresholds.min_k <= 1:
            raise ValueError("min_k must be in (0, 1]")
        return thresholds

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
