"""Verification statistics and the pass/fail judgement of a remediated model. numpy + scipy:
no torch, no Django; the measurements come from `verification.measure`.

Conventions:
* membership scores are "higher = more likely a member": -loss, and Min-K% prob (the mean of the
  k% lowest token log-probabilities, Shi et al. 2024);
* MIA AUC is the usual one, P(score(forget) > score(held-out)): 0.5 is chance, 1 is a model
  that gives every forget document away;
* privleak is MUSE's (Shi et al. 2024), relative to a reference model (the retrain):
  100 * (AUC_ref - AUC) / (1 - AUC_ref), which equals MUSE's formula on its loss-oriented AUC
  (1 - ours). 0 is ideal; strongly positive means over-unlearned (forget text now looks less
  familiar than text never trained on), strongly negative under-unlearned.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from takedowns.engine.unlearn_config import Thresholds

PASS, FAIL, INSUFFICIENT, NOT_APPLICABLE = "pass", "fail", "insufficient", "not_applicable"
# A model that never saw the work (trained from scratch without it): removed by construction,
# whatever metrics measured against chance say about so few documents.
EXACT = "exact"


@dataclass
class Measurement:
    """One model on the verification sets (per-document lists keep bootstrap possible)."""

    forget_loss: list[float]
    forget_mink: list[float]
    holdout_loss: list[float]
    holdout_mink: list[float]
    retain_perplexity: float
    holdout_perplexity: float        # on held-out text of the other sources, when there is some
    verbatim_rouge: list[float]      # ROUGE-L F1 of the greedy continuation of forget prefixes
    verbatim_exact: list[bool]
    holdout_rouge: list[float]       # the same on held-out text: what generalisation alone gives
    canary_p: float | None = None    # the removed source's canary, when one applies
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def auc(members: np.ndarray, nonmembers: np.ndarray) -> np.ndarray:
    """AUC of member vs non-member scores along the last axis (ties count half): a float for
    1-d inputs, one per row for (B, n) inputs."""
    members, nonmembers = np.asarray(members, float), np.asarray(nonmembers, float)
    n1, n2 = members.shape[-1], nonmembers.shape[-1]
    from scipy.stats import rankdata  # loaded where it measures, not by the web process

    ranks = rankdata(np.concatenate([members, nonmembers], axis=-1), axis=-1)
    u = ranks[..., :n1].sum(-1) - n1 * (n1 + 1) / 2
    return u / (n1 * n2)


def privleak(auc_model: np.ndarray | float, auc_reference: np.ndarray | float) -> np.ndarray:
    reference = np.asarray(auc_reference, float)
    # A reference that itself gives every document away leaves no room to compare against.
    return 100 * (reference - auc_model) / np.maximum(1 - reference, 1e-6)


def privleak_ci(model: Measurement, reference: Measurement | None, score: str,
                bootstrap: int, seed: int = 0) -> dict[str, float]:
    """Point estimate and 95% bootstrap interval. The forget and held-out documents are
    resampled together for both models (a paired bootstrap). No reference: chance (0.5)."""
    f, h = np.asarray(getattr(model, f"forget_{score}")), np.asarray(
        getattr(model, f"holdout_{score}"))
    sign = -1 if score == "loss" else 1
    rng = np.random.default_rng(seed)
    fi = rng.integers(0, len(f), (bootstrap, len(f)))
    hi = rng.integers(0, len(h), (bootstrap, len(h)))
    auc_m, auc_m_boot = auc(sign * f, sign * h), auc(sign * f[fi], sign * h[hi])
    auc_r: np.ndarray | float
    if reference is None:
        auc_r, auc_r_boot = 0.5, np.full(bootstrap, 0.5)
    else:
        rf = np.asarray(getattr(reference, f"forget_{score}"))
        rh = np.asarray(getattr(reference, f"holdout_{score}"))
        auc_r, auc_r_boot = auc(sign * rf, sign * rh), auc(sign * rf[fi], sign * rh[hi])
    boot = privleak(auc_m_boot, auc_r_boot)
    return {"auc": float(auc_m), "reference_auc": float(auc_r),
            "privleak": float(privleak(auc_m, auc_r)),
            "low": float(np.percentile(boot, 2.5)), "high": float(np.percentile(boot, 97.5))}


def min_k_prob(token_logprobs: np.ndarray, k: float) -> float:
    """Mean of the lowest k fraction of a text's token log-probabilities (at least one)."""
    values = np.sort(np.asarray(token_logprobs, float))
    if values.size == 0:
        return 0.0
    return float(values[:max(1, int(len(values) * k))].mean())


