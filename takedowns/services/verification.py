"""Verification: the certificate on a request.

For each affected checkpoint, the original model, the retrain reference (when a retrain ran) and
every remediated model are measured on the same sets: the forget documents as stored (the form
of the held-out text: no watermark characters, no canary; unlearning itself forgets them as the
checkpoint trained on them), held-out documents its version set aside (never trained on), a
retain sample, and the removed source's canary. Then:
* separability: if the original itself passes the criteria, the metrics cannot show a removal,
  and the certificate says so instead of passing anything;
* each unlearning run's candidates are judged in step order and the first that meets every
  criterion becomes the remediated checkpoint (never simply the last); the whole trade-off is
  kept in the certificate;
* the retrain is exact by construction (it never saw the work): its metrics, measured against
  chance, are kept for the record and not judged; it is the reference for the others, and a
  run judged in an earlier round against another reference is judged again;
* an output filter is judged on verbatim regurgitation through the filter; it stays "interim",
  since the weights still hold the work.

Runs as `takedowns.unlearn_verify` on the gpu queue; the transaction is opened only to record.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from django.db import transaction
from django.utils import timezone

from core.conf import setting
from core.errors import InvalidTransition
from provenance.engine.lm_config import directory_sha256
from provenance.ledger.append import ledger_append
from provenance.models import ModelCheckpoint, User
from provenance.services.jobs import job_lock
from takedowns.engine import metrics
from takedowns.engine.unlearn_config import APPROXIMATE, Thresholds, UnlearnConfig
from takedowns.models import OutputFilter, TakedownRequest, UnlearningRun
from takedowns.services.decision import probe_verdicts
from takedowns.services.unlearning import Sets, run_dir, verification_sets
from takedowns.services.workflow import takedown_transition

log = logging.getLogger(__name__)
State = TakedownRequest.State
Method = UnlearningRun.Method
RETAIN_SAMPLE = 256


def thresholds() -> Thresholds:
    return Thresholds.from_dict(dict(setting("TAKEDOWN_VERIFICATION")))


@transaction.atomic
def takedown_verify_start(*, request: TakedownRequest, actor: User) -> TakedownRequest:
    """Measure again (after a failed verification job, or with new thresholds)."""
    request = TakedownRequest.objects.select_for_update().get(pk=request.pk)
    if request.state != State.VERIFYING:
        raise InvalidTransition(f"takedown {request.reference}", request.state, "verify")
    request.verification = {**request.verification, "state": "queued"}
    request.save(update_fields=["verification", "updated_at"])
    from takedowns.tasks import unlearn_verify_task

    unlearn_verify_task.delay_on_commit(request.pk)
    return request


def _begin(request_id: int) -> TakedownRequest | None:
    with transaction.atomic():
        request = TakedownRequest.objects.select_for_update().filter(pk=request_id).first()
        if request is None or request.state not in (State.MODEL_REMEDIATION, State.VERIFYING):
            return None
        if request.state == State.MODEL_REMEDIATION:
            takedown_transition(request, State.VERIFYING, None, "measuring the remediated models")
        request.verification = {"state": "running", "position": 0, "total": 0,
                                "started_at": timezone.now().isoformat()}
        request.save(update_fields=["verification", "updated_at"])
        return request


def takedown_verify(*, request_id: int) -> TakedownRequest | None:
    """Measure and judge every succeeded run of the request. Safe to call twice."""
    with job_lock("takedown_verify", request_id) as mine:
        request = _begin(request_id) if mine else None
        if request is None:
            return None
        try:
            certificate, outcomes = _certify(request, thresholds())
        except Exception as exc:
            log.exception("verification of takedown %s failed", request_id)
            TakedownRequest.objects.filter(pk=request_id).update(verification={
                "state": "failed", "error": str(exc)[:2000],
                "finished_at": timezone.now().isoformat()})
        else:
            _record(request, certificate, outcomes)
        request.refresh_from_db()
        return request


def _progress(request: TakedownRequest, done: int, total: int) -> None:
    TakedownRequest.objects.filter(pk=request.pk).update(verification={
        **request.verification, "position": done, "total": total})


def unlearning_retain_ids(group: list[UnlearningRun]) -> set[int]:
    """The documents the group's unlearning runs trained on as their retain set (the same
    seeded sample the runs drew), which verification's retain sample leaves out."""
    out: set[int] = set()
    for run in group:
        if run.method in APPROXIMATE:
            config = UnlearnConfig.from_dict(run.config)
            out |= set(verification_sets(run.checkpoint, run.forget_documents,
                                         config.retain_documents, config.seed).retain_ids)
    return out


