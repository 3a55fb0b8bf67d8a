from typing import Any

from django.apps import AppConfig


class DashboardsConfig(AppConfig):
    name = "dashboards"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from benchmarks.signals import benchmark_finished
        from provenance.signals import version_published

        version_published.connect(_render_cards_after_commit,
                                  dispatch_uid="dashboards.render_cards")
        benchmark_finished.connect(_render_entries_cards_after_commit,
                                   dispatch_uid="dashboards.render_benchmarked_cards")


def _render_cards_after_commit(sender: Any, version: Any, **kwargs: Any) -> None:
    from dashboards.tasks import card_render_task

    card_render_task.delay_on_commit(version.pk)


def _render_entries_cards_after_commit(sender: Any, versions: Any, **kwargs: Any) -> None:
    """A benchmark's results go into each entry's draft card (a published card stays as it was
    published: a revision publishes them)."""
    from dashboards.tasks import card_render_task

    for version in versions:
        card_render_task.delay_on_commit(version.pk)
