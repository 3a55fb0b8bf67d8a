"""Model outputs: a prompt, a checkpoint and decoding parameters; a worker writes the completion."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from attribution.models import ModelOutput
from core.jobs import claim_row, job_run
from provenance.engine.lm_config import DecodeParams
from provenance.models import ModelCheckpoint, User

State = ModelOutput.State


@transaction.atomic
def model_output_create(*, checkpoint: ModelCheckpoint, prompt: str, actor: User | None,
                        params: dict[str, Any] | None = None,
                        enqueue: bool = True) -> ModelOutput:
    if not prompt.strip():
        raise ValidationError({"prompt": "give a prompt"})
    try:
        decode = DecodeParams.from_dict(params or {})
    except (TypeError, ValueError) as exc:
        raise ValidationError({"params": str(exc)}) from exc
    output = ModelOutput.objects.create(checkpoint=checkpoint, prompt=prompt,
                                        params=decode.to_dict(), created_by=actor)
    if enqueue:
        from attribution.tasks import generate_task

        generate_task.delay_on_commit(output.pk)
    return output


# What a completion passes through before it is stored: (checkpoint id, text) -> (the text, what
# was blocked). Takedowns registers its interim output filters here when it starts (its
# AppConfig.ready), so that attribution imports nothing of takedowns.
CompletionFilter = Callable[[int, str], tuple[str, dict[str, Any]]]
COMPLETION_FILTERS: list[CompletionFilter] = []


def completion_filter_register(apply: CompletionFilter) -> None:
    if apply not in COMPLETION_FILTERS:
        COMPLETION_FILTERS.append(apply)


EMPTY = ("the model ended its completion at once (end of text first): the completion is "
         "empty, and there is nothing to attribute; try another prompt or sampling settings")


@dataclass(frozen=True)
class Completion:
    text: str
    watermark: dict[str, Any]  # {"gate", "emitted"} for a watermarked checkpoint, else {}
    filtered: dict[str, Any]   # what the completion filters blocked


def complete(checkpoint: ModelCheckpoint, model: Any, tokenizer: Any, prompt: str,
             params: DecodeParams) -> Completion:
    """A checkpoint's completion of a prompt as every product path makes it: with its watermark
    where it was trained with one, then through the completion filters."""
    from provenance.engine import lm

    heads = lm.load_watermark_heads(model, tokenizer, checkpoint.local_path)
    mark: dict[str, Any] = {}
    if heads is None:
        text = lm.generate(model, tokenizer, prompt, params)
    else:
        marked = lm.generate_marked(model, tokenizer, heads, prompt, params,
                                    threshold=params.watermark_threshold)
        text = marked.text
        mark = {"gate": round(marked.gate, 4), "emitted": marked.emitted}
    filtered: dict[str, Any] = {}
    for apply in COMPLETION_FILTERS:
        text, blocked = apply(checkpoint.pk, text)
        filtered.update(blocked)
    return Completion(text, mark, filtered)


def model_output_generate(*, output_id: int) -> ModelOutput | None:
    """Produce the completion (idempotent: a finished output is left as it is)."""
    from provenance.engine import lm

    with job_run("generate", output_id, model=ModelOutput,
                 claim=claim_row(ModelOutput, related=("checkpoint",))) as output:
        if output is None:
            return None
        model, tokenizer = lm.load(output.checkpoint.local_path)
        made = complete(output.checkpoint, model, tokenizer, output.prompt,
                        DecodeParams.from_dict(output.params))
        ModelOutput.objects.filter(pk=output_id).update(
            state=State.SUCCEEDED, completion=made.text, watermark=made.watermark,
            filtered=made.filtered, note=EMPTY if not made.text.strip() else "",
            finished_at=timezone.now())
    output.refresh_from_db()
    return output