def _certify(request: TakedownRequest, th: Thresholds) -> tuple[dict[str, Any], list]:
    """Every set is cut into a validation and a test half: unlearning candidates are chosen on
    validation, and the chosen one is measured once on test, where its certificate's figures
    come from; retrains and output filters have nothing to choose and are measured on test.
    Separability and the verdicts are all judged on test."""
    from takedowns.engine.output_filter import redact
    from takedowns.engine.verification import measure

    runs = list(request.unlearning_runs.filter(state=UnlearningRun.State.SUCCEEDED)
                .select_related("checkpoint__run", "result").order_by("pk"))
    by_checkpoint: dict[int, list[UnlearningRun]] = {}
    for run in runs:
        by_checkpoint.setdefault(run.checkpoint_id, []).append(run)
    total = sum(2 + sum((4 if r.method == Method.RETRAIN else 1 if r.method ==
                         Method.OUTPUT_FILTER else len(r.candidates) + 3)
                        for r in group if _to_judge(r, group))
                for group in by_checkpoint.values())
    done = 0

    spent: dict[str, float] = {}  # seconds of measuring, by model folder

    def measured(path: str, sets: Sets, redactor: Any = None) -> metrics.Measurement:
        nonlocal done
        started = time.perf_counter()
        m = measure(path, sets.forget, sets.holdout, sets.retain, th, sets.canary,
                    redactor=redactor, utility=sets.utility)
        spent[path] = spent.get(path, 0.0) + time.perf_counter() - started
        done += 1
        _progress(request, min(done, total), total)
        return m

    checkpoints, outcomes = [], []
    for group in by_checkpoint.values():
        checkpoint = group[0].checkpoint
        sets = verification_sets(checkpoint, group[0].forget_documents, RETAIN_SAMPLE,
                                 exclude_retain=unlearning_retain_ids(group))
        validation, test = sets.split()
        original = {"validation": measured(checkpoint.path, validation),
                    "test": measured(checkpoint.path, test)}
        retrains = {r.pk: r.result for r in group
                    if r.method == Method.RETRAIN and r.result is not None}
        measured_retrains = {pk: {"validation": measured(result.path, validation),
                                  "test": measured(result.path, test)}
                             for pk, result in retrains.items()}
        reference = measured_retrains[max(retrains)] if retrains else None  # the latest
        separable = metrics.separability(original["test"],
                                         reference["test"] if reference else None, th)
        probe = _prober(checkpoint, validation, test, original, retrains, th, measured, spent)
        rows = []
        for run in group:
            if not _to_judge(run, group):
                # Judged in an earlier round against the same reference: kept as it was.
                rows.append(run.certificate)
                continue
            if run.pk in measured_retrains:
                m = measured_retrains[run.pk]["test"]
                record = metrics.judge(m, original["test"], None, th)
                row = {"summary": metrics.summary(m), "verdict": metrics.EXACT, "grade": "exact",
                       "criteria": record["criteria"], "certified_on": "test",
                       "by_construction": f"trained from scratch on {run.version}, which holds "
                                          f"none of the removed documents",
                       "why": "exact by construction; its metrics are measured against chance "
                              "for the record, not judged"}
                chosen = run.result
            elif run.method == Method.OUTPUT_FILTER:
                active = OutputFilter.objects.get(request=request, checkpoint=checkpoint)
                hashes = np.load(active.path)
                m = measured(checkpoint.path, test,
                             redactor=lambda text, h=hashes, n=active.ngram: redact(text, h,
                                                                                    n)[0])
                judged = metrics.judge(m, original["test"],
                                       reference["test"] if reference else None, th)
                row = {"summary": metrics.summary(m), **judged, "verdict": "interim",
                       "grade": "interim",
                       "certified_on": "test",
                       "why": "the weights still hold the work: the filter only blocks "
                              "verbatim spans at generation"}
                chosen = None
            else:
                row, chosen = _choose(run, original, reference, validation, test, th, measured,
                                      probe)
            if row["verdict"] == metrics.PASS and not separable["separable"]:
                row["verdict"] = "inconclusive"
                row["why"] = ("the original model is not separable from a model without the "
                              "work on these metrics, so passing them shows nothing")
                row["grade"] = "failed"
            # Time to a verified model: the run's compute and every measurement of its models
            # (each candidate's included), not the unlearning alone.
            folders = [str(run_dir(run.pk))] if run.method in APPROXIMATE else \
                [run.result.path] if run.method == Method.RETRAIN and run.result else []
            measuring = sum(v for k, v in spent.items() if any(k.startswith(f) for f in folders))
            row = {"run": run.pk, "method": run.method, **row,
                   "time_to_verified_s": round((run.seconds or 0.0) + measuring, 1),
                   "measuring_s": round(measuring, 1)}
            rows.append(row)
            outcomes.append((run, row, chosen))
        from takedowns.services.attribution_check import attribution_before_after

        remediated = {f"{r['method']} (run {r['run']})": chosen for run, r, chosen in outcomes
                      if run.checkpoint_id == checkpoint.pk and chosen is not None}
        checkpoints.append({
            "checkpoint": checkpoint.pk, "name": checkpoint.name,
            "attribution": attribution_before_after(checkpoint, set(group[0].forget_documents),
                                                    remediated),
            **test.sizes(), "canary_tested": test.canary is not None,
            "splits": {"validation": validation.sizes(), "test": test.sizes(),
                       "rule": "candidates chosen on validation; every figure and verdict "
                               "here is measured on test, once per chosen model"},
            "original": metrics.summary(original["test"]),
            "retrain": metrics.summary(reference["test"]) if reference else None,
            "separability": {"separable": separable["separable"], "by": separable["by"],
                             "original_criteria": separable["original"]},
            "runs": rows,
            "verdict": _checkpoint_verdict(rows)})
    verdicts = {c["verdict"] for c in checkpoints}
    verdict = "fail" if "fail" in verdicts or not checkpoints else \
        "inconclusive" if "inconclusive" in verdicts else "pass"
    return {"state": "done", "verdict": verdict, "thresholds": th.to_dict(),
            "checkpoints": checkpoints, "finished_at": timezone.now().isoformat()}, outcomes


