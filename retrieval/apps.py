from django.apps import AppConfig


class RetrievalConfig(AppConfig):
    name = "retrieval"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core.jobs import recoverable_jobs
        from provenance.services.documents import purge_hook_register
        from retrieval.models import Answer, Datastore
        from retrieval.services.erasure import copies_purge

        recoverable_jobs(("datastore_build", "retrieval.datastore_build", Datastore),
                         ("answer", "retrieval.answer", Answer))
        purge_hook_register(copies_purge)
