from django.apps import AppConfig


class AttributionConfig(AppConfig):
    name = "attribution"
    default_auto_field = "django.db.models.BigAutoField"