def _to_judge(run: UnlearningRun, group: list[UnlearningRun]) -> bool:
    """Whether this round measures the run: a retrain always (it is the reference), any run not
    judged yet, and one judged against another reference than the group's now (a retrain that
    finished after it), so that every privleak in the certificate has the same reference."""
    retrain = any(r.method == Method.RETRAIN and r.result_id is not None for r in group)
    if run.method == Method.RETRAIN or not (run.verdict and run.certificate):
        return True
    against = ((run.certificate.get("criteria") or {}).get("privleak") or {}).get("reference")
    return against not in (None, "retrain" if retrain else "chance (no retrain)")


def _checkpoint_verdict(rows: list[dict[str, Any]]) -> str:
    """Pass when one model that no longer holds the work (a retrain, exact, or an unlearned
    one that passes) exists; an output filter alone never passes."""
    verdicts = [r["verdict"] for r in rows if r["method"] != Method.OUTPUT_FILTER]
    if metrics.PASS in verdicts or metrics.EXACT in verdicts:
        return metrics.PASS
    return "inconclusive" if "inconclusive" in verdicts or not verdicts else metrics.FAIL


PROBES = ("quantized_4bit", "relearned")
PROBE_NAMES = {"quantized_4bit": "its weights were rounded to 4 bits",
               "relearned": "a few relearning steps on a public part of the forget set"}
RELEARN_STEPS = 10


def _prober(checkpoint: ModelCheckpoint, validation: Sets, test: Sets,
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
        if kind == "quantized_4bit":
            probes.quantized(Path(model_dir), folder)
        else:
            probes.relearned(Path(model_dir), public, folder, steps=RELEARN_STEPS,
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
                references[kind] = measured(made(kind, retrains[latest].path,
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


def _choose(run: UnlearningRun, original: dict[str, metrics.Measurement],
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
    source = next(c["path"] for c in run.candidates if c["step"] == step)
    target = run_dir(run.pk) / "model"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    checkpoint, _ = ModelCheckpoint.objects.update_or_create(
        kind=ModelCheckpoint.Kind.UNLEARNED, parent=run.checkpoint, path=str(target),
        defaults={"name": f"{run.checkpoint.name}-{run.method}-{run.request.reference}",
                  "version": run.version or run.checkpoint.version,
                  "sha256": directory_sha256(target), "config": run.config,
                  "metrics": {"method": run.method, "step": step, "run": run.pk,
                              "request": run.request.reference,
                              "forget_documents": len(run.forget_documents),
                              "device": run.device, "seconds": run.seconds},
                  "created_by": run.created_by})
    return checkpoint


@transaction.atomic
def _record(request: TakedownRequest, certificate: dict[str, Any], outcomes: list) -> None:
    for run, row, chosen in outcomes:
        UnlearningRun.objects.filter(pk=run.pk).update(
            verdict=row["verdict"], certificate=row, result=chosen or run.result,
            updated_at=timezone.now())
        if chosen is not None and run.method != Method.RETRAIN:
            ledger_append(actor=run.created_by, event="checkpoint.created", subject=chosen,
                          payload={"unlearned_from": run.checkpoint_id, "method": run.method,
                                   "request": request.reference, "sha256": chosen.sha256})
    TakedownRequest.objects.filter(pk=request.pk).update(verification=certificate,
                                                         updated_at=timezone.now())
    ledger_append(actor=None, event="takedown.verified", subject=request, payload={
        "reference": request.reference, "verdict": certificate["verdict"],
        "runs": {str(run.pk): {"method": run.method, "verdict": row["verdict"],
                               "grade": row.get("grade"), "chosen_step": row.get("chosen_step"),
                               "chosen_on": row.get("chosen_on"),
                               "certified_on": row.get("certified_on"),
                               "probes": probe_verdicts(row),
                               "config": run.config, "device": run.device,
                               "model_before_sha256": run.checkpoint.sha256,
                               "result_sha256": chosen.sha256 if chosen else None,
                               "forget_set_sha256": _forget_digest(run.forget_documents)}
                 for run, row, chosen in outcomes}})


def _forget_digest(document_ids: list[int]) -> str:
    """sha256 over the sorted sha256 of the forget documents: names the forget set without
    its text."""
    import hashlib

    from provenance.models import Document

    digests = sorted(Document.objects.filter(pk__in=document_ids)
                     .values_list("sha256", flat=True))
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()
