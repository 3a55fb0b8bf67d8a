"""A purged document's text leaves retrieval too: its chunks are deleted (text and embedding),
and the answers that had it in their context lose that passage's text, in their passages, their
prompt and their model output's prompt. Registered with provenance's purge (apps.py), so it runs
in the purge's transaction."""

from __future__ import annotations

from django.db.models import Count, F

from attribution.models import ModelOutput
from retrieval.models import Answer, Chunk, Datastore

ERASED = "[passage erased]"


def copies_purge(document_ids: list[int]) -> dict[str, int]:
    held = dict(Chunk.objects.filter(document_id__in=document_ids).values_list("datastore")
                .annotate(n=Count("id")))
    chunks, _ = Chunk.objects.filter(document_id__in=document_ids).delete()
    for store, n in held.items():
        Datastore.objects.filter(pk=store).update(chunk_count=F("chunk_count") - n)
    answers = 0
    for doc in document_ids:
        for answer in Answer.objects.filter(passages__contains=[{"document": doc}]):
            _redact(answer, doc)
            answers += 1
    return {"chunks": chunks, "answers": answers}


def _redact(answer: Answer, document_id: int) -> None:
    prompt = answer.prompt
    for passage in answer.passages:
        if passage["document"] == document_id and passage["text"]:
            prompt = prompt.replace(passage["text"], ERASED)
            passage["text"], passage["erased"] = "", True
    answer.prompt = prompt
    answer.save(update_fields=["passages", "prompt", "updated_at"])
    if answer.output_id is not None:
        ModelOutput.objects.filter(pk=answer.output_id).update(prompt=prompt)
