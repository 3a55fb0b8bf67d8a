from django.apps import AppConfig


class BenchmarksConfig(AppConfig):
    name = "benchmarks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from benchmarks.models import BenchmarkRun, Trial
        from core.jobs import queued_stale, recoverable, recoverable_jobs, send_again

        # A trial whose worker died is sent again (its training resumes). A run is resumed
        # only while it plans (stage "checking"); once its trials are out, the last of them
        # sends the finalizer, so a running run with no runner is waiting, not lost.
        recoverable_jobs(("benchmark_trial", "benchmarks.trial", Trial))
        recoverable("benchmark", lambda: BenchmarkRun.objects.filter(
            state=BenchmarkRun.State.RUNNING, stage="checking").values_list("pk", flat=True),
            send_again("benchmarks.run_plan"), queued_stale(BenchmarkRun))
