"""Training runs, checkpoints and their lineage.

A run trains in its own folder under the artifact store and saves resumable state every few
steps; the checkpoint row is written once, in the transaction that marks the run succeeded, so a
redelivered task never makes a second one. The database transaction is never held open while
the model trains.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from core.errors import InvalidTransition
from core.jobs import claim_row, job_run
from core.storage import artifact_publish, artifact_ref
from provenance.engine.canary import CanarySpec, canary_sequence, carrier_documents, insert
from provenance.engine.lm_config import PRESETS, TrainConfig, directory_sha256
from provenance.engine.watermark import embed
from provenance.ledger.append import ledger_append
from provenance.models import (
    DatasetVersion,
    DataSource,
    ModelCheckpoint,
    SourceCanary,
    TrainingRun,
    User,
)

State = TrainingRun.State


def config_validate(config: Any) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise ValidationError({"config": "must be a JSON object"})
    try:
        return TrainConfig.from_dict(config).to_dict()
    except (TypeError, ValueError) as exc:
        raise ValidationError({"config": str(exc)}) from exc


# Per preset, measured on the demo corpus on 2 CPU cores (bench/train_throughput.py --sizes tiny
# small default, 2026-11-30; bench/results/train_throughput_presets.json): training tokens per
# second, and tokens trained an epoch per estimated token (bytes / 4; the BPE tokenizers trained
# here cut English finer: 40,000 and 32,000 tokens an epoch for 43,415 estimated).
CPU_TOKENS_PER_S = {"tiny": 38_700, "small": 29_300, "default": 23_200}
TOKENS_PER_ESTIMATE = {"tiny": 0.92, "small": 0.74, "default": 0.74}


def training_plan(version: DatasetVersion, config: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the run's full config, its plan): a preset under the options given, packing chosen by
    the documents' length unless given, and the expected time on 2 CPU cores."""
    if not isinstance(config, dict):
        raise ValidationError({"config": "must be a JSON object"})
    options = dict(config)
    preset = options.pop("preset", "default")
    if preset not in PRESETS:
        raise ValidationError({"config": f"preset: one of {sorted(PRESETS)}, not {preset!r}"})
    full = config_validate({**PRESETS[preset], **options})
    plan: dict[str, Any] = {"preset": preset}
    if "pack" in options:
        plan["pack"] = "as given"
    else:
        median = _median_tokens(version)
        full["pack"] = median >= full["seq_len"] // 2
        plan["pack"] = (f"{'on' if full['pack'] else 'off'}: the median document is about "
                        f"{median} tokens against blocks of {full['seq_len']} (documents under "
                        f"half a block train one per row, so each is seen whole from its "
                        f"start)")
    tokens = (full["max_steps"] * full["batch_size"] * full["seq_len"] if full["max_steps"] else
              round(version.token_estimate * TOKENS_PER_ESTIMATE[preset]) * full["epochs"])
    # Options that leave the model's shape and batches alone keep the preset's measured rate.
    shaped = set(options) - {"epochs", "max_steps", "seed", "pack", "snapshots", "watermarks",
                             "checkpoint_every", "warmup_steps", "learning_rate"}
    rate = 0 if shaped else CPU_TOKENS_PER_S[preset]
    plan["expected"] = {"tokens": tokens, "cpu_seconds": round(tokens / rate) if rate else None,
                        "basis": f"{rate:,} tokens/s measured for the {preset} preset on 2 CPU "
                                 "cores; a GPU is faster" if rate else
                                 "no measured rate for a custom model: time unknown"}
    return full, plan


