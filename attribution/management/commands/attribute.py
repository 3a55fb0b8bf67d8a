"""manage.py attribute OUTPUT: attribute a model output in this process, building the indexes it
lacks, with a progress bar; prints the shares by source and the report's digest (the API and the
output page queue the same run on the gpu queue instead)."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from attribution.models import AttributionRun, ModelOutput
from attribution.services.influence import (
    gradient_index_finalize,
    gradient_index_plan,
    gradient_shard_build,
)
from attribution.services.runs import attribution_run_create, attribution_run_execute
from attribution.services.spans import span_index_build


class Command(BaseCommand):
    help = "Attribute a model output (spans, influence, watermark, embedding) and print the report."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("output", type=int, help="model output id")
        parser.add_argument("--methods", default="", help="comma-separated (default: all)")
        parser.add_argument("--params", default="{}", help="per-method options as JSON")
        parser.add_argument("--json", action="store_true", help="print the report body")

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        output = ModelOutput.objects.filter(pk=opts["output"]).first()
        if output is None:
            raise CommandError(f"no model output {opts['output']}")
        try:
            params = json.loads(opts["params"])
            run = attribution_run_create(
                output=output, actor=None, params=params, enqueue=False,
                methods=[m.strip() for m in opts["methods"].split(",") if m.strip()] or None)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--params: {exc}") from exc
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {', '.join(v)}"
                                         for k, v in exc.message_dict.items())) from exc
        self._indexes(run)
        with tqdm(total=len(run.methods), desc="attributing", unit="method") as bar:
            started: list[str] = []

            def step(method: str) -> None:  # called as each method starts
                if started:
                    bar.update(1)
                started.append(method)
                bar.set_postfix_str(method)

            attribution_run_execute(run_id=run.pk, on_step=step)
            bar.update(bar.total - bar.n)
        run.refresh_from_db()
        if run.state != AttributionRun.State.SUCCEEDED:
            raise CommandError(f"attribution run {run.pk} {run.state}: {run.error or run.stage}")
        if opts["json"]:
            self.stdout.write(json.dumps(run.report.body, indent=2))
            return
        for note in run.notes:
            self.stdout.write(f"note ({note['method']}): {note['note']}")
        for s in run.summary.get("sources", []):
            self.stdout.write(f"{s['share'] * 100:6.1f}%  {s['name']}  ({s['license']})")
        if not run.summary.get("agreement", {}).get("agree", True):
            self.stdout.write("the methods disagree on the top source: "
                              + json.dumps(run.summary["agreement"]["top_source"]))
        self.stdout.write(f"run {run.pk}; report sha256 {run.report.sha256}")

    def _indexes(self, run: AttributionRun) -> None:
        if run.span_index is not None and run.span_index.state == "queued":
            self.stdout.write(f"building span index {run.span_index.pk} ...")
            span_index_build(index_id=run.span_index.pk)
        index = run.gradient_index
        if index is not None and index.state == "queued":
            pieces = gradient_index_plan(index_id=index.pk) or []
            index.refresh_from_db()
            with tqdm(total=index.total, desc=f"gradient index {index.pk}",
                      unit="doc") as bar:
                for snapshot, shard, ids in pieces:
                    gradient_shard_build(index_id=index.pk, snapshot=snapshot, shard=shard,
                                         doc_ids=ids)
                    bar.update(len(ids))
            gradient_index_finalize(index_id=index.pk)
