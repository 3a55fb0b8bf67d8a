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

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.errors import InvalidTransition
from provenance.engine.canary import CanarySpec, canary_sequence, null_sequences
from provenance.engine.lm_config import TrainConfig
from provenance.ledger.append import ledger_append
from provenance.models import (
    DatasetVersion,
    Document,
    ModelCheckpoint,
    SourceCanary,
    TrainingRun,
    User,
    VersionExclusion,
    VersionMember,
)
from provenance.services.jobs import job_fail, job_lock
from provenance.services.training import training_export, training_run_create
from takedowns.engine.unlearn_config import METHODS, UnlearnConfig
from takedowns.models import OutputFilter, TakedownRequest, UnlearningRun
from takedowns.services.workflow import takedown_transition

State = TakedownRequest.State
RunState = UnlearningRun.State
Method = UnlearningRun.Method
ACTIVE = (RunState.QUEUED, RunState.RUNNING)
HOLDOUT_MAX = 1000
UTILITY_MAX = 256
CANARY_NULLS = 500  # smallest p-value 1/501: a hard fail (p <= 0.01) can be seen
FILTER_NGRAM = 8


def affected_checkpoints(document_ids: set[int]) -> list[ModelCheckpoint]:
    """Checkpoints trained on a version holding any of the documents (remediated models of
    earlier requests included: they were trained or unlearned on such versions too)."""
    return list(ModelCheckpoint.objects.filter(version__members__document_id__in=document_ids)
                .distinct().order_by("pk"))


def origin_run(checkpoint: ModelCheckpoint) -> TrainingRun | None:
    """The training run behind a checkpoint: its own, or (unlearned) its nearest ancestor's."""
    while checkpoint.run is None and checkpoint.parent is not None:
        checkpoint = checkpoint.parent
    return checkpoint.run


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
    documents = set(request.scope.get("remediation", {}).get("documents", []))
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


