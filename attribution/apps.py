from django.apps import AppConfig


class AttributionConfig(AppConfig):
    name = "attribution"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # A gradient index is built by a chord of shard tasks that hold no lock: a shard lost
        # with its worker comes back with the broker's redelivery, or staff rebuild the index.
        from attribution.models import AttributionRun, ModelOutput, SpanIndex
        from core.jobs import recoverable_jobs

        recoverable_jobs(("generate", "attribution.generate", ModelOutput),
                         ("span_index", "attribution.span_index_build", SpanIndex),
                         ("attribution_run", "attribution.run_execute", AttributionRun))
