from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The kernel: abstract models only (no table, no migration), and the mail task."""

    name = "core"
    default_auto_field = "django.db.models.BigAutoField"
