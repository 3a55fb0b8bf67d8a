from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo loader's management commands (demo_load, demo_credentials); no models."""

    name = "demo"
    default_auto_field = "django.db.models.BigAutoField"
