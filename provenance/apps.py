from django.apps import AppConfig


class ProvenanceConfig(AppConfig):
    name = "provenance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from provenance.models import CanaryTestRun, CurationJob, IngestJob, TrainingRun
        from provenance.services.jobs import recoverable_jobs

        recoverable_jobs(("ingest", "provenance.ingest_run", IngestJob),
                         ("curation", "provenance.curate_run", CurationJob),
                         ("training", "provenance.train_run", TrainingRun),
                         ("canary_test", "provenance.canary_test", CanaryTestRun))
