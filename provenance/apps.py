from django.apps import AppConfig


class ProvenanceConfig(AppConfig):
    name = "provenance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from provenance.models import CanaryTestRun, CurationJob, IngestJob, Job, TrainingRun
        from provenance.services.jobs import recoverable

        running = Job.State.RUNNING
        recoverable("ingest", "provenance.ingest_run",
                    lambda: IngestJob.objects.filter(state=running))
        recoverable("curation", "provenance.curate_run",
                    lambda: CurationJob.objects.filter(state=running))
        recoverable("training", "provenance.train_run",
                    lambda: TrainingRun.objects.filter(state=running))
        recoverable("canary_test", "provenance.canary_test",
                    lambda: CanaryTestRun.objects.filter(state=running))
