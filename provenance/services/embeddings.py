"""Sentence embeddings of documents, computed in the background (default queue), never in the
ingest path: an ingest ends by asking for them, and the task embeds a batch and asks again
until none is left. Used as "similar content" evidence and to match takedown claims."""

from __future__ import annotations

from django.db import transaction

from core.conf import setting
from core.jobs import job_lock
from provenance.models import Document


def documents_pending_embedding() -> int:
    return Document.objects.filter(embedding__isnull=True, text_purged=False).count()


def embedding_backlog() -> bool:
    """Whether any document waits for its embedding (a partial index answers it)."""
    return Document.objects.filter(embedding__isnull=True, text_purged=False).exists()


def documents_embed(*, limit: int | None = None) -> int:
    """Embed up to `limit` documents that have no embedding yet; the number embedded. One
    process at a time (an advisory lock): a second caller returns 0 at once."""
    from provenance.engine.embeddings import embed

    limit = limit or int(setting("EMBED_BATCH"))
    with job_lock("embed", 0) as mine:
        if not mine:
            return 0
        rows = list(Document.objects.filter(embedding__isnull=True, text_purged=False)
                    .order_by("id").values_list("id", "text")[:limit])
        if not rows:
            return 0
        vectors = embed([text for _, text in rows])
        with transaction.atomic():
            Document.objects.bulk_update(
                [Document(pk=pk, embedding=vector) for (pk, _), vector in
                 zip(rows, vectors, strict=True)], ["embedding"], batch_size=500)
        return len(rows)


def documents_embed_later() -> None:
    """Ask the default queue to embed what is pending, after this transaction commits.

    Robust: a broker that stays down past the publish retries costs only this nudge (logged),
    not the ingest that asked; the next nudge embeds everything still pending."""
    from provenance.tasks import embed_documents_task

    transaction.on_commit(embed_documents_task.delay, robust=True)
