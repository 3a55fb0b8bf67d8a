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
import time
from typing import Any

import numpy as np
from django.db import transaction
from django.utils import timezone

from core.conf import setting
from core.errors import InvalidTransition
from core.jobs import job_run
from core.storage import artifact_local
from provenance.ledger.append import ledger_append
from provenance.models import User
from takedowns.engine import metrics
from takedowns.engine.unlearn_config import APPROXIMATE, Thresholds, UnlearnConfig
from takedowns.models import OutputFilter, TakedownRequest, UnlearningRun
from takedowns.services.candidates import choose, prober
from takedowns.services.decision import probe_verdicts
from takedowns.services.forget_sets import Sets, verification_sets
from takedowns.services.unlearning import run_dir
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
    def fail(pk: int, exc: BaseException) -> None:
        TakedownRequest.objects.filter(pk=pk).update(verification={
            "state": "failed", "error": str(exc)[:2000],
            "finished_at": timezone.now().isoformat()})

    with job_run("takedown_verify", request_id, claim=_begin, fail=fail) as request:
        if request is None:
            return None
        certificate, outcomes = _certify(request, thresholds())
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
        # A stored key or a path; a model another worker made is fetched once, then this host's.
        local = str(artifact_local(path))
        m = measure(local, sets.forget, sets.holdout, sets.retain, th, sets.canary,
                    redactor=redactor, utility=sets.utility)
        spent[local] = spent.get(local, 0.0) + time.perf_counter() - started
        done += 1
        _progress(request, min(done, total), total)
        return m

    checkpoints, outcomes = [], []
    # the work and the synthetic text its models wrote: a student's inherited canary is the
    # work's, which it never saw itself
    remediation = request.scope.get("remediation", {})
    removed = set(remediation.get("documents", [])) | set(
        remediation.get("synthetic_documents", []))
    for group in by_checkpoint.values():
        checkpoint = group[0].checkpoint
        sets = verification_sets(checkpoint, group[0].forget_documents, RETAIN_SAMPLE,
                                 exclude_retain=unlearning_retain_ids(group), removed=removed)
        validation, test = sets.split()
        original = {"validation": measured(checkpoint.local_path, validation),
                    "test": measured(checkpoint.local_path, test)}
        retrains = {r.pk: r.result for r in group
                    if r.method == Method.RETRAIN and r.result is not None}
        measured_retrains = {pk: {"validation": measured(result.path, validation),
                                  "test": measured(result.path, test)}
                             for pk, result in retrains.items()}
        reference = measured_retrains[max(retrains)] if retrains else None  # the latest
        separable = metrics.separability(original["test"],
                                         reference["test"] if reference else None, th)
        probe = prober(checkpoint, validation, test, original, retrains, th, measured, spent)
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
                hashes = np.load(artifact_local(active.path))
                m = measured(checkpoint.local_path, test,
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
                row, chosen = choose(run, original, reference, validation, test, th, measured,
                                      probe)
            if row["verdict"] == metrics.PASS and not separable["separable"]:
                row["verdict"] = "inconclusive"
                row["why"] = ("the original model is not separable from a model without the "
                              "work on these metrics, so passing them shows nothing")
                row["grade"] = "failed"
            # Time to a verified model: the run's compute and every measurement of its models
            # (each candidate's included), not the unlearning alone.
            folders = [str(run_dir(run.pk))] if run.method in APPROXIMATE else \
                [run.result.local_path] if run.method == Method.RETRAIN and run.result else []
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
            "canary_inherited_from": test.canary_inherited_from,
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
