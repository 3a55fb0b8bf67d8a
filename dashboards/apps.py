from typing import Any

from django.apps import AppConfig


class DashboardsConfig(AppConfig):
    name = "dashboards"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from provenance.signals import version_published

        version_published.connect(_render_cards_after_commit,
                                  dispatch_uid="dashboards.render_cards")


def _render_cards_after_commit(sender: Any, version: Any, **kwargs: Any) -> None:
    from dashboards.tasks import card_render_task

    card_render_task.delay_on_commit(version.pk)
