import os

# What the caller set, before celery.py puts in its default: the launcher (config.embedded) picks
# the default for its own command (local settings for `run`, test settings for `exec`).
CALLER_SETTINGS_MODULE = os.environ.get("DJANGO_SETTINGS_MODULE")

from .celery import app as celery_app  # noqa: E402  (shared tasks bind to this app)

__all__ = ["celery_app", "CALLER_SETTINGS_MODULE"]
