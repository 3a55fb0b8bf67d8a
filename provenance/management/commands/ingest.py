"""manage.py ingest SOURCE PATH: stream a file or folder into a source, with a progress bar."""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from provenance.models import DataSource, IngestJob
from provenance.services.ingest import fields_kept_line, ingest_path


def find_source(ref: str) -> DataSource:
    query = DataSource.objects.filter(pk=int(ref)) if ref.isdigit() else \
        DataSource.objects.filter(name=ref)
    found = list(query[:2])
    if len(found) != 1:
        raise CommandError(f"source {ref!r}: {'no such source' if not found else 'ambiguous name'}"
                           " (give its id)")
    return found[0]


class Command(BaseCommand):
    help = "Ingest a JSONL, CSV or Parquet file, or a folder of .txt/.md files, into a source."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("source", help="source id or name")
        parser.add_argument("path", type=Path)
        parser.add_argument("--format", choices=["jsonl", "csv", "folder", "parquet"])
        parser.add_argument("--text-field", default="text")
        parser.add_argument("--quiet", action="store_true", help="no progress bar")

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        source = find_source(opts["source"])
        bar = None

        def progress(job: IngestJob) -> None:
            nonlocal bar
            if opts["quiet"]:
                return
            if bar is None:
                scale = job.unit == "bytes"
                bar = tqdm(total=job.total, unit="B" if scale else f" {job.unit}",
                           unit_scale=scale, desc=f"ingest {source.name}")
            bar.update(job.position - bar.n)
            bar.set_postfix(added=job.rows_added, dup=job.rows_duplicate, bad=job.rows_bad)

        try:
            job = ingest_path(source=source, path=opts["path"].resolve(), actor=None,
                              fmt=opts["format"], text_field=opts["text_field"],
                              on_progress=progress)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        if bar is not None:
            bar.close()
        for err in job.errors:
            where = f"{err['file']}:{err['line']}" if err["line"] else err["file"]
            self.stderr.write(f"  {where}: {err['reason']}")
        if job.rows_bad > len(job.errors):
            self.stderr.write(f"  ... and {job.rows_bad - len(job.errors)} more bad rows")
        summary = (f"job {job.pk} {job.state}: read {job.rows_read}, added {job.rows_added}, "
                   f"linked {job.rows_linked}, duplicate {job.rows_duplicate}, "
                   f"blocked {job.rows_blocked}, bad {job.rows_bad}")
        if job.state != IngestJob.State.SUCCEEDED:
            raise CommandError(f"{summary}: {job.error}")
        if job.rows_metadata_dropped:
            self.stderr.write(f"  {job.rows_metadata_dropped} rows had metadata over the size "
                              "limit: their text was kept, their other fields were not")
        if job.rows_read and job.rows_bad == job.rows_read:
            raise CommandError(f"{summary}: every row was bad, nothing was ingested")
        self.stdout.write(summary)
        self.stdout.write(fields_kept_line(job))
