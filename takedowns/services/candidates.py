"""An unlearning run's candidates: the step chosen on the validation split, the robustness
probes (4-bit weights, relearning) it must pass, and the chosen step promoted to a checkpoint."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from core.storage import artifact_local, artifact_publish, artifact_ref
from provenance.engine.lm_config import directory_sha256
from provenance.models import ModelCheckpoint
from takedowns.engine import metrics
from takedowns.engine.unlearn_config import Thresholds
from takedowns.models import UnlearningRun
from takedowns.services.forget_sets import Sets
from takedowns.services.unlearning import run_dir

log = logging.getLogger(__name__)


PROBES = ("quantized_4bit", "relearned")
PROBE_NAMES = {"quantized_4bit": "its weights were rounded to 4 bits",
               "relearned": "a few relearning steps on a public part of the forget set"}
RELEARN_STEPS = 10


def prober(checkpoint: ModelCheckpoint, validation: Sets, test: Sets,
            original: dict[str, metrics.Measurement], retrains: dict[int, ModelCheckpoint],
            th: Thresholds, measured: Any, spent: dict[str, float]) -> Any:
    """probe(model folder, its run) -> {probe: judged}: the model rounded to 4 bits, and the
    model fine-tuned RELEARN_STEPS steps on a public part of the forget set (a quarter of the
    validation split's forget documents, never in the test split, none carrying the removed
    source's canary), each measured on the test
    split and judged against the latest retrain probed the same way (a model that never saw
    the work, given the same public part), or against chance without a retrain."""
    from takedowns.engine import probes

    # The public part holds no carrier of the canary: relearning the canary itself would
    # show nothing about the unlearning (and a retrain relearned on it "fails" too).
    secret = validation.canary[0] if validation.canary else None
    pool = [t for t in validation.forget_trained if secret is None or secret not in t] \
        or validation.forget_trained
    public = pool[:max(1, len(validation.forget_trained) // 4)]
    learning_rate = float(checkpoint.config.get("learning_rate", 1e-3))

    def made(kind: str, model_dir: str, folder: Path) -> str:
        started = time.perf_counter()
        source = artifact_local(model_dir)  # a stored key, or this host's path
        if kind == "quantized_4bit":
            probes.quantized(source, folder)
        else:
            probes.relearned(source, public, folder, steps=RELEARN_STEPS,
                             learning_rate=learning_rate)
        spent[str(folder)] = spent.get(str(folder), 0.0) + time.perf_counter() - started
        return str(folder)

    references: dict[str, metrics.Measurement | None] = {}

    def reference(kind: str) -> metrics.Measurement | None:
        if kind not in references:
            if not retrains:
                references[kind] = None
            else:
                latest = max(retrains)
                references[kind] = measured(made(kind, retrains[latest].local_path,
                                                 run_dir(latest) / "probes" / kind), test)
        return references[kind]

    def probe(model_dir: str, run: UnlearningRun) -> dict[str, dict[str, Any]]:
        out = {}
        for kind in PROBES:
            m = measured(made(kind, model_dir, run_dir(run.pk) / "probes" / kind), test)
            judged = metrics.judge(m, original["test"], reference(kind), th)
            out[kind] = {"verdict": judged["verdict"], "summary": metrics.summary(m),
                         "criteria": judged["criteria"],
                         "against": "the retrain, probed the same way" if retrains
                         else "chance (no retrain)"}
        out["relearned"]["public_documents"] = len(public)
        out["relearned"]["steps"] = RELEARN_STEPS
        return out

    return probe


def choose(run: UnlearningRun, original: dict[str, metrics.Measurement],
            reference: dict[str, metrics.Measurement] | None, validation: Sets, test: Sets,
            th: Thresholds, measured: Any, probe: Any,
            ) -> tuple[dict[str, Any], ModelCheckpoint | None]:
    """Judge every candidate on the validation split, in step order; the first that passes is
    measured once on the test split, and the run is certified by that measurement alone (a
    pass on validation that does not hold on test fails). Never simply the last candidate.
    A pass on test is graded *empirical* only if every criterion still holds after the
    robustness probes (4-bit weights; relearning on a public part of the forget set);
    otherwise the run fails and no unlearned checkpoint is made."""
    table, first = [], None
    for candidate in run.candidates:
        m = measured(candidate["path"], validation)
        judged = metrics.judge(m, original["validation"],
                               reference["validation"] if reference else None, th)
        table.append({"step": candidate["step"], "verdict": judged["verdict"],
                      "summary": metrics.summary(m), "criteria": judged["criteria"]})
        if first is None and judged["verdict"] == metrics.PASS:
            first = table[-1]
    if first is None:
        return {"verdict": metrics.FAIL if table else "inconclusive", "grade": "failed",
                "chosen_step": None, "chosen_on": "validation", "why": "no candidate met every "
                "criterion on the validation split", "candidates": table}, None
    path = next(c["path"] for c in run.candidates if c["step"] == first["step"])
    m = measured(path, test)
    judged = metrics.judge(m, original["test"], reference["test"] if reference else None, th)
    row = {"verdict": judged["verdict"], "chosen_step": first["step"], "chosen_on": "validation",
           "certified_on": "test", "summary": metrics.summary(m),
           "criteria": judged["criteria"], "validation": {"summary": first["summary"],
                                                          "criteria": first["criteria"]},
           "candidates": table}
    if judged["verdict"] != metrics.PASS:
        row["grade"] = "failed"
        row["why"] = (f"step {first['step']} met every criterion on the validation split but "
                      f"not on the test split")
        return row, None
    row["probes"] = probe(path, run)
    broken = [kind for kind in PROBES if row["probes"][kind]["verdict"] != metrics.PASS]
    if broken:
        row.update(verdict=metrics.FAIL, grade="failed", why=(
            f"step {first['step']} met every criterion on the test split, but not after "
            f"{' nor after '.join(PROBE_NAMES[k] for k in broken)}"))
        return row, None
    row["grade"] = "empirical"
    return row, _promote(run, first["step"])


def _promote(run: UnlearningRun, step: int) -> ModelCheckpoint:
    """The chosen candidate as a checkpoint of its own (a stable copy of its folder)."""
    source = artifact_local(next(c["path"] for c in run.candidates if c["step"] == step))
    target = run_dir(run.pk) / "model"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    artifact_publish(target)
    checkpoint, _ = ModelCheckpoint.objects.update_or_create(
        kind=ModelCheckpoint.Kind.UNLEARNED, parent=run.checkpoint, path=artifact_ref(target),
        defaults={"name": f"{run.checkpoint.name}-{run.method}-{run.request.reference}",
                  "version": run.version or run.checkpoint.version,
                  "sha256": directory_sha256(target), "config": run.config,
                  "metrics": {"method": run.method, "step": step, "run": run.pk,
                              "request": run.request.reference,
                              "forget_documents": len(run.forget_documents),
                              "device": run.device, "seconds": run.seconds},
                  "created_by": run.created_by})
    return checkpoint
