"""The Celery app. Queues: "default" (ingest, curation, cards, ledger) and "gpu" (torch work)."""

import os

from celery import Celery
from celery.signals import worker_ready

# Production unless told otherwise, as for the web server (config/wsgi.py): this module is
# imported with the config package, before wsgi.py or asgi.py can set their default.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("trailmark")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def _resume_orphaned_jobs(sender: object, **_: object) -> None:
    """A worker that starts (after a crash, say) resumes at once the jobs a dead one left."""
    app.send_task("provenance.jobs_recover")
