"""Retrieval's tasks: thin, by id, safe to run twice."""

from __future__ import annotations

from celery import shared_task

from core.jobs import JOB_TASK


@shared_task(name="retrieval.datastore_build", **JOB_TASK,
             soft_time_limit=12 * 60 * 60, time_limit=12 * 60 * 60 + 600)
def datastore_build_task(datastore_id: int) -> None:
    from retrieval.services.datastores import datastore_build  # torch loads in the worker only

    datastore_build(datastore_id=datastore_id)


@shared_task(name="retrieval.embed_query", ignore_result=False, acks_late=False,
             soft_time_limit=30, time_limit=40, expires=30)
def embed_query_task(query: str) -> list[float]:
    """A query's embedding, computed where the model runs (the web process never imports
    torch), by the same `embed_texts` the chunks went through. Its caller waits a few seconds at
    most and answers from keywords alone without it; `expires`: an answer nobody waits for any
    more is not computed."""
    from provenance.services.embeddings import embed_texts

    return [float(x) for x in embed_texts([query])[0][0]]


@shared_task(name="retrieval.answer", **JOB_TASK, soft_time_limit=30 * 60, time_limit=31 * 60)
def answer_task(answer_id: int) -> None:
    """Routed to the gpu queue: generation and the ablations' forward passes."""
    from retrieval.services.answers import answer_run

    answer_run(answer_id=answer_id)
