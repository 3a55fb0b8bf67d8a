"""Span indexes: build one per (version, tokenizer), and trace a model output's verbatim spans.

Removed documents stay in the index (counts stay true) but are reported as blocked, with no text,
from the tombstones at query time: a takedown needs no rebuild.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from attribution.engine.spans import PackedSpans, SpanParams, SpanShard, find_spans, write_index
from attribution.models import ModelOutput, SpanIndex
from attribution.services.waiting import runs_waiting_resume
from core.jobs import claim_row, job_run
from core.storage import (
    artifact_local,
    artifact_path,
    artifact_publish,
    artifact_ref,
    artifact_remove,
)
from provenance.models import DatasetVersion, Document, ModelCheckpoint, User

State = SpanIndex.State


@transaction.atomic
def span_index_create(*, version: DatasetVersion, checkpoint: ModelCheckpoint,
                      actor: User | None, enqueue: bool = True) -> SpanIndex:
    index, created = SpanIndex.objects.get_or_create(
        version=version, checkpoint=checkpoint,
        defaults={"created_by": actor, "unit": "sources"})
    if created and enqueue:
        from attribution.tasks import span_index_build_task

        span_index_build_task.delay_on_commit(index.pk)
    return index


def _tokenizer(path: str) -> Any:
    """A checkpoint's tokenizer, from its folder."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, local_files_only=True)


def trained_texts(checkpoint: ModelCheckpoint, version: DatasetVersion) -> dict[int, str]:
    """Each member's text as the checkpoint trained on it: with the run's canaries woven in (so
    a memorised canary is traced to its carriers), without watermark characters (the model
    never emits them as text), removed documents included (still counted, shown as blocked)."""
    from provenance.services.training import training_export

    if checkpoint.run is None:
        return dict(version.members.values_list("document_id", "document__text"))
    marks = {"canaries": (checkpoint.run.marks or {}).get("canaries", {})}
    export = training_export(version, marks, watermarks=False, include_removed=True)
    return dict(zip(export.documents, export.texts, strict=True))


def span_index_build(*, index_id: int) -> SpanIndex | None:
    folder = Path(settings.ARTIFACT_DIR) / "span_indexes" / str(index_id)
    with job_run("span_index", index_id, model=SpanIndex,
                 claim=claim_row(SpanIndex, related=("checkpoint__run", "version"))) as index:
        if index is None:
            return None
        artifact_remove(folder)  # a rerun starts clean, here and in the store
        tokenizer = _tokenizer(index.checkpoint.local_path)
        by_source: dict[int, list[tuple[int, str]]] = {}
        texts = trained_texts(index.checkpoint, index.version)
        for doc, source in index.version.members.values_list(
                "document_id", "source_id").order_by("document_id"):
            by_source.setdefault(source, []).append((doc, texts[doc]))
        SpanIndex.objects.filter(pk=index_id).update(total=len(by_source))

        def tokenized() -> Iterator[tuple[str, list[tuple[int, Any]]]]:
            for done, (source, docs) in enumerate(sorted(by_source.items()), start=1):
                ids = tokenizer([t for _, t in docs], add_special_tokens=False)["input_ids"]
                yield str(source), list(zip([d for d, _ in docs], ids, strict=True))
                SpanIndex.objects.filter(pk=index_id).update(position=done)

        # One suffix array per group of sources (all of them up to GROUP_TOKENS), packed.
        shards = write_index(folder, tokenized())
        artifact_publish(folder)  # before the row says it is built: runs may be elsewhere
        SpanIndex.objects.filter(pk=index_id).update(
            state=State.SUCCEEDED, path=artifact_ref(folder), shards=shards,
            finished_at=timezone.now())
    index.refresh_from_db()
    runs_waiting_resume(span_index=index)  # succeeded or failed: the runs waiting on it go on
    return index


@lru_cache(maxsize=4)
def opened_index(path: str, sources: tuple[str, ...],
                 tokenizer_path: str) -> tuple[PackedSpans, Any]:
    """A built index's arrays (memory-mapped) and its tokenizer, kept open in this process: a
    built index never changes in place (a rebuild is a new index)."""
    tokenizer = _tokenizer(tokenizer_path)
    folder = artifact_local(path)
    if (folder / "packed.json").exists():
        return PackedSpans.open(folder), tokenizer
    # Built before packing: one folder per source, packed in memory.
    return PackedSpans.pack([SpanShard.open(folder / s) for s in sources], sources), tokenizer


def spans_of_text(text: str, index: SpanIndex, params: SpanParams | None = None
                  ) -> tuple[list[int], list[Any], Any]:
    """The text's token ids, its maximal verbatim spans in the index, and the tokenizer."""
    if index.state != State.SUCCEEDED:
        raise ValueError(f"span index {index.pk} is {index.state}")
    packed, tokenizer = opened_index(str(artifact_path(index.path)), tuple(sorted(index.shards)),
                                     index.checkpoint.local_path)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids, find_spans(packed, ids, params or SpanParams(), blocked=frozenset()), tokenizer


def trace_output(*, output: ModelOutput, index: SpanIndex,
                 params: SpanParams | None = None) -> list[dict[str, Any]]:
    """The verbatim spans of an output's completion, with the documents they occur in (an
    index not yet built is refused by spans_of_text)."""
    from provenance.engine.watermark import strip

    # Watermark characters in the output are evidence for the watermark method, not text.
    ids, candidates, tokenizer = spans_of_text(strip(output.completion), index, params)
    doc_ids = {d.document for s in candidates for d in s.documents}
    removed = set(Document.objects.filter(pk__in=doc_ids, removed_at__isnull=False)
                  .values_list("pk", flat=True))
    return [{"start": s.start, "length": s.length, "count": s.count,
             "text": tokenizer.decode(ids[s.start:s.start + s.length]),
             "documents": [{"document": d.document, "blocked": d.document in removed}
                           for d in s.documents]}
            for s in candidates]
