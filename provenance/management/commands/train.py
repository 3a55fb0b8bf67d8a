"""manage.py train VERSION: train a tokenizer and a small GPT-2-style model on a published version,
in this process, with a progress bar (the API queues the same run on the gpu queue instead)."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from provenance.models import DatasetVersion
from provenance.services.training import (
    plan_sentence,
    training_run_create,
    training_run_execute,
)


def find_version(ref: str) -> DatasetVersion:
    """A version id, or 'slug@vN' / 'slug@N', or a slug (its latest published version)."""
    qs = DatasetVersion.objects.select_related("dataset")
    if ref.isdigit():
        found = qs.filter(pk=int(ref)).first()
    elif "@" in ref:
        slug, number = ref.split("@", 1)
        number = number.lstrip("v")
        found = qs.filter(dataset__slug=slug, number=int(number)).first() \
            if number.isdigit() else None
    else:
        found = qs.filter(dataset__slug=ref, state="published").order_by("-number").first()
    if found is None:
        raise CommandError(f"no dataset version {ref!r} (give an id, slug@vN or a slug)")
    return found


class Command(BaseCommand):
    help = "Train a tokenizer and a causal LM on a dataset version; prints the checkpoint."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("version", help="version id, slug@vN, or slug (latest published)")
        parser.add_argument("--config", default="{}", help="training options as JSON")
        parser.add_argument("--preset", choices=["tiny", "small", "default"],
                            help="a named configuration (its expected time is printed first)")
        parser.add_argument("--epochs", type=int)
        parser.add_argument("--seed", type=int)
        parser.add_argument("--quiet", action="store_true")

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        version = find_version(opts["version"])
        try:
            config = json.loads(opts["config"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"--config: {exc}") from exc
        for key in ("preset", "epochs", "seed"):
            if opts[key] is not None:
                config[key] = opts[key]
        try:
            run = training_run_create(version=version, actor=None, config=config, enqueue=False)
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {', '.join(v)}"
                                         for k, v in exc.message_dict.items())) from exc
        if not opts["quiet"]:
            self.stdout.write(f"training run {run.pk}: {plan_sentence(run.plan)}")
        bar = None

        def progress(p) -> None:  # type: ignore[no-untyped-def]
            nonlocal bar
            if opts["quiet"]:
                return
            if bar is None:
                bar = tqdm(total=p.total_steps, unit="step", desc=f"train {version}")
            bar.update(p.step - bar.n)
            bar.set_postfix(loss=f"{p.loss:.3f}", tok_s=f"{p.tokens_per_s:,.0f}")

        run = training_run_execute(run_id=run.pk, on_progress=progress)
        if bar is not None:
            bar.close()
        if run is None or run.state != run.State.SUCCEEDED:
            raise CommandError(f"training run {run.pk if run else '?'} "
                               f"{run.state if run else 'did not run'}: {run.error if run else ''}")
        ckpt = run.checkpoint
        self.stdout.write(f"checkpoint {ckpt.pk} {ckpt.name}: {ckpt.metrics['parameters']:,} "
                          f"parameters, held-out loss {ckpt.metrics['heldout_loss']}, "
                          f"sha256 {ckpt.sha256}\n  {ckpt.path}")
