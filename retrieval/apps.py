from django.apps import AppConfig


class RetrievalConfig(AppConfig):
    name = "retrieval"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core.jobs import recoverable_jobs
        from retrieval.models import Answer, Datastore

        recoverable_jobs(("datastore_build", "retrieval.datastore_build", Datastore),
                         ("answer", "retrieval.answer", Answer))
