"""Datastores built from published versions: queued, built in resumable batches, in the ledger."""

from __future__ import annotations

import logging

import numpy as np
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from core.jobs import claim_row, job_progress, job_run
from provenance.ledger.append import ledger_append
from provenance.models import DatasetVersion, Document, User
from retrieval.models import Chunk, Datastore

log = logging.getLogger(__name__)
BATCH = 64  # documents per transaction: a killed build redoes at most one batch


@transaction.atomic
def datastore_create(*, version: DatasetVersion, name: str, actor: User | None,
                     chunk_tokens: int = 128, overlap_tokens: int = 32,
                     enqueue: bool = True) -> Datastore:
    if version.state != DatasetVersion.State.PUBLISHED:
        raise ValidationError({"version": f"version {version.pk} is {version.state}; a datastore "
                                          "is built from a published version"})
    if not 16 <= chunk_tokens <= 256:  # the embedder's window is 256 tokens
        raise ValidationError({"chunk_tokens": "between 16 and 256 tokens (the embedder's "
                                               "window)"})
    if not 0 <= overlap_tokens < chunk_tokens:
        raise ValidationError({"overlap_tokens": "at least 0 and less than chunk_tokens"})
    if Datastore.objects.filter(name=name).exists():
        raise ValidationError({"name": f"a datastore named {name!r} exists"})
    store = Datastore.objects.create(
        name=name, version=version, chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens,
        created_by=actor, unit="documents", total=version.document_count)
    ledger_append(actor=actor, event="datastore.created", subject=store,
                  payload={"version": version.pk, "manifest_root": version.manifest_root,
                           "chunk_tokens": chunk_tokens, "overlap_tokens": overlap_tokens})
    if enqueue:
        from retrieval.tasks import datastore_build_task

        datastore_build_task.delay_on_commit(store.pk)
    return store


def _members(store: Datastore) -> QuerySet[Document]:
    """The version's documents a build chunks. Documents removed before the build are left out
    (their text may already be gone); one removed later stays in the datastore's rows and is
    refused at query time."""
    return Document.objects.filter(memberships__version_id=store.version_id,
                                   removed_at__isnull=True, text_purged=False)


def _next_documents(store: Datastore, after: int) -> list[tuple[int, str]]:
    """The next batch of members, in id order, after document id `after`."""
    return list(_members(store).filter(pk__gt=after).order_by("pk")
                .values_list("pk", "text")[:BATCH])


def _write(store: Datastore, batch: list[tuple[int, str]]) -> int:
    from provenance.services.embeddings import embed_texts
    from retrieval.engine.chunking import chunk

    spans = chunk([text for _, text in batch], store.chunk_tokens, store.overlap_tokens)
    rows = [(doc_id, text, span) for (doc_id, text), doc_spans in zip(batch, spans, strict=True)
            for span in doc_spans]
    vectors, backend = (embed_texts([text[s.start:s.end] for _, text, s in rows])
                        if rows else (np.zeros((0, 384), np.float32), store.embedder))
    with transaction.atomic():  # a batch's chunks and the datastore's place commit together
        Chunk.objects.bulk_create([
            Chunk(datastore=store, document_id=doc_id, ordinal=s.ordinal, start=s.start,
                  end=s.end, text=text[s.start:s.end], embedding=vector)
            for (doc_id, text, s), vector in zip(rows, vectors, strict=True)])
        Datastore.objects.filter(pk=store.pk).update(embedder=backend or "")
    return len(rows)


def datastore_build(*, datastore_id: int) -> Datastore | None:
    """Chunk, embed and index every document of the version, a batch at a time. Resumes after
    the last document whose chunks are stored (documents go in id order, a batch in one
    transaction), so a killed build neither loses nor doubles a chunk."""
    with job_run("datastore_build", datastore_id, model=Datastore,
                 claim=claim_row(Datastore, stage="chunking and embedding")) as store:
        if store is None:
            return None
        done = store.chunks.aggregate(last=Max("document_id"))["last"] or 0
        position = _members(store).filter(pk__lte=done).count()
        while batch := _next_documents(store, done):
            _write(store, batch)
            done = batch[-1][0]
            position += len(batch)
            job_progress(Datastore, datastore_id, position)
        _finish(store, position)
    store.refresh_from_db()
    return store


@transaction.atomic
def _finish(store: Datastore, position: int) -> None:
    chunks = store.chunks.count()
    documents = store.chunks.values("document").distinct().count()
    Datastore.objects.filter(pk=store.pk).update(
        state=Datastore.State.SUCCEEDED, stage="done", position=position, chunk_count=chunks,
        document_count=documents, finished_at=timezone.now(), updated_at=timezone.now())
    store.refresh_from_db()
    with connection.cursor() as cursor:  # fresh word statistics for the keyword leg
        cursor.execute("ANALYZE retrieval_chunk")
    ledger_append(actor=store.created_by, event="datastore.built", subject=store,
                  payload={"version": store.version_id, "documents": documents,
                           "chunks": chunks, "embedder": store.embedder})
