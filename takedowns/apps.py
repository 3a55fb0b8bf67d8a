from django.apps import AppConfig


class TakedownsConfig(AppConfig):
    name = "takedowns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from attribution.services.outputs import completion_filter_register
        from core.jobs import recoverable_jobs, recoverable_rows
        from takedowns.models import TakedownRequest, UnlearningRun
        from takedowns.services.filters import output_filter_apply

        # A checkpoint that still holds a removed work does not repeat it (interim filters).
        completion_filter_register(output_filter_apply)
        recoverable_jobs(("unlearning", "takedowns.unlearn_run", UnlearningRun))
        # A request stays in "scoping" while curators review its matches: only a scoping task
        # that was running when its worker died is resumed.
        recoverable_rows("takedown_scope", "takedowns.scope",
                         lambda: TakedownRequest.objects.filter(
                             state=TakedownRequest.State.SCOPING, scope__job__state="running"))
        recoverable_rows("takedown_verify", "takedowns.unlearn_verify",
                         lambda: TakedownRequest.objects.filter(verification__state="running"))
