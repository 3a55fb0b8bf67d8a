"""Gradient indexes: the featurized training set of a checkpoint, built by a Celery chord of
shard tasks on the gpu queue (several GPU workers share one build), and masked after takedowns.

Layout in the artifact store: gradient_indexes/<id>/<snapshot>/<shard>.{ids,vectors,fisher,
fisher_rows}.npy and meta.json per snapshot ("final" = the checkpoint's own weights). A shard is
written under temporary names and renamed, and the row records which shards are done, so a
redelivered or rerun shard task redoes only its own shard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from attribution.models import GradientIndex
from attribution.services.waiting import runs_waiting_resume
from core.conf import setting
from core.errors import InvalidTransition
from core.jobs import TransientError, is_transient, job_fail
from core.storage import (
    artifact_local,
    artifact_local_files,
    artifact_path,
    artifact_publish,
    artifact_ref,
)
from provenance.ledger.append import ledger_append
from provenance.models import Document, ModelCheckpoint, User

State = GradientIndex.State
FINAL = "final"


def index_dir(index_id: int) -> Path:
    return Path(settings.ARTIFACT_DIR) / "gradient_indexes" / str(index_id)


@transaction.atomic
def gradient_index_create(*, checkpoint: ModelCheckpoint, actor: User | None,
                          spec: dict[str, Any] | None = None,
                          enqueue: bool = True) -> GradientIndex:
    """One index per checkpoint over the version it was trained on; asking again returns it."""
    from attribution.engine.features import FeatureSpec

    try:
        feature_spec = FeatureSpec.from_dict(spec or {})
    except (TypeError, ValueError) as exc:
        raise ValidationError({"spec": str(exc)}) from exc
    index, created = GradientIndex.objects.get_or_create(
        version=checkpoint.version, checkpoint=checkpoint,
        defaults={"created_by": actor, "spec": feature_spec.to_dict(), "unit": "documents"})
    if created and enqueue:
        from attribution.tasks import gradient_index_build_task

        gradient_index_build_task.delay_on_commit(index.pk)
    return index


def gradient_index_plan(*, index_id: int) -> list[tuple[str, int, list[int]]] | None:
    """Claim the build and cut it into (snapshot, shard number, document ids) pieces; None when
    the index is not waiting for a build. Documents removed before the build are left out."""
    from attribution.engine.features import FeatureSpec
    from provenance.engine import lm

    with transaction.atomic():
        index = GradientIndex.objects.select_for_update().select_related("checkpoint").filter(
            pk=index_id).first()
        if index is None or index.state not in (State.QUEUED, State.RUNNING):
            return None
        docs = list(index.version.members.filter(document__removed_at__isnull=True)
                    .order_by("document_id").values_list("document_id", flat=True))
        snapshots = [*lm.snapshots(index.checkpoint.local_path), FINAL]
        size = int(setting("ATTRIBUTION_SHARD_DOCUMENTS"))
        shards = [docs[i:i + size] for i in range(0, len(docs), size)] or [[]]
        if index.state == State.QUEUED:  # a rerun of the planner keeps the shards done
            index.shards_done = []
            # Automatic choices (the Fisher's label draws) are made once, for the whole build.
            index.spec = FeatureSpec.from_dict(index.spec).resolved(len(docs)).to_dict()
        index.position = sum(len(shards[int(key.split("/")[1])]) for key in index.shards_done)
        index.state, index.stage = State.RUNNING, "featurizing"
        index.started_at = index.started_at or timezone.now()
        index.snapshots, index.shard_count = snapshots, len(shards)
        index.total, index.path = len(docs) * len(snapshots), artifact_ref(index_dir(index_id))
        index.save(update_fields=["state", "stage", "started_at", "snapshots", "shard_count",
                                  "total", "path", "shards_done", "position", "spec",
                                  "updated_at"])
    done = set(index.shards_done)
    return [(snap, n, ids) for snap in snapshots for n, ids in enumerate(shards)
            if f"{snap}/{n}" not in done]


def _training_texts(checkpoint: ModelCheckpoint, doc_ids: list[int]) -> list[str]:
    """The text each document had in training: with the run's canaries and watermarks woven in
    for a Trailmark-trained checkpoint, the stored text for an imported one."""
    from provenance.services.training import training_export

    if checkpoint.run is not None:
        export = training_export(checkpoint.version, checkpoint.run.marks or None,
                                 bool(checkpoint.config.get("watermarks")), only=set(doc_ids))
        by_doc = dict(zip(export.documents, export.texts, strict=True))
    else:
        by_doc = dict(Document.objects.filter(pk__in=doc_ids).values_list("pk", "text"))
    return [by_doc[d] for d in doc_ids]


def gradient_shard_build(*, index_id: int, snapshot: str, shard: int,
                         doc_ids: list[int]) -> bool:
    """Featurize one shard of one snapshot. False when the index is no longer being built."""
    from attribution.engine import influence
    from provenance.engine import lm

    index = GradientIndex.objects.select_related("checkpoint__run").filter(pk=index_id).first()
    key = f"{snapshot}/{shard}"
    if index is None or index.state != State.RUNNING or key in index.shards_done:
        return False
    try:
        spec = influence.FeatureSpec.from_dict(index.spec)
        snap = None if snapshot == FINAL else snapshot
        model, tokenizer = lm.load(index.checkpoint.local_path, snapshot=snap)
        # a watermark-trained checkpoint: the loss it was trained with (its heads)
        featurizer = influence.Featurizer(model, spec, lm.load_watermark_heads(
            model, tokenizer, index.checkpoint.local_path, snap))
        examples = [influence.document_example(tokenizer, text, spec.max_tokens)
                    for text in _training_texts(index.checkpoint, doc_ids)]

        def advance(n: int) -> None:
            from django.db.models import F

            GradientIndex.objects.filter(pk=index_id).update(position=F("position") + n,
                                                             updated_at=timezone.now())

        samples = spec.fisher_samples if spec.fisher == "sampled" else 0
        if samples:
            seeds = [influence.fisher_seed(spec.seed, d) for d in doc_ids]
            vectors, fisher_rows = influence.featurize_with_fisher(
                featurizer, examples, seeds, samples, on_batch=advance)
        else:
            vectors, fisher_rows = influence.featurize(featurizer, examples,
                                                       on_batch=advance), None
        folder = artifact_path(index.path) / snapshot
        influence.shard_save(folder, f"{shard:05d}", np.asarray(doc_ids, dtype=np.int64),
                             vectors, fisher_rows)
        for file in sorted(folder.glob(f"{shard:05d}.*.npy")):  # for the finalizer
            artifact_publish(file)
        with transaction.atomic():
            row = GradientIndex.objects.select_for_update().get(pk=index_id)
            if key not in row.shards_done:
                row.shards_done = [*row.shards_done, key]
                row.dim = featurizer.dim
                row.save(update_fields=["shards_done", "dim", "updated_at"])
    except Exception as exc:
        if is_transient(exc):
            raise TransientError(f"gradient shard {key}: {exc}") from exc
        job_fail(GradientIndex, index_id, exc, f"gradient shard {key}")
        runs_waiting_resume(gradient_index=index)  # they fail on this index's error
        return False
    return True


def gradient_index_finalize(*, index_id: int) -> GradientIndex | None:
    """After every shard: join each snapshot's Fisher sums and publish the index."""
    from attribution.engine import influence

    index = GradientIndex.objects.select_related("checkpoint").filter(pk=index_id).first()
    if index is None or index.state != State.RUNNING:
        if index is not None:
            runs_waiting_resume(gradient_index=index)
        return index
    try:
        expected = {f"{s}/{n}" for s in index.snapshots for n in range(index.shard_count)}
        missing = sorted(expected - set(index.shards_done))
        if missing:
            raise RuntimeError(f"shards not built: {', '.join(missing[:5])}")
        spec = influence.FeatureSpec.from_dict(index.spec)
        rows = 0
        for snap in index.snapshots:
            folder = artifact_path(index.path) / snap
            for n in range(index.shard_count):  # shards other workers built, if on other hosts
                artifact_local_files(folder, f"{n:05d}.")
            before = set(folder.iterdir())
            store = influence.GradientStore.finalize(
                folder, [f"{n:05d}" for n in range(index.shard_count)],
                # a snapshot's own width (one kept before its watermark heads were saved
                # with it is featurized without them)
                {"dim": int(np.load(artifact_path(index.path) / snap / "00000.vectors.npy",
                                    mmap_mode="r").shape[1]),
                 "checkpoint": index.checkpoint_id, "snapshot": snap,
                 "spec": spec.to_dict()}, spec.damping)
            rows = int(store.meta["rows"])
            artifact_publish(folder, only=sorted(set(folder.iterdir()) - before))
    except Exception as exc:
        job_fail(GradientIndex, index_id, exc, "gradient index")
        index.refresh_from_db()
        runs_waiting_resume(gradient_index=index)
        return index
    with transaction.atomic():
        GradientIndex.objects.filter(pk=index_id).update(
            # fp16: the scored row, and the Fisher rows kept for exact takedown downdates
            state=State.SUCCEEDED, stage="done", rows=rows,
            bytes_per_row=2 * index.dim * (1 + int(index.spec.get("fisher_samples", 0))),
            finished_at=timezone.now(), updated_at=timezone.now())
        index.refresh_from_db()
        ledger_append(actor=index.created_by, event="gradient_index.built", subject=index,
                      payload={"checkpoint": index.checkpoint_id, "version": index.version_id,
                               "spec": index.spec, "dim": index.dim, "rows": rows,
                               "snapshots": index.snapshots, "generation": index.generation})
        runs_waiting_resume(gradient_index=index)  # sent once this commits
    return index