def _median_tokens(version: DatasetVersion) -> int:
    """The median member's estimated tokens, counted in the database (no list of them here)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY d.token_estimate) "
                       "FROM provenance_versionmember m JOIN provenance_document d "
                       "ON d.id = m.document_id WHERE m.version_id = %s", [version.pk])
        row = cursor.fetchone()
    return int(row[0] or 0) if row else 0


def plan_sentence(plan: dict[str, Any]) -> str:
    expected = plan.get("expected") or {}
    seconds = expected.get("cpu_seconds")
    when = (f"about {seconds // 60} min {seconds % 60} s" if seconds and seconds >= 60 else
            f"about {seconds} s" if seconds is not None else "time unknown")
    return (f"preset {plan.get('preset', 'default')}: {expected.get('tokens', 0):,} tokens, "
            f"{when} on 2 CPU cores ({expected.get('basis', '')}); packing "
            f"{plan.get('pack', '')}")


@transaction.atomic
def training_run_create(*, version: DatasetVersion, actor: User | None,
                        config: dict[str, Any] | None = None,
                        enqueue: bool = True) -> TrainingRun:
    if not version.is_published:
        raise ValidationError({"version": "train on a published version (drafts can change)"})
    full, plan = training_plan(version, config or {})
    run = TrainingRun.objects.create(version=version, config=full, plan=plan,
                                     created_by=actor, unit="steps")
    ledger_append(actor=actor, event="training_run.created", subject=run,
                  payload={"version": version.pk, "manifest_root": version.manifest_root,
                           "config": run.config, "preset": plan["preset"]})
    if enqueue:
        from provenance.tasks import train_run_task

        train_run_task.delay_on_commit(run.pk)
    return run


@transaction.atomic
def training_run_cancel(*, run: TrainingRun, actor: User | None) -> TrainingRun:
    run = TrainingRun.objects.select_for_update().get(pk=run.pk)
    if run.state == State.QUEUED:
        run.state, run.finished_at = State.CANCELLED, timezone.now()
    elif run.state == State.RUNNING:
        run.cancel_requested = True  # the trainer stops at its next progress report
    else:
        raise InvalidTransition(f"training run {run.pk}", run.state, "cancel")
    run.save(update_fields=["state", "finished_at", "cancel_requested", "updated_at"])
    ledger_append(actor=actor, event="training_run.cancel_requested", subject=run)
    return run


@dataclass
class Export:
    texts: list[str]
    marks: dict[str, Any]
    documents: list[int]  # the document id of each text


def training_export(version: DatasetVersion, marks: dict[str, Any] | None = None,
                    watermarks: bool = False, only: set[int] | None = None,
                    include_removed: bool = False) -> Export:
    """The version's documents in a stable order (by content hash) with the sources' marks woven
    in: each canaried source's sequence goes into `copies` of its documents, chosen by a keyed
    rule. Documents removed since publication are left out: a takedown's tombstone keeps its
    text out of every later run. Given the marks of an earlier attempt, the same carriers are
    used again (a resumed run must see the same text). `only` keeps the export to these
    documents (a shard of a gradient index), marked exactly as in the whole export.
    `include_removed` keeps removed documents (what an earlier run trained on, for the span
    index; a purged one has no text left)."""
    rows = version.members.all() if include_removed else version.members.filter(
        document__removed_at__isnull=True)
    if only is not None and marks is not None:
        # The carriers are already chosen: read just these documents' texts, not the version's.
        rows = rows.filter(document_id__in=only)
    members = list(rows.order_by("document__sha256").values_list(
        "document_id", "document__sha256", "document__text", "source_id"))
    canaries = {c.source_id: c for c in SourceCanary.objects.filter(
        source_id__in={m[3] for m in members}
        | {int(s) for s in (marks or {}).get("canaries", {})})}
    if marks is None:
        chosen = {}
        for source_id, canary in canaries.items():
            spec = CanarySpec.from_dict(canary.spec)
            shas = {sha: doc for doc, sha, _, src in members if src == source_id}
            picked = carrier_documents(canary.secret, list(shas), spec.copies)
            chosen[str(source_id)] = sorted(shas[sha] for sha in picked)
        marks = {"canaries": chosen}
        if watermarks:
            marks["watermarks"] = sorted({str(m[3]) for m in members})
    if only is not None:
        members = [m for m in members if m[0] in only]
    carriers = {doc: int(src) for src, docs in marks.get("canaries", {}).items() for doc in docs}
    sequences = {int(src): canary_sequence(CanarySpec.from_dict(canaries[int(src)].spec),
                                           canaries[int(src)].secret)
                 for src in marks.get("canaries", {})}
    texts = [insert(text, sequences[carriers[doc]]) if doc in carriers else text
             for doc, _, text, _ in members]
    marked = {int(s) for s in marks.get("watermarks", [])}
    if marked:
        codes = {pk: (code, key) for pk, code, key in DataSource.objects.filter(
            pk__in=marked).values_list("pk", "watermark", "watermark_key") if code}
        texts = [embed(text, codes[src][0], codes[src][1], sha) if src in codes else text
                 for text, (_, sha, _, src) in zip(texts, members, strict=True)]
    return Export(texts=texts, marks=marks, documents=[m[0] for m in members])


def run_dir(run_id: int) -> Path:
    return Path(settings.ARTIFACT_DIR) / "runs" / str(run_id)


def training_run_execute(*, run_id: int, on_progress: Any = None) -> TrainingRun | None:
    """Train (or resume) a run. Safe to call twice. Imports torch: workers and CLI only."""
    from provenance.engine import lm

    with job_run("training", run_id, model=TrainingRun,
                 claim=claim_row(TrainingRun, stage="training"),
                 cancelled=(lm.Cancelled,)) as run:
        if run is None:
            return None

        def report(p: lm.Progress) -> bool:
            TrainingRun.objects.filter(pk=run_id).update(
                position=p.step, total=p.total_steps, tokens=p.tokens, loss=p.loss,
                tokens_per_s=p.tokens_per_s, updated_at=timezone.now())
            if on_progress:
                on_progress(p)
            return not TrainingRun.objects.filter(pk=run_id, cancel_requested=True).exists()

        config = TrainConfig.from_dict(run.config)
        export = training_export(run.version, run.marks or None, config.watermarks)
        if not run.marks:
            TrainingRun.objects.filter(pk=run_id).update(marks=export.marks)
            run.marks = export.marks
        texts = export.texts
        if not texts:
            raise ValueError("the version has no documents to train on")
        result = lm.train(texts, config, run_dir(run_id), on_progress=report)
        artifact_publish(result.model_dir)  # before the checkpoint row names it
        _finish(run, result, len(texts), [export.documents[i] for i in result.heldout_texts])
    run.refresh_from_db()
    return run


@transaction.atomic
def _finish(run: TrainingRun, result: Any, documents: int,
            heldout: list[int] | None = None) -> ModelCheckpoint:
    metrics = {"canaried_sources": sorted(int(s) for s in run.marks.get("canaries", {})),
               "heldout_loss": result.heldout_loss, "train_loss": result.train_loss,
               # the documents of the version training held out whole (never trained on)
               "heldout_documents": sorted(heldout or []),
               "steps": result.steps, "tokens": result.tokens, "parameters": result.parameters,
               "documents": documents, "device": result.device,
               # steps it went on from after an interruption (a killed worker): none, usually
               "resumed_at_steps": list(result.resumed_at)}
    checkpoint, _ = ModelCheckpoint.objects.get_or_create(run=run, defaults={
        "name": f"{run.version}-run{run.pk}", "kind": ModelCheckpoint.Kind.TRAINED,
        "version": run.version, "path": artifact_ref(result.model_dir), "sha256": result.sha256,
        "config": run.config, "metrics": metrics, "created_by": run.created_by})
    TrainingRun.objects.filter(pk=run.pk).update(
        state=State.SUCCEEDED, stage="done", position=result.steps, total=result.steps,
        tokens=result.tokens, loss=result.train_loss, device=result.device,
        finished_at=timezone.now(), updated_at=timezone.now())
    ledger_append(actor=run.created_by, event="checkpoint.created", subject=checkpoint,
                  payload={"run": run.pk, "version": run.version_id, "sha256": checkpoint.sha256,
                           "metrics": metrics})
    return checkpoint


def _check_model_dir(path: Path) -> dict[str, Any]:
    if not path.is_dir():
        raise ValidationError({"path": f"{path} is not a folder"})
    config_file = path / "config.json"
    if not config_file.exists():
        raise ValidationError({"path": "no config.json: not a Hugging Face model folder"})
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as exc:
        raise ValidationError({"path": f"config.json is not readable JSON ({exc})"}) from exc
    if not any((path / name).exists() for name in ("model.safetensors", "pytorch_model.bin",
                                                   "model.safetensors.index.json")):
        raise ValidationError({"path": "no model weights (model.safetensors) in the folder"})
    if not any((path / name).exists() for name in ("tokenizer.json", "vocab.json",
                                                   "tokenizer.model")):
        raise ValidationError({"path": "no tokenizer files in the folder"})
    return config if isinstance(config, dict) else {}


@transaction.atomic
def checkpoint_register_local(*, path: Path, version: DatasetVersion, name: str,
                              actor: User | None,
                              parent: ModelCheckpoint | None = None) -> ModelCheckpoint:
    """Bring your own model: a local Hugging Face causal-LM folder and what it was trained on."""
    config = _check_model_dir(path)
    checkpoint = ModelCheckpoint.objects.create(
        name=name, kind=ModelCheckpoint.Kind.IMPORTED, version=version, parent=parent,
        path=artifact_ref(path), sha256=directory_sha256(path),
        config={k: config[k] for k in ("model_type", "architectures", "vocab_size", "n_layer",
                                       "num_hidden_layers", "hidden_size", "n_embd")
                if k in config},
        created_by=actor)
    ledger_append(actor=actor, event="checkpoint.registered", subject=checkpoint,
                  payload={"path": checkpoint.path, "sha256": checkpoint.sha256,
                           "version": version.pk})
    return checkpoint
