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
    DatasetVersion,
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
SELECTIONS = ("diversity", "uncertainty", "order")


def synthesis_validate(template: Any, inputs: Any, params: Any,
                       pooled: bool = False) -> dict[str, Any]:
    if not isinstance(template, str) or not template.strip():
        raise ValidationError({"template": "a prompt: text, with {input} where a pool input goes"})
    if not isinstance(inputs, list) or not all(isinstance(i, str) and i.strip() for i in inputs):
        raise ValidationError({"inputs": "a list of non-empty strings"})
    if len(inputs) > MAX_INPUTS:
        raise ValidationError({"inputs": f"at most {MAX_INPUTS:,}"})
    if inputs and SLOT not in template:
        raise ValidationError({"template": "has no {input} for the pool's inputs to go in"})
    if pooled and inputs:
        raise ValidationError({"inputs": "a label job takes its inputs from the pool version"})
    if pooled and SLOT not in template:
        raise ValidationError({"template": "has no {input} for the document to label"})
    if not inputs and not pooled and SLOT in template:
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


def prompt_for(job: SynthesisJob, index: int, pooled: str | None = None) -> str:
    """Prompt `index`: the template with the pool's input (or, in a label job, the text of the
    document being labelled)."""
    if pooled is not None:
        return job.template.replace(SLOT, pooled)
    return job.template.replace(SLOT, job.inputs[index % len(job.inputs)]) if job.inputs \
        else job.template


def seed_for(job: SynthesisJob, index: int) -> int:
    return job.seed * 1_000_003 + index


@transaction.atomic
def synthesis_job_create(*, actor: User | None, checkpoint: ModelCheckpoint, owner: RightsHolder,
                         name: str, license_expression: str, template: str, count: int,
                         inputs: list[str] | None = None, params: dict[str, Any] | None = None,
                         seed: int = 0, pool_version: DatasetVersion | None = None,
                         selection: str = "", enqueue: bool = True) -> SynthesisJob:
    """The derived source and the job that fills it. `license_expression` is the licence the
    generated text is put under by its owner (what the lineage's licences then restrict).
    With `pool_version`, a label job: `count` of its documents, chosen by `selection`
    (diversity, uncertainty or order), each labelled."""
    if not 1 <= count <= MAX_COUNT:
        raise ValidationError({"count": f"between 1 and {MAX_COUNT:,}"})
    if pool_version is not None:
        if not pool_version.is_published:
            raise ValidationError({"pool_version": "a published version (a draft can change)"})
        if count > pool_version.document_count:
            raise ValidationError({"count": f"the pool version has "
                                            f"{pool_version.document_count} documents"})
        selection = selection or "diversity"
        if selection not in SELECTIONS:
            raise ValidationError({"selection": f"one of {', '.join(SELECTIONS)}"})
    elif selection:
        raise ValidationError({"selection": "only for a label job (give pool_version)"})
    decoded = synthesis_validate(template, inputs or [], params or {},
                                 pooled=pool_version is not None)
    source = source_create(actor=actor, owner=owner, name=name,
                           license_expression=license_expression,
                           acquisition=DataSource.Acquisition.SYNTHETIC, generator=checkpoint,
                           description=f"Synthetic text written by checkpoint {checkpoint.name} "
                                       f"(sha256 {checkpoint.sha256[:16]}…)")
    job = SynthesisJob.objects.create(
        checkpoint=checkpoint, source=source, template=template, inputs=inputs or [],
        count=count, params=decoded, seed=seed, checkpoint_sha256=checkpoint.sha256,
        pool_version=pool_version, selection=selection, total=count, unit="documents",
        created_by=actor)
    ledger_append(actor=actor, event="synthesis_job.created", subject=job, payload={
        "checkpoint": checkpoint.pk, "checkpoint_sha256": checkpoint.sha256,
        "source": source.pk, "count": count, "template": template, "inputs": len(job.inputs),
        "params": decoded, "seed": seed, "pool_version": pool_version and pool_version.pk,
        "selection": selection})
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
        if job.pool_version_id and not job.pool_documents:
            from provenance.services.labels import pool_choose

            job.pool_documents = pool_choose(job, model, tokenizer)  # once: a rerun keeps it
            SynthesisJob.objects.filter(pk=job.pk).update(pool_documents=job.pool_documents,
                                                          total=len(job.pool_documents))
        total = len(job.pool_documents) if job.pool_version_id else job.count
        # The position commits with each batch's records: a rerun starts where they end.
        for first in range(job.position, total, BATCH):
            indexes = list(range(first, min(first + BATCH, total)))
            pooled = _pool_texts(job, indexes)
            prompts = [prompt_for(job, i, pooled.get(i)) for i in indexes]
            outputs = [lm.generate(model, tokenizer, prompt, DecodeParams.from_dict(
                {**job.params, "seed": seed_for(job, i)})) for i, prompt in zip(
                indexes, prompts, strict=True)]
            _store(job, indexes, prompts, outputs, labelled=bool(pooled))
            if on_progress:
                on_progress(indexes[-1] + 1, total)
        _finish(job, total)
    return SynthesisJob.objects.filter(pk=job_id).first()