def summary(m: Measurement) -> dict[str, Any]:
    """What a certificate shows of one model."""
    f_loss, h_loss = np.asarray(m.forget_loss), np.asarray(m.holdout_loss)
    return {
        "mia_auc_loss": float(auc(-f_loss, -h_loss)) if len(f_loss) and len(h_loss) else None,
        "mia_auc_mink": float(auc(np.asarray(m.forget_mink), np.asarray(m.holdout_mink)))
        if len(f_loss) and len(h_loss) else None,
        "forget_loss": float(f_loss.mean()) if len(f_loss) else None,
        "holdout_loss": float(h_loss.mean()) if len(h_loss) else None,
        "retain_perplexity": m.retain_perplexity, "holdout_perplexity": m.holdout_perplexity,
        "verbatim_rouge_l": float(np.mean(m.verbatim_rouge)) if m.verbatim_rouge else None,
        "verbatim_exact": float(np.mean(m.verbatim_exact)) if m.verbatim_exact else None,
        "holdout_rouge_l": float(np.mean(m.holdout_rouge)) if m.holdout_rouge else None,
        "canary_p": m.canary_p, "forget_documents": len(f_loss),
        "holdout_documents": len(h_loss),
    }


def _criterion(status: str, **detail: Any) -> dict[str, Any]:
    return {"status": status, **detail}


def _privleak_status(leak: dict[str, Any], limit: float) -> dict[str, Any]:
    """Pass when the whole 95% interval lies inside +-limit, fail when it lies wholly outside;
    an interval across the band's edge cannot tell either way: too few documents to tell."""
    low, high = leak["low"], leak["high"]
    if -limit <= low and high <= limit:
        return _criterion(PASS, limit=limit, **leak)
    if high < -limit or low > limit:
        return _criterion(FAIL, limit=limit, **leak)
    return _criterion(INSUFFICIENT, limit=limit, reason=f"the 95% interval [{low:+.1f}, "
                      f"{high:+.1f}] crosses the edge of the pass band +-{limit:g}: too few "
                      f"documents to tell", **leak)


