"""manage.py curate DATASET --use commercial: build a new version in this process."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from provenance.models import Dataset
from provenance.services import curation, datasets


class Command(BaseCommand):
    help = "Curate a new version of a dataset from a recipe (JSON) and optionally publish it."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("dataset", help="dataset slug")
        parser.add_argument("--recipe", default="{}", help="recipe as JSON")
        parser.add_argument("--use", dest="intended_use", help="intended use (recipe shortcut)")
        parser.add_argument("--publish", action="store_true")

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        dataset = Dataset.objects.filter(slug=opts["dataset"]).first()
        if dataset is None:
            raise CommandError(f"no dataset {opts['dataset']!r}")
        try:
            recipe = json.loads(opts["recipe"])
            if opts["intended_use"]:
                recipe["intended_use"] = opts["intended_use"]
            if opts["publish"]:
                recipe["publish"] = True
            job = datasets.curation_job_create(dataset=dataset, recipe=recipe, actor=None,
                                                  enqueue=False)
        except (json.JSONDecodeError, TypeError) as exc:
            raise CommandError(f"--recipe: {exc}") from exc
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {', '.join(v)}"
                                         for k, v in exc.message_dict.items())) from exc
        job = curation.curation_run(job_id=job.pk)
        if job is None or job.state != job.State.SUCCEEDED:
            raise CommandError(f"curation failed: {job.error if job else 'already running'}")
        v = job.version
        self.stdout.write(f"{v} ({v.state}): {v.document_count} documents, manifest "
                          f"{v.manifest_root}, excluded {v.exclusions_by_reason}")
