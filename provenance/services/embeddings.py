"""Sentence embeddings of documents, computed in the background (default queue), never in the
ingest path: an ingest ends by asking for them, and the task embeds a batch and asks again
until none is left. Used as "similar content" evidence and to match takedown claims."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.conf import setting
from core.jobs import job_lock
from provenance.models import Document, EmbeddingBatch

log = logging.getLogger(__name__)


def int8_folder() -> Path:
    """This host's int8 build, named by what it depends on: a cache in the host's state folder,
    never in the artifact store (each host builds and checks its own, on its own CPU)."""
    from provenance.engine.embed_int8 import cache_name

    return Path(settings.STATE_DIR) / "cache" / cache_name()


def embed_texts(texts: Sequence[str]) -> tuple[np.ndarray, str]:
    """Embeddings of `texts` as this host computes them (EMBED_BACKEND; the int8 build is made
    and checked on first use, fp32 when it fails its check or a GPU is present), and the
    backend used. Documents and queries both come through here, so they are comparable."""
    import torch

    from provenance.engine import embed_int8
    from provenance.engine.embeddings import embed, int8_build

    if setting("EMBED_BACKEND") != "int8" or torch.cuda.is_available():
        return embed(texts), "fp32"
    folder = int8_folder()
    build = embed_int8.built(folder)
    if build is None:
        build = embed_int8.built_once(folder, int8_build)
        log.info("int8 embeddings: %s", build)
    if not build.passed:
        log.warning("int8 embeddings failed their check (min cosine %.4f < %.2f): fp32 used",
                    build.cosine_min, build.min_cosine)
        return embed(texts), "fp32"
    return embed(texts, device="cpu", int8=folder), "int8"


def embedding_backlog() -> bool:
    """Whether any document waits for its embedding (a partial index answers it)."""
    return Document.objects.filter(embedding__isnull=True, text_purged=False).exists()


def documents_embed(*, limit: int | None = None) -> int:
    """Embed up to `limit` documents that have no embedding yet; the number embedded. One
    process at a time (an advisory lock): a second caller returns 0 at once."""
    limit = limit or int(setting("EMBED_BATCH"))
    with job_lock("embed", 0) as mine:
        if not mine:
            return 0
        rows = list(Document.objects.filter(embedding__isnull=True, text_purged=False)
                    .order_by("id").values_list("id", "text")[:limit])
        if not rows:
            return 0
        start = time.perf_counter()
        vectors, backend = embed_texts([text for _, text in rows])
        with transaction.atomic():
            Document.objects.bulk_update(
                [Document(pk=pk, embedding=vector) for (pk, _), vector in
                 zip(rows, vectors, strict=True)], ["embedding"], batch_size=500)
            now = timezone.now()
            EmbeddingBatch.objects.filter(finished_at__lt=now - timedelta(days=7)).delete()
            EmbeddingBatch.objects.create(finished_at=now, documents=len(rows), backend=backend,
                                          seconds=time.perf_counter() - start)
        return len(rows)


def documents_embed_later() -> None:
    """Ask the default queue to embed what is pending, after this transaction commits.

    Robust: a broker that stays down past the publish retries costs only this nudge (logged),
    not the ingest that asked; the next nudge embeds everything still pending."""
    from provenance.tasks import embed_documents_task

    transaction.on_commit(embed_documents_task.delay, robust=True)
