"""Model remediation: take a request's documents out of the checkpoints that trained on them.

Per affected checkpoint, by the curator's choice (several may run side by side):
* retrain: a new TrainingRun on the remediated version with the checkpoint's own configuration
  (the gold standard; cheap at Trailmark's default scale, so offered first);
* graddiff / npo: unlearning from the checkpoint itself, forget set = the removed documents as
  the checkpoint trained on them, retain set = a sample of the rest; candidates are saved along
  the way and verification picks the first that meets every criterion;
* output_filter: an interim block of verbatim spans of the documents in what the checkpoint
  generates, while the weights still hold the work.

Runs are `takedowns.unlearn_run` tasks on the gpu queue, resumable after a killed worker and
cancellable; when the last one of the request ends, `takedowns.unlearn_verify` measures them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.errors import InvalidTransition
from core.jobs import job_run
from core.storage import artifact_publish, artifact_ref
from provenance.engine.lm_config import TrainConfig
from provenance.ledger.append import ledger_append
from provenance.models import (
    DatasetVersion,
    ModelCheckpoint,
    TrainingRun,
    User,
)
from provenance.services.training import training_run_create
from takedowns.engine.unlearn_config import METHODS, UnlearnConfig
from takedowns.models import OutputFilter, TakedownRequest, UnlearningRun
from takedowns.services.forget_sets import origin_run, trained_export, verification_sets
from takedowns.services.workflow import takedown_transition

State = TakedownRequest.State
RunState = UnlearningRun.State
Method = UnlearningRun.Method

ACTIVE = (RunState.QUEUED, RunState.RUNNING)
FILTER_NGRAM = 8


def affected_checkpoints(document_ids: set[int]) -> list[ModelCheckpoint]:
    """Checkpoints trained on a version holding any of the documents (remediated models of
    earlier requests included: they were trained or unlearned on such versions too)."""
    return list(ModelCheckpoint.objects.filter(version__members__document_id__in=document_ids)
                .distinct().order_by("pk"))


def _remediated_version(request: TakedownRequest, checkpoint: ModelCheckpoint
                        ) -> DatasetVersion | None:
    for change in request.scope.get("remediation", {}).get("versions", []):
        if change["dataset"] == checkpoint.version.dataset_id:
            return DatasetVersion.objects.get(pk=change["to"])
    return None


def method_config(method: str, checkpoint: ModelCheckpoint, config: dict[str, Any]
                  ) -> dict[str, Any]:
    """A method's options, checked and completed with its defaults (a retrain: the recipe of the
    run that trained the checkpoint); a ValidationError names the field."""
    try:
        if method == Method.RETRAIN:
            run = origin_run(checkpoint)
            if run is None:
                raise ValidationError({"methods": f"checkpoint {checkpoint.pk} was imported: "
                                                  f"Trailmark has no recipe to retrain it"})
            return TrainConfig.from_dict({**run.config, **config}).to_dict()
        if method == Method.OUTPUT_FILTER:
            return {"ngram": FILTER_NGRAM}
        return UnlearnConfig.from_dict(config).to_dict()
    except (TypeError, ValueError) as exc:
        raise ValidationError({"config": f"{method}: {exc}"}) from exc


@transaction.atomic
def takedown_remediate_models(*, request: TakedownRequest, actor: User, methods: list[str],
                              checkpoints: list[ModelCheckpoint] | None = None,
                              config: dict[str, dict[str, Any]] | None = None
                              ) -> list[UnlearningRun]:
    """data_remediated (or verifying, after a failed check) -> model_remediation, with one run
    per checkpoint and method."""
    request = TakedownRequest.objects.select_for_update().get(pk=request.pk)
    if request.state not in (State.DATA_REMEDIATED, State.VERIFYING, State.MODEL_REMEDIATION):
        raise InvalidTransition(f"takedown {request.reference}", request.state,
                                "remediate the models of")
    if request.unlearning_runs.filter(state__in=ACTIVE).exists():
        raise InvalidTransition(f"takedown {request.reference}", "runs in progress",
                                "start more runs for")
    unknown = sorted(set(methods) - set(METHODS))
    if not methods or unknown:
        raise ValidationError({"methods": f"one or more of {', '.join(METHODS)}"})
    config = config or {}
    if not isinstance(config, dict) or set(config) - set(methods):
        raise ValidationError({"config": "an object of method: options, for chosen methods"})
    remediation = request.scope.get("remediation", {})
    # the work, and the synthetic text written from it when that went too: its students
    documents = set(remediation.get("documents", [])) | set(
        remediation.get("synthetic_documents", []))
    affected = {c.pk: c for c in affected_checkpoints(documents)}
    chosen = checkpoints if checkpoints is not None else list(affected.values())
    stray = sorted(c.pk for c in chosen if c.pk not in affected)
    if stray:
        raise ValidationError({"checkpoints": f"not trained on the removed documents: {stray}"})
    if not chosen:
        raise ValidationError({"checkpoints": "no checkpoint was trained on the removed "
                                              "documents: decide the request instead"})
    runs = []
    for checkpoint in chosen:
        version = _remediated_version(request, checkpoint)
        for method in dict.fromkeys(methods):
            if method == Method.RETRAIN and version is None:
                raise ValidationError({"methods": f"no remediated version of dataset "
                                                  f"{checkpoint.version.dataset_id} to retrain "
                                                  f"checkpoint {checkpoint.pk} on"})
            if method == Method.RETRAIN and version is not None and not version.document_count:
                raise ValidationError({"methods": f"{version} holds no documents: everything "
                                                  f"checkpoint {checkpoint.pk} trained on was "
                                                  f"removed, so there is nothing to retrain it "
                                                  f"on; take it out of service instead"})
            forget = sorted(set(checkpoint.version.members.filter(document_id__in=documents)
                                .values_list("document_id", flat=True)))
            runs.append(UnlearningRun.objects.create(
                request=request, checkpoint=checkpoint, method=method, version=version,
                config=method_config(method, checkpoint, config.get(method, {})),
                forget_documents=forget, created_by=actor, unit="steps"))
    if request.state != State.MODEL_REMEDIATION:
        takedown_transition(request, State.MODEL_REMEDIATION, actor,
                    f"{len(runs)} run(s): {', '.join(dict.fromkeys(methods))}")
    ledger_append(actor=actor, event="takedown.model_remediation_started", subject=request,
                  payload={"reference": request.reference, "runs": [
                      {"run": r.pk, "checkpoint": r.checkpoint_id, "method": r.method}
                      for r in runs]})
    from takedowns.tasks import unlearn_run_task

    for run in runs:
        unlearn_run_task.delay_on_commit(run.pk)
    return runs


@transaction.atomic
def unlearning_run_cancel(*, run: UnlearningRun, actor: User) -> UnlearningRun:
    run = UnlearningRun.objects.select_for_update().get(pk=run.pk)
    if run.state == RunState.QUEUED:
        run.state, run.finished_at = RunState.CANCELLED, timezone.now()
    elif run.state == RunState.RUNNING:
        run.cancel_requested = True  # the trainer stops at its next progress report
        if run.training_run_id:
            TrainingRun.objects.filter(pk=run.training_run_id).update(cancel_requested=True)
    else:
        raise InvalidTransition(f"unlearning run {run.pk}", run.state, "cancel")
    run.save(update_fields=["state", "finished_at", "cancel_requested", "updated_at"])
    ledger_append(actor=actor, event="unlearning_run.cancel_requested", subject=run.request,
                  payload={"run": run.pk})
    transaction.on_commit(lambda: _after_run(run.request_id))
    return run


# ---------------------------------------------------------------------------------------------
# The texts a run and its verification read


def run_dir(run_id: int) -> Path:
    return Path(settings.ARTIFACT_DIR) / "unlearning" / str(run_id)


def claim_run(run_id: int) -> UnlearningRun | None:
    """Mark a queued or running run as running (row-locked) and return it; None when it is
    gone or already finished."""
    with transaction.atomic():
        run = UnlearningRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.state not in ACTIVE:
            return None
        run.state, run.stage = RunState.RUNNING, run.method
        run.started_at = run.started_at or timezone.now()
        run.save(update_fields=["state", "stage", "started_at", "updated_at"])
        return run


def unlearning_run_execute(*, run_id: int) -> UnlearningRun | None:
    """Run (or resume) one remediation. Safe to call twice. Imports torch: workers only."""
    from provenance.engine import lm

    started = timezone.now()

    def close(pk: int, outcome: str) -> None:
        elapsed = (timezone.now() - started).total_seconds()
        UnlearningRun.objects.filter(pk=pk).update(
            state=outcome, stage="done" if outcome == RunState.SUCCEEDED else outcome,
            seconds=Coalesce(F("seconds"), 0.0) + elapsed, finished_at=timezone.now(),
            updated_at=timezone.now())

    with job_run("unlearning", run_id, model=UnlearningRun, claim=claim_run,
                 cancelled=(lm.Cancelled,),
                 cancel=lambda pk: close(pk, RunState.CANCELLED)) as run:
        if run is None:
            return None
        how = {Method.RETRAIN.value: _retrain, Method.OUTPUT_FILTER.value: _output_filter}
        close(run_id, how.get(run.method, _unlearn)(run))
    _after_run(run.request_id)
    run.refresh_from_db()
    return run


def _progress(run: UnlearningRun) -> Any:
    def report(p: Any) -> bool:
        UnlearningRun.objects.filter(pk=run.pk).update(position=p.step, total=p.total_steps,
                                                       updated_at=timezone.now())
        return not UnlearningRun.objects.filter(pk=run.pk, cancel_requested=True).exists()

    return report


def _retrain(run: UnlearningRun) -> str:
    from provenance.services.training import training_run_execute

    with transaction.atomic():
        run = UnlearningRun.objects.select_for_update().get(pk=run.pk)
        if run.training_run is None:
            assert run.version is not None
            run.training_run = training_run_create(version=run.version, actor=run.created_by,
                                                   config=run.config, enqueue=False)
            run.save(update_fields=["training_run", "updated_at"])
    report, training_id = _progress(run), run.training_run.pk

    def mirror(p: Any) -> None:
        if not report(p):
            TrainingRun.objects.filter(pk=training_id).update(cancel_requested=True)

    training = training_run_execute(run_id=run.training_run.pk, on_progress=mirror)
    training = training or TrainingRun.objects.get(pk=run.training_run.pk)
    if training.state == TrainingRun.State.CANCELLED:
        return RunState.CANCELLED
    if training.state != TrainingRun.State.SUCCEEDED:
        raise RuntimeError(f"the retrain (training run {training.pk}) {training.state}: "
                           f"{training.error}")
    checkpoint = ModelCheckpoint.objects.get(run=training)
    UnlearningRun.objects.filter(pk=run.pk).update(result=checkpoint,
                                                   device=checkpoint.metrics.get("device", ""))
    return RunState.SUCCEEDED


def _unlearn(run: UnlearningRun) -> str:
    from takedowns.engine.unlearning import unlearn

    config = UnlearnConfig.from_dict(run.config)
    sets = verification_sets(run.checkpoint, run.forget_documents, config.retain_documents,
                             config.seed)
    result = unlearn(Path(run.checkpoint.local_path), sets.forget_trained, sets.retain, run.method,
                     config, run_dir(run.pk), on_progress=_progress(run))
    for _, path in result.candidates:
        artifact_publish(path)  # before the run names them: verification may run elsewhere
    UnlearningRun.objects.filter(pk=run.pk).update(
        candidates=[{"step": step, "path": artifact_ref(path)}
                    for step, path in result.candidates],
        device=result.device, resumed_at=result.resumed_at)
    return RunState.SUCCEEDED


def _output_filter(run: UnlearningRun) -> str:
    from takedowns.engine.output_filter import shingle_hashes

    forget = trained_export(run.checkpoint, only=set(run.forget_documents),
                     include_removed=True).texts
    if not any(t.strip() for t in forget):
        raise ValueError("the documents' text was purged: nothing to build a filter from")
    hashes = shingle_hashes(forget, FILTER_NGRAM)
    folder = run_dir(run.pk)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "filter.npy", hashes)
    artifact_publish(folder / "filter.npy")
    with transaction.atomic():
        OutputFilter.objects.update_or_create(
            request=run.request, checkpoint=run.checkpoint,
            defaults={"ngram": FILTER_NGRAM, "path": artifact_ref(folder / "filter.npy"),
                      "shingles": int(hashes.size), "active": True})
        ledger_append(actor=run.created_by, event="output_filter.activated",
                      subject=run.checkpoint, payload={"request": run.request.reference,
                                                       "shingles": int(hashes.size)})
    return RunState.SUCCEEDED


def _after_run(request_id: int) -> None:
    """When the request's last run ends and one succeeded, queue the verification."""
    with transaction.atomic():
        request = TakedownRequest.objects.select_for_update().get(pk=request_id)
        runs = request.unlearning_runs.all()
        if request.state != State.MODEL_REMEDIATION or runs.filter(state__in=ACTIVE).exists():
            return
        if not runs.filter(state=RunState.SUCCEEDED, verdict="").exists():
            return
        from takedowns.tasks import unlearn_verify_task

        unlearn_verify_task.delay_on_commit(request_id)
