"""Reads, scoped to what the asking user may see."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from django.db.models import Count, Exists, OuterRef, QuerySet, Sum
from django.utils import timezone

from core.permissions import Capability, Role, can, role_of
from provenance.models import (
    CanaryTestRun,
    CurationJob,
    Dataset,
    DatasetVersion,
    DataSource,
    Document,
    EmbeddingBatch,
    IngestJob,
    LedgerEntry,
    ModelCheckpoint,
    Occurrence,
    RightsHolder,
    TrainingRun,
)

RATE_WINDOW = timedelta(hours=1)  # the embedding rate: the batches finished in this window


def rights_holder_list(user: Any) -> QuerySet[RightsHolder]:
    role = role_of(user)
    if can(user, Capability.READ_ALL):
        return RightsHolder.objects.all()
    if role == Role.RIGHTS_HOLDER:
        return RightsHolder.objects.filter(pk=user.rights_holder_id)
    return RightsHolder.objects.none()


def source_list(user: Any) -> QuerySet[DataSource]:
    role = role_of(user)
    qs = DataSource.objects.select_related("owner")
    if can(user, Capability.READ_ALL):
        return qs
    if role == Role.RIGHTS_HOLDER:
        return qs.filter(owner_id=user.rights_holder_id)
    return qs.none()


def document_list(user: Any) -> QuerySet[Document]:
    role = role_of(user)
    if can(user, Capability.READ_ALL):
        return Document.objects.all()
    if role == Role.RIGHTS_HOLDER:
        mine = Occurrence.objects.filter(document=OuterRef("pk"),
                                         source__owner_id=user.rights_holder_id)
        return Document.objects.filter(Exists(mine))
    return Document.objects.none()


def occurrence_list(user: Any) -> QuerySet[Occurrence]:
    """Where documents were seen, with their records' metadata: in the sources the user sees."""
    role = role_of(user)
    if can(user, Capability.READ_ALL):
        return Occurrence.objects.all()
    if role == Role.RIGHTS_HOLDER:
        return Occurrence.objects.filter(source__owner_id=user.rights_holder_id)
    return Occurrence.objects.none()


def dataset_list(user: Any) -> QuerySet[Dataset]:
    if can(user, Capability.READ_ALL):
        return Dataset.objects.all()
    published = DatasetVersion.objects.filter(dataset=OuterRef("pk"),
                                              state=DatasetVersion.State.PUBLISHED)
    return Dataset.objects.filter(Exists(published))


def version_list(user: Any) -> QuerySet[DatasetVersion]:
    qs = DatasetVersion.objects.select_related("dataset")
    if can(user, Capability.READ_ALL):
        return qs
    return qs.filter(state=DatasetVersion.State.PUBLISHED)


def ingest_job_list(user: Any) -> QuerySet[IngestJob]:
    role = role_of(user)
    qs = IngestJob.objects.select_related("source").prefetch_related("shards")
    if can(user, Capability.AUDIT):
        return qs
    if role == Role.RIGHTS_HOLDER:
        return qs.filter(source__owner_id=user.rights_holder_id)
    return qs.none()


def curation_job_list(user: Any) -> QuerySet[CurationJob]:
    return CurationJob.objects.select_related("dataset") if can(user, Capability.READ_ALL) else \
        CurationJob.objects.none()


def ledger_list(user: Any) -> QuerySet[LedgerEntry]:
    """Entries with their actor resolved through the erasable commitments (None once erased)."""
    if not can(user, Capability.AUDIT):
        return LedgerEntry.objects.none()
    from django.db.models import OuterRef, Subquery

    from provenance.models import PersonCommitment

    return LedgerEntry.objects.annotate(actor_name=Subquery(
        PersonCommitment.objects.filter(reference=OuterRef("actor_label")).values("label")[:1]))




def training_run_list(user: Any) -> QuerySet[TrainingRun]:
    if can(user, Capability.READ_ALL):
        return TrainingRun.objects.select_related("version", "checkpoint")
    return TrainingRun.objects.none()


def checkpoint_list(user: Any) -> QuerySet[ModelCheckpoint]:
    if can(user, Capability.READ_ALL):
        return ModelCheckpoint.objects.select_related("version")
    return ModelCheckpoint.objects.none()


def canary_test_run_list(user: Any) -> QuerySet[CanaryTestRun]:
    if can(user, Capability.READ_ALL):
        return CanaryTestRun.objects.prefetch_related("results")
    return CanaryTestRun.objects.none()


def embedding_status() -> dict[str, Any]:
    """The backlog and the pace of the background embedding, for the jobs board: documents
    waiting, documents embedded in the last hour and their texts/s while embedding, and the
    time the backlog needs at that pace (None without a recent batch)."""
    pending = Document.objects.filter(embedding__isnull=True, text_purged=False).count()
    recent = EmbeddingBatch.objects.filter(
        finished_at__gte=timezone.now() - RATE_WINDOW).aggregate(
        documents=Sum("documents"), seconds=Sum("seconds"), batches=Count("id"))
    documents, seconds = recent["documents"] or 0, recent["seconds"] or 0.0
    rate = documents / seconds if seconds > 0 else None
    return {"pending": pending, "recent_documents": documents,
            "recent_batches": recent["batches"], "rate": rate,
            "eta_minutes": math.ceil(pending / rate / 60) if rate and pending else None}

