"""Synthesis jobs: a registered checkpoint writes N documents into a source of their own.

The source is made with the job (acquisition synthetic, its generator the checkpoint), so the
lineage exists before the first document does. Documents go in through ingest's own database
path (hashes, MinHash, a takedown's block on a removed text), each with a `SyntheticRecord`
naming its prompt and sampling seed, in batches of `BATCH` that commit with the job's position:
a killed worker resumes at the first record not kept, and regenerates nothing it kept.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.jobs import claim_row, job_run
from provenance.engine.lm_config import DecodeParams
from provenance.engine.prepare import prepare_batch
from provenance.engine.readers import Row
from provenance.engine.text import prepare
from provenance.ledger.append import ledger_append
from provenance.models import (
    DataSource,
    Document,
    ModelCheckpoint,
    RightsHolder,
    SynthesisJob,
    SyntheticRecord,
    User,
)
from provenance.services.ingest_write import rows_store
from provenance.services.sources import source_create

BATCH = 32
MAX_COUNT = 1_000_000
MAX_INPUTS = 100_000
SLOT = "{input}"


def synthesis_validate(template: Any, inputs: Any, params: Any) -> dict[str, Any]:
    if not isinstance(template, str) or not template.strip():
        raise ValidationError({"template": "a prompt: text, with {input} where a pool input goes"})
    if not isinstance(inputs, list) or not all(isinstance(i, str) and i.strip() for i in inputs):
        raise ValidationError({"inputs": "a list of non-empty strings"})
    if len(inputs) > MAX_INPUTS:
        raise ValidationError({"inputs": f"at most {MAX_INPUTS:,}"})
    if inputs and SLOT not in template:
        raise ValidationError({"template": "has no {input} for the pool's inputs to go in"})
    if not inputs and SLOT in template:
        raise ValidationError({"inputs": "the template has {input}: give the pool"})
    if not isinstance(params, dict) or "seed" in params:
        raise ValidationError({"params": "decoding options (max_new_tokens, temperature, "
                                         "top_p); the seed is the job's"})
    try:
        decoded = DecodeParams.from_dict({"temperature": 1.0, **params}).to_dict()
    except (TypeError, ValueError) as exc:
        raise ValidationError({"params": str(exc)}) from exc
    decoded.pop("seed")
    return decoded


def prompt_for(job: SynthesisJob, index: int) -> str:
    return job.template.replace(SLOT, job.inputs[index % len(job.inputs)]) if job.inputs \
        else job.template


def seed_for(job: SynthesisJob, index: int) -> int:
    return job.seed * 1_000_003 + index


@transaction.atomic
def synthesis_job_create(*, actor: User | None, checkpoint: ModelCheckpoint, owner: RightsHolder,
                         name: str, license_expression: str, template: str, count: int,
                         inputs: list[str] | None = None, params: dict[str, Any] | None = None,
                         seed: int = 0, enqueue: bool = True) -> SynthesisJob:
    """The derived source and the job that fills it. `license_expression` is the licence the
    generated text is put under by its owner (what the lineage's licences then restrict)."""
    if not 1 <= count <= MAX_COUNT:
        raise ValidationError({"count": f"between 1 and {MAX_COUNT:,}"})
    decoded = synthesis_validate(template, inputs or [], params or {})
    source = source_create(actor=actor, owner=owner, name=name,
                           license_expression=license_expression,
                           acquisition=DataSource.Acquisition.SYNTHETIC, generator=checkpoint,
                           description=f"Synthetic text written by checkpoint {checkpoint.name} "
                                       f"(sha256 {checkpoint.sha256[:16]}…)")
    job = SynthesisJob.objects.create(
        checkpoint=checkpoint, source=source, template=template, inputs=inputs or [],
        count=count, params=decoded, seed=seed, checkpoint_sha256=checkpoint.sha256,
        total=count, unit="documents", created_by=actor)
    ledger_append(actor=actor, event="synthesis_job.created", subject=job, payload={
        "checkpoint": checkpoint.pk, "checkpoint_sha256": checkpoint.sha256,
        "source": source.pk, "count": count, "template": template, "inputs": len(job.inputs),
        "params": decoded, "seed": seed})
    if enqueue:
        from provenance.tasks import synthesize_run_task

        synthesize_run_task.delay_on_commit(job.pk)
    return job


def synthesis_run(*, job_id: int, on_progress: Any = None) -> SynthesisJob | None:
    """Generate (or go on generating) a job's documents. Imports torch: workers and CLI only."""
    from provenance.engine import lm

    with job_run("synthesis", job_id, model=SynthesisJob,
                 claim=claim_row(SynthesisJob, stage="generating",
                                 related=("checkpoint",))) as job:
        if job is None:
            return None
        model, tokenizer = lm.load(job.checkpoint.local_path)
        # The position commits with each batch's records: a rerun starts where they end.
        for first in range(job.position, job.count, BATCH):
            indexes = range(first, min(first + BATCH, job.count))
            texts = [lm.generate(model, tokenizer, prompt_for(job, i), DecodeParams.from_dict(
                {**job.params, "seed": seed_for(job, i)})) for i in indexes]
            _store(job, list(indexes), texts)
            if on_progress:
                on_progress(indexes[-1] + 1, job.count)
        _finish(job)
    return SynthesisJob.objects.filter(pk=job_id).first()


def _store(job: SynthesisJob, indexes: list[int], texts: list[str]) -> None:
    """One batch: its documents and occurrences (ingest's path), their records and the job's
    position, in one transaction. An empty generation makes no document and no record."""
    kept = [(i, text) for i, text in zip(indexes, texts, strict=True) if text.strip()]
    rows = [Row(file=f"synthesis-job-{job.pk}", line=i, text=text, meta={
        "synthesis_job": job.pk, "index": i, "checkpoint_sha256": job.checkpoint_sha256,
        "seed": seed_for(job, i)}) for i, text in kept]
    batch = prepare_batch(rows, indexes[-1] + 1)
    with transaction.atomic():
        added, linked, linked_bytes, _ = rows_store(batch.staged, source_id=job.source_id,
                                                    job_id=None)
        by_sha = dict(Document.objects.filter(sha256__in=[s[0] for s in batch.staged],
                                              removed_at__isnull=True)  # not a blocked text
                      .values_list("sha256", "pk"))
        SyntheticRecord.objects.bulk_create([
            SyntheticRecord(job=job, index=i, document_id=by_sha[sha],
                            prompt=prompt_for(job, i), seed=seed_for(job, i))
            for i, text in kept if (sha := prepare(text).sha256) in by_sha])
        if linked:
            DataSource.objects.filter(pk=job.source_id).update(
                document_count=F("document_count") + linked,
                byte_count=F("byte_count") + linked_bytes)
        SynthesisJob.objects.filter(pk=job.pk).update(
            position=indexes[-1] + 1, documents_added=F("documents_added") + added,
            updated_at=timezone.now())


@transaction.atomic
def _finish(job: SynthesisJob) -> None:
    job.refresh_from_db()
    SynthesisJob.objects.filter(pk=job.pk).update(
        state=SynthesisJob.State.SUCCEEDED, stage="done", position=job.count,
        finished_at=timezone.now(), updated_at=timezone.now())
    ledger_append(actor=job.created_by, event="synthesis_job.finished", subject=job, payload={
        "source": job.source_id, "records": SyntheticRecord.objects.filter(job=job).count(),
        "documents_added": job.documents_added, "checkpoint_sha256": job.checkpoint_sha256,
        "params": json.loads(json.dumps(job.params))})
