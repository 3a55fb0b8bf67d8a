"""Celery entry points: thin, take ids, safe to run twice. The work is in services."""

from __future__ import annotations

from celery import shared_task

from core.jobs import JOB_TASK


@shared_task(name="provenance.ingest_run", **JOB_TASK,
             soft_time_limit=6 * 60 * 60, time_limit=6 * 60 * 60 + 300)
def ingest_run_task(job_id: int) -> None:
    from provenance.services.ingest import ingest_run

    ingest_run(job_id=job_id, shards=True)


@shared_task(name="provenance.curate_run", **JOB_TASK,
             soft_time_limit=2 * 60 * 60, time_limit=2 * 60 * 60 + 300)
def curate_run_task(job_id: int) -> None:
    from provenance.services.curation import curation_run

    curation_run(job_id=job_id)


@shared_task(name="provenance.train_run", **JOB_TASK,
             soft_time_limit=12 * 60 * 60, time_limit=12 * 60 * 60 + 600)
def train_run_task(run_id: int) -> None:
    from provenance.services.training import training_run_execute

    training_run_execute(run_id=run_id)


@shared_task(name="provenance.canary_test", **JOB_TASK,
             soft_time_limit=60 * 60, time_limit=60 * 60 + 300)
def canary_test_task(run_id: int) -> None:
    from provenance.services.canaries import canary_test_run_execute

    canary_test_run_execute(run_id=run_id)


@shared_task(name="provenance.embed_documents", **JOB_TASK,
             soft_time_limit=30 * 60, time_limit=31 * 60)
def embed_documents_task() -> None:
    """One batch, then the next as a new task: small chunks that a restart loses nothing of."""
    from provenance.services.embeddings import documents_embed

    if documents_embed() > 0:
        embed_documents_task.delay()


@shared_task(name="provenance.ledger_checkpoint", ignore_result=True, expires=55,
             soft_time_limit=50, time_limit=60)
def ledger_checkpoint_task() -> None:
    """Sign the ledger's tail (beat, every minute): an entry left unsigned for long is what a
    deleted checkpoint looks like, and `ledger verify` reports it. Expires so that a backlog
    of these after downtime collapses into the next one."""
    from provenance.ledger.proofs import ledger_checkpoint_latest

    ledger_checkpoint_latest()


@shared_task(name="provenance.jobs_recover", ignore_result=True, expires=25,
             soft_time_limit=60, time_limit=90)
def jobs_recover_task() -> None:
    """Every 30 s (beat) and when a worker starts: resume the jobs whose worker died."""
    from core.jobs import jobs_recover

    jobs_recover()


@shared_task(name="provenance.ingest_shard", **JOB_TASK,
             soft_time_limit=6 * 60 * 60, time_limit=6 * 60 * 60 + 300)
def ingest_shard_task(shard_id: int) -> None:
    from provenance.services.ingest_shards import shard_run

    shard_run(shard_id=shard_id)


@shared_task(name="provenance.synthesize_run", **JOB_TASK,
             soft_time_limit=12 * 60 * 60, time_limit=12 * 60 * 60 + 600)
def synthesize_run_task(job_id: int) -> None:
    """Routed to the gpu queue: the checkpoint generates every document."""
    from provenance.services.synthesis import synthesis_run

    synthesis_run(job_id=job_id)