def _set_removed(index: GradientIndex, removed: set[int], actor: User | None, event: str,
                 changed: list[int]) -> GradientIndex:
    """Record a new removed set: the generation goes up, so reports name which one they used."""
    index.removed = sorted(removed)
    index.generation += 1
    index.save(update_fields=["removed", "generation", "updated_at"])
    ledger_append(actor=actor, event=event, subject=index,
                  payload={"documents": changed, "generation": index.generation})
    return index


@transaction.atomic
def gradient_index_mask(*, index: GradientIndex, document_ids: list[int],
                        actor: User | None) -> GradientIndex:
    """Take documents out of an index after a takedown: their rows are masked at scoring and
    out of the Fisher estimate."""
    index = GradientIndex.objects.select_for_update().get(pk=index.pk)
    if index.state != State.SUCCEEDED:
        raise InvalidTransition(f"gradient index {index.pk}", index.state, "mask")
    new = sorted(set(document_ids) - set(index.removed))
    if not new:
        return index
    return _set_removed(index, {*index.removed, *new}, actor, "gradient_index.masked", new)


@transaction.atomic
def gradient_index_unmask(*, index: GradientIndex, document_ids: list[int],
                          actor: User | None) -> GradientIndex:
    """Put documents back (a takedown reversed): their rows score and count in the Fisher again
    (they never left the store)."""
    index = GradientIndex.objects.select_for_update().get(pk=index.pk)
    back = sorted(set(document_ids) & set(index.removed))
    if not back:
        return index
    return _set_removed(index, set(index.removed) - set(back), actor,
                        "gradient_index.unmasked", back)


def gradient_index_rebuild(*, index: GradientIndex, actor: User | None) -> GradientIndex:
    """Start a failed or cancelled build again from its shards already done."""
    with transaction.atomic():
        row = GradientIndex.objects.select_for_update().get(pk=index.pk)
        if row.state not in (State.FAILED, State.CANCELLED):
            raise InvalidTransition(f"gradient index {row.pk}", row.state, "rebuild")
        row.state, row.error, row.finished_at = State.RUNNING, "", None
        row.save(update_fields=["state", "error", "finished_at", "updated_at"])
        from attribution.tasks import gradient_index_build_task

        gradient_index_build_task.delay_on_commit(row.pk)
    return row


def open_stores(index: GradientIndex) -> list[Any]:
    """The index's stores (one per snapshot) with its removed documents masked."""
    from attribution.engine.influence import GradientStore

    folder = artifact_path(index.path)
    return [GradientStore.open(artifact_local(folder / snap)).without(index.removed)
            for snap in index.snapshots]

