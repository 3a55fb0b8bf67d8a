"""The Celery app. Queues: "default" (ingest, curation, cards, ledger) and "gpu" (torch work)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("trailmark")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