def _pool_texts(job: SynthesisJob, indexes: list[int]) -> dict[int, str]:
    """A label job's documents for these indexes (index -> text); {} for a generation job."""
    if not job.pool_version_id:
        return {}
    ids = {i: job.pool_documents[i] for i in indexes}
    texts = dict(Document.objects.filter(pk__in=ids.values()).values_list("pk", "text"))
    return {i: texts[pk] for i, pk in ids.items()}


def _store(job: SynthesisJob, indexes: list[int], prompts: list[str], outputs: list[str],
           labelled: bool = False) -> None:
    """One batch: its documents and occurrences (ingest's path), their records and the job's
    position, in one transaction. A generated document is the output; a labelled one is the
    prompt (the document in the template) with its label. An empty output makes none."""
    kept = [(i, prompt, out, prompt + out if labelled else out)
            for i, prompt, out in zip(indexes, prompts, outputs, strict=True) if out.strip()]
    rows = [Row(file=f"synthesis-job-{job.pk}", line=i, text=text, meta={
        "synthesis_job": job.pk, "index": i, "checkpoint_sha256": job.checkpoint_sha256,
        "seed": seed_for(job, i), **({"labelled_document": job.pool_documents[i],
                                      "label": out} if labelled else {})})
            for i, _, out, text in kept]
    batch = prepare_batch(rows, indexes[-1] + 1)
    with transaction.atomic():
        added, linked, linked_bytes, _ = rows_store(batch.staged, source_id=job.source_id,
                                                    job_id=None)
        by_sha = dict(Document.objects.filter(sha256__in=[s[0] for s in batch.staged],
                                              removed_at__isnull=True)  # not a blocked text
                      .values_list("sha256", "pk"))
        SyntheticRecord.objects.bulk_create([
            SyntheticRecord(job=job, index=i, document_id=by_sha[sha], prompt=prompt,
                            seed=seed_for(job, i), label=out if labelled else "",
                            input_document_id=job.pool_documents[i] if labelled else None)
            for i, prompt, out, text in kept if (sha := prepare(text).sha256) in by_sha])
        if linked:
            DataSource.objects.filter(pk=job.source_id).update(
                document_count=F("document_count") + linked,
                byte_count=F("byte_count") + linked_bytes)
        SynthesisJob.objects.filter(pk=job.pk).update(
            position=indexes[-1] + 1, documents_added=F("documents_added") + added,
            updated_at=timezone.now())


@transaction.atomic
def _finish(job: SynthesisJob, total: int) -> None:
    job.refresh_from_db()
    SynthesisJob.objects.filter(pk=job.pk).update(
        state=SynthesisJob.State.SUCCEEDED, stage="done", position=total,
        finished_at=timezone.now(), updated_at=timezone.now())
    ledger_append(actor=job.created_by, event="synthesis_job.finished", subject=job, payload={
        "source": job.source_id, "records": SyntheticRecord.objects.filter(job=job).count(),
        "documents_added": job.documents_added, "checkpoint_sha256": job.checkpoint_sha256,
        "params": json.loads(json.dumps(job.params))})
