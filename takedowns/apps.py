from django.apps import AppConfig


class TakedownsConfig(AppConfig):
    name = "takedowns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from datetime import timedelta

        from django.utils import timezone

        from provenance.services.jobs import recoverable, recoverable_jobs
        from takedowns.models import TakedownRequest, UnlearningRun

        recoverable_jobs(("unlearning", "takedowns.unlearn_run", UnlearningRun))
        # "scoping" also covers the minute the task may wait in its queue
        recoverable("takedown_scope", "takedowns.scope",
                    lambda: TakedownRequest.objects.filter(
                        state=TakedownRequest.State.SCOPING,
                        updated_at__lt=timezone.now() - timedelta(minutes=1)))
        recoverable("takedown_verify", "takedowns.unlearn_verify",
                    lambda: TakedownRequest.objects.filter(verification__state="running"))