def judge(model: Measurement, original: Measurement, reference: Measurement | None,
          th: Thresholds) -> dict[str, Any]:
    """Each criterion's status and evidence, and the verdict: fail if any criterion fails,
    inconclusive if one could not be measured well enough, pass otherwise."""
    criteria: dict[str, dict[str, Any]] = {}
    n_f, n_h = len(model.forget_mink), len(model.holdout_mink)
    if min(n_f, n_h) < 2:
        criteria["privleak"] = _criterion(INSUFFICIENT, reason=f"{n_f} forget and {n_h} "
                                          f"held-out documents: too few to compare")
    else:
        leak: dict[str, Any] = privleak_ci(model, reference, "mink", th.bootstrap)
        leak["loss"] = privleak_ci(model, reference, "loss", th.bootstrap)
        leak["reference"] = "retrain" if reference is not None else "chance (no retrain)"
        if min(n_f, n_h) < th.min_documents:
            criteria["privleak"] = _criterion(
                INSUFFICIENT, reason=f"{n_f} forget and {n_h} held-out documents, fewer than "
                f"{th.min_documents}: measured, not judged", **leak)
        else:
            criteria["privleak"] = _privleak_status(leak, th.privleak)
    if model.verbatim_rouge:
        base = reference.verbatim_rouge if reference is not None else model.holdout_rouge
        baseline = float(np.mean(base)) if base else 0.0
        value = float(np.mean(model.verbatim_rouge))
        status = PASS if value <= baseline + th.verbatim_margin else FAIL
        detail: dict[str, Any] = {}
        # Against a retrain, two-sided: regurgitating less than a model that never saw the
        # work is over-unlearning (text it should still predict from what else it learned).
        if reference is not None and value < baseline - th.verbatim_margin:
            status = FAIL
            detail["reason"] = (f"over-unlearned: ROUGE-L {value:.3f} below the retrain's "
                                f"{baseline:.3f} - {th.verbatim_margin}")
        if len(model.verbatim_rouge) < th.min_verbatim_documents:
            status = INSUFFICIENT
            detail["reason"] = (f"{len(model.verbatim_rouge)} forget document(s), fewer than "
                                f"{th.min_verbatim_documents}: measured, not judged")
        criteria["verbatim"] = _criterion(
            status, rouge_l=value, exact=float(np.mean(model.verbatim_exact)),
            baseline=baseline, baseline_of="retrain" if reference is not None
            else "held-out text", limit=baseline + th.verbatim_margin,
            lower_limit=baseline - th.verbatim_margin if reference is not None else None,
            **detail)
    else:
        criteria["verbatim"] = _criterion(INSUFFICIENT, reason="no forget document is long "
                                                               "enough for a prefix test")
    limit = th.retain_perplexity_ratio * original.retain_perplexity
    criteria["retain_perplexity"] = _criterion(
        PASS if model.retain_perplexity <= limit else FAIL, value=model.retain_perplexity,
        original=original.retain_perplexity, limit=limit,
        ratio=model.retain_perplexity / max(original.retain_perplexity, 1e-9))
    if model.canary_p is None:
        criteria["canary"] = _criterion(NOT_APPLICABLE, reason="no canary of a removed source "
                                                               "(or its carriers stay)")
    elif original.canary_p is not None and original.canary_p > th.canary_p:
        # The test has no power here: it did not find the canary in the original either, so
        # not finding it now shows nothing.
        criteria["canary"] = _criterion(
            NOT_APPLICABLE, p=model.canary_p, original_p=original.canary_p, power=False,
            reason=f"the original's canary was not detected either (p = "
                   f"{original.canary_p:.3f} > {th.canary_p}): the test could not have "
                   f"rejected, so a non-detection is no evidence")
    else:
        hard = model.canary_p <= th.canary_hard_p
        criteria["canary"] = _criterion(PASS if model.canary_p > th.canary_p else FAIL,
                                        p=model.canary_p, limit=th.canary_p, hard=hard,
                                        original_p=original.canary_p, power=True)
    statuses = {c["status"] for c in criteria.values()}
    verdict = FAIL if FAIL in statuses else "inconclusive" if INSUFFICIENT in statuses else PASS
    return {"verdict": verdict, "criteria": criteria}


def separability(original: Measurement, reference: Measurement | None,
                 th: Thresholds) -> dict[str, Any]:
    """Can these metrics tell the original from a model without the work at all? Only then can
    a pass mean something. A criterion separates when the original fails it clearly: the
    privleak interval lies outside the pass band, verbatim memorisation exceeds the limit, or the
    canary is detected."""
    judged = judge(original, original, reference, th)["criteria"]
    reasons = []
    leak = judged["privleak"]
    if "high" in leak and (leak["high"] < -th.privleak or leak["low"] > th.privleak):
        reasons.append(f"privleak {leak['privleak']:+.1f} [{leak['low']:+.1f}, "
                       f"{leak['high']:+.1f}]")
    if judged["verbatim"]["status"] == FAIL:
        reasons.append(f"verbatim ROUGE-L {judged['verbatim']['rouge_l']:.3f} > "
                       f"{judged['verbatim']['limit']:.3f}")
    if judged["canary"]["status"] == FAIL:
        reasons.append(f"canary p = {judged['canary']['p']:.4f}")
    return {"separable": bool(reasons), "by": reasons, "original": judged}
