from django.apps import AppConfig


class ProvenanceConfig(AppConfig):
    name = "provenance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core.jobs import recoverable, recoverable_jobs
        from provenance.models import (
            CanaryTestRun,
            CurationJob,
            IngestJob,
            SynthesisJob,
            TrainingRun,
        )
        from provenance.services.embeddings import documents_embed_later, embedding_backlog

        recoverable_jobs(("ingest", "provenance.ingest_run", IngestJob),
                         ("curation", "provenance.curate_run", CurationJob),
                         ("training", "provenance.train_run", TrainingRun),
                         ("canary_test", "provenance.canary_test", CanaryTestRun),
                         ("synthesis", "provenance.synthesize_run", SynthesisJob))
        # The embedding backlog: one runner (lock "embed", id 0) while any document waits.
        recoverable("embed", lambda: [0] if embedding_backlog() else [],
                    lambda _: documents_embed_later())