@dataclass
class Sets:
    forget: list[str]         # the removed documents as stored: what is measured
    forget_trained: list[str]  # the same as the checkpoint saw them (marks, canaries): unlearned
    retain: list[str]         # as trained
    holdout: list[str]        # never trained on, from the forget set's sources (membership)
    utility: list[str]        # never trained on, from the other sources (held-out perplexity)
    canary: list[str] | None  # a removed source's canary, then its null sequences
    retain_ids: list[int] = field(default_factory=list)  # the documents `retain` came from

    def sizes(self) -> dict[str, Any]:
        return {"forget_documents": len(self.forget), "holdout_documents": len(self.holdout),
                "retain_documents": len(self.retain), "utility_documents": len(self.utility),
                "canary_nulls": len(self.canary) - 1 if self.canary else 0}

    def split(self, seed: int = 0) -> tuple[Sets, Sets]:
        """(validation, test): each set cut in two halves by a seeded permutation, disjoint, so
        that a candidate chosen on one is certified on documents it was not chosen on. The
        canary (one sequence) is in both; its null sequences are split."""
        rng = random.Random(f"verification split {seed}")

        def halves(n: int) -> tuple[list[int], list[int]]:
            order = list(range(n))
            rng.shuffle(order)
            return sorted(order[:n // 2]), sorted(order[n // 2:])

        parts: list[dict[str, Any]] = [{}, {}]
        f_val, f_test = halves(len(self.forget))
        for part, index in zip(parts, (f_val, f_test), strict=True):
            part["forget"] = [self.forget[i] for i in index]
            part["forget_trained"] = [self.forget_trained[i] for i in index]
        for name in ("holdout", "utility"):
            values = getattr(self, name)
            for part, index in zip(parts, halves(len(values)), strict=True):
                part[name] = [values[i] for i in index]
        r_val, r_test = halves(len(self.retain))
        for part, index in zip(parts, (r_val, r_test), strict=True):
            part["retain"] = [self.retain[i] for i in index]
            part["retain_ids"] = [self.retain_ids[i] for i in index if i < len(self.retain_ids)]
        for n, part in enumerate(parts):
            part["canary"] = [self.canary[0], *self.canary[1 + n::2]] if self.canary else None
        return Sets(**parts[0]), Sets(**parts[1])


def _export(checkpoint: ModelCheckpoint, **kwargs: Any) -> Any:
    """The checkpoint's training text as it saw it (its own canaries and watermarks)."""
    run = origin_run(checkpoint)
    if run is None:
        return training_export(checkpoint.version, marks={"canaries": {}}, **kwargs)
    return training_export(checkpoint.version, marks=run.marks,
                           watermarks=bool(run.config.get("watermarks")), **kwargs)


def verification_sets(checkpoint: ModelCheckpoint, forget_ids: list[int], retain_n: int,
                      seed: int = 0, exclude_retain: set[int] | None = None) -> Sets:
    """The forget, retain, held-out and utility texts and the canary of one checkpoint's
    verification. `exclude_retain`: documents not to sample the retain set from (verification
    leaves out those the unlearning runs trained on, so utility is judged on retained text
    the unlearning never saw)."""
    purged = sorted(Document.objects.filter(pk__in=forget_ids, text_purged=True)
                    .values_list("pk", flat=True))
    if purged:
        raise ValueError(f"the text of documents {purged} was purged: unlearning and its "
                         f"verification need it")
    trained = _export(checkpoint, only=set(forget_ids), include_removed=True)
    # Measured in the same form as the held-out text (stored, no watermark characters, no
    # canary), so that membership does not measure "carries invisible characters"; the canary
    # has its own test.
    stored = dict(Document.objects.filter(pk__in=trained.documents).values_list("pk", "text"))
    forget = [stored[d] for d in trained.documents]
    everything = _export(checkpoint)
    skip = set(forget_ids) | (exclude_retain or set())
    rest = [(t, d) for t, d in zip(everything.texts, everything.documents, strict=True)
            if d not in skip]
    retain = random.Random(seed).sample(rest, min(retain_n, len(rest)))
    # Held-out text from the forget set's own sources: a membership test between different
    # distributions (a removed source's style against everyone else's) measures the style.
    # Held-out documents the same request removed still count (never trained on either way),
    # until their text is purged.
    sources = set(VersionMember.objects.filter(version=checkpoint.version,
                                               document_id__in=forget_ids)
                  .values_list("source_id", flat=True))
    held = VersionExclusion.objects.filter(version=checkpoint.version,
                                           reason=VersionExclusion.Reason.HELD_OUT)

    def texts(rows: Any, limit: int) -> list[str]:
        return list(Document.objects.filter(pk__in=rows.values("document_id"),
                                            text_purged=False)
                    .order_by("sha256").values_list("text", flat=True)[:limit])

    # Utility is measured on what the model should still know: held-out text of the rest.
    return Sets(forget=forget, forget_trained=trained.texts, retain=[t for t, _ in retain],
                retain_ids=[d for _, d in retain],
                holdout=texts(held.filter(source_id__in=sources), HOLDOUT_MAX),
                utility=texts(held.exclude(source_id__in=sources), UTILITY_MAX),
                canary=_canary(checkpoint, set(forget_ids)))


def _canary(checkpoint: ModelCheckpoint, forget: set[int]) -> list[str] | None:
    """The canary of a source all of whose carriers are in the forget set (if some stay, the
    model is meant to know it still)."""
    run = origin_run(checkpoint)
    marks = run.marks.get("canaries", {}) if run else {}
    for source, carriers in sorted(marks.items()):
        if carriers and set(carriers) <= forget:
            canary = SourceCanary.objects.filter(source_id=int(source)).first()
            if canary is not None:
                spec = CanarySpec.from_dict(canary.spec)
                return [canary_sequence(spec, canary.secret),
                        *null_sequences(spec, canary.secret, CANARY_NULLS, stream="takedown")]
    return None


# ---------------------------------------------------------------------------------------------
# The worker side


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

    with job_lock("unlearning", run_id) as mine:
        run = claim_run(run_id) if mine else None
        if run is None:
            return None
        started = timezone.now()
        try:
            how = {Method.RETRAIN.value: _retrain, Method.OUTPUT_FILTER.value: _output_filter}
            outcome = how.get(run.method, _unlearn)(run)
        except lm.Cancelled:
            outcome = RunState.CANCELLED
        except Exception as exc:
            job_fail(UnlearningRun, run_id, exc, "unlearning run")
            outcome = None
        if outcome is not None:
            elapsed = (timezone.now() - started).total_seconds()
            UnlearningRun.objects.filter(pk=run_id).update(
                state=outcome, stage="done" if outcome == RunState.SUCCEEDED else outcome,
                seconds=(run.seconds or 0) + elapsed, finished_at=timezone.now(),
                updated_at=timezone.now())
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
    result = unlearn(Path(run.checkpoint.path), sets.forget_trained, sets.retain, run.method,
                     config, run_dir(run.pk), on_progress=_progress(run))
    UnlearningRun.objects.filter(pk=run.pk).update(
        candidates=[{"step": step, "path": str(path)} for step, path in result.candidates],
        device=result.device)
    return RunState.SUCCEEDED


def _output_filter(run: UnlearningRun) -> str:
    from takedowns.engine.output_filter import shingle_hashes

    forget = _export(run.checkpoint, only=set(run.forget_documents),
                     include_removed=True).texts
    if not any(t.strip() for t in forget):
        raise ValueError("the documents' text was purged: nothing to build a filter from")
    hashes = shingle_hashes(forget, FILTER_NGRAM)
    folder = run_dir(run.pk)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "filter.npy", hashes)
    with transaction.atomic():
        OutputFilter.objects.update_or_create(
            request=run.request, checkpoint=run.checkpoint,
            defaults={"ngram": FILTER_NGRAM, "path": str(folder / "filter.npy"),
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
