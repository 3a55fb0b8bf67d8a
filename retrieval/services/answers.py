"""Answers: a question, retrieval from a datastore, a checkpoint's answer with the passages in
its context, and the answer's context attribution (retrieval/engine/context.py), per-source
shares and verbatim spans. One job on the gpu queue; its results commit together, with the
answer's model output and a ledger entry, or not at all."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

import numpy as np
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from attribution.models import ModelOutput
from core.jobs import claim_row, job_progress, job_run
from provenance.engine.lm_config import DecodeParams
from provenance.ledger.append import ledger_append
from provenance.models import ModelCheckpoint, User
from retrieval.models import Answer, AnswerShare, Chunk, Datastore
from retrieval.services.search import CANDIDATES, Hit, retrieve

State = Answer.State
MAX_PASSAGES = 10
BATCH = 16  # ablated prompts per forward pass
NO_CONTEXT = ("nothing retrievable answered the question (no chunk matched, or every match is "
              "refused or removed): the answer was generated without context, and owes none")
EMPTY = ("the checkpoint ended its answer at once (end of text first): there is nothing to "
         "attribute")


@transaction.atomic
def answer_create(*, datastore: Datastore, checkpoint: ModelCheckpoint, question: str,
                  actor: User | None, mode: str = Answer.Mode.PASSAGES, k: int = 4,
                  ablations: int = 32, params: dict[str, Any] | None = None,
                  enqueue: bool = True) -> Answer:
    if datastore.state != Datastore.State.SUCCEEDED:
        raise ValidationError({"datastore": f"datastore {datastore.pk} is {datastore.state}; "
                                            "it answers once its build has succeeded"})
    if not question.strip():
        raise ValidationError({"question": "ask a question"})
    if mode not in Answer.Mode.values:
        raise ValidationError({"mode": f"one of {', '.join(Answer.Mode.values)}"})
    if not 1 <= k <= MAX_PASSAGES:
        raise ValidationError({"k": f"between 1 and {MAX_PASSAGES} passages"})
    if not 8 <= ablations <= 256:
        raise ValidationError({"ablations": "between 8 and 256 ablations"})
    try:
        decode = DecodeParams.from_dict(params or {})
    except (TypeError, ValueError) as exc:
        raise ValidationError({"params": str(exc)}) from exc
    answer = Answer.objects.create(
        datastore=datastore, checkpoint=checkpoint, question=question, mode=mode, k=k,
        ablations=ablations, params=decode.to_dict(), created_by=actor, unit="forward passes",
        total=heldout(ablations) + ablations + k + 1)
    if enqueue:
        from retrieval.tasks import answer_task

        answer_task.delay_on_commit(answer.pk)
    return answer


def heldout(ablations: int) -> int:
    """Ablations kept out of the fit, to measure the surrogate on (its LDS)."""
    return max(8, ablations // 4)


def _context(answer: Answer) -> list[Hit]:
    """The passages: the top k hits, or k demonstrations chosen among the top candidates by
    similarity and diversity. Retrieval is governed as of now (services/search.py)."""
    from provenance.services.embeddings import embed_texts
    from retrieval.engine.context import diverse

    vector = embed_texts([answer.question])[0][0]
    if answer.mode == Answer.Mode.PASSAGES:
        return retrieve(answer.datastore, answer.question, vector, k=answer.k)
    hits = retrieve(answer.datastore, answer.question, vector, k=CANDIDATES)
    stored = dict(Chunk.objects.filter(pk__in=[h.chunk for h in hits])
                  .values_list("pk", "embedding"))
    hits = [h for h in hits if stored.get(h.chunk) is not None]
    if not hits:
        return []
    rows = np.asarray([stored[h.chunk] for h in hits], dtype=np.float64)
    return [hits[i] for i in diverse(np.asarray(vector, dtype=np.float64), rows, answer.k)]


def answer_run(*, answer_id: int) -> Answer | None:
    """Retrieve, generate, ablate, fit: idempotent (a finished answer is left as it is); a
    killed run leaves nothing of itself behind and starts over."""
    from provenance.engine import lm

    with job_run("answer", answer_id, model=Answer,
                 claim=claim_row(Answer, stage="retrieving",
                                 related=("checkpoint", "datastore"))) as answer:
        if answer is None:
            return None
        hits = _context(answer)
        Answer.objects.filter(pk=answer_id).update(stage="generating")
        model, tokenizer = lm.load(answer.checkpoint.local_path)
        results = _generate_and_attribute(answer, hits, model, tokenizer)
        _publish(answer, results)
    answer.refresh_from_db()
    return answer


def _generate_and_attribute(answer: Answer, hits: list[Hit], model: Any,
                            tokenizer: Any) -> dict[str, Any]:
    from attribution.services.outputs import complete
    from provenance.engine import lm
    from retrieval.engine import context, prompts

    params = DecodeParams.from_dict(answer.params)
    texts, cut, new_tokens = prompts.fit(tokenizer, answer.question, [h.text for h in hits],
                                         answer.mode, lm.context_length(model),
                                         params.max_new_tokens)
    params = replace(params, max_new_tokens=new_tokens)
    prompt = prompts.prompt(answer.question, texts, answer.mode)
    made = complete(answer.checkpoint, model, tokenizer, prompt, params)
    passages = [{"chunk": h.chunk, "document": h.document, "sha256": h.sha256, "text": text,
                 "truncated": c, "sources": h.sources, "score": h.score,
                 "contribution": 0.0, "leave_one_out": 0.0}
                for h, text, c in zip(hits, texts, cut, strict=True)]
    results: dict[str, Any] = {"prompt": prompt, "completion": made, "passages": passages,
                               "attribution": {}, "spans": [], "note": ""}
    if not made.text.strip():
        results["note"] = EMPTY
        return results
    if not hits:
        results["note"] = NO_CONTEXT
        return results
    n, fit_count = len(hits), answer.ablations
    masks = np.vstack([context.ablation_masks(n, fit_count + heldout(fit_count), seed=answer.pk),
                       np.ones((1, n)), 1 - np.eye(n)])
    Answer.objects.filter(pk=answer.pk).update(stage="ablating", total=len(masks))
    exclude = lm.text_space(answer.checkpoint.local_path, tokenizer)
    logprobs: list[float] = []
    for start in range(0, len(masks), BATCH):
        ablated = [prompts.prompt(answer.question, [t for t, keep in zip(texts, m, strict=True)
                                                    if keep], answer.mode)
                   for m in masks[start:start + BATCH]]
        logprobs += lm.continuation_logprob(model, tokenizer, ablated, made.text,
                                            batch_size=BATCH, exclude=exclude)
        job_progress(Answer, answer.pk, len(logprobs))
    targets = np.asarray([context.logit_probability(x) for x in logprobs])
    fit = context.surrogate_fit(masks[:fit_count], targets[:fit_count])
    split = fit_count + heldout(fit_count)
    full = targets[split]
    for n_, passage in enumerate(passages):
        passage["contribution"] = round(fit.weights[n_], 6)
        passage["leave_one_out"] = round(float(full - targets[split + 1 + n_]), 6)
    score = context.lds(fit, masks[fit_count:split], targets[fit_count:split])
    results["attribution"] = {
        "method": "ablations, Lasso surrogate on logit-probability (ContextCite)",
        "ablations": fit_count, "heldout": split - fit_count, "alpha": context.LASSO_ALPHA,
        "intercept": round(fit.intercept, 6), "full": round(float(full), 6),
        "lds": None if score is None else round(score, 4)}
    results["spans"] = [asdict(s) for s in context.verbatim_spans(made.text, texts)]
    return results


@transaction.atomic
def _publish(answer: Answer, results: dict[str, Any]) -> None:
    from retrieval.engine.context import shares

    made, passages = results["completion"], results["passages"]
    output = ModelOutput.objects.create(
        checkpoint=answer.checkpoint, prompt=results["prompt"], completion=made.text,
        params=answer.params, watermark=made.watermark, filtered=made.filtered,
        created_by=answer.created_by, state=ModelOutput.State.SUCCEEDED,
        started_at=answer.started_at, finished_at=timezone.now())
    owed = shares([p["contribution"] for p in passages],
                  [[s["id"] for s in p["sources"]] for p in passages]) \
        if results["attribution"] else {}
    AnswerShare.objects.bulk_create([
        AnswerShare(answer=answer, source_id=source, share=min(share, 1.0))
                                     for source, share in sorted(owed.items()) if share > 0])
    Answer.objects.filter(pk=answer.pk).update(
        state=State.SUCCEEDED, stage="done", position=F("total"), prompt=results["prompt"],
        text=made.text, passages=passages, attribution=results["attribution"],
        spans=results["spans"], filtered=made.filtered, watermark=made.watermark,
        note=results["note"], output=output, finished_at=timezone.now(),
        updated_at=timezone.now())
    ledger_append(actor=answer.created_by, event="rag.answered", subject=answer, payload={
        "datastore": answer.datastore_id, "checkpoint": answer.checkpoint_id,
        "chunks": [p["chunk"] for p in passages],
        "shares": {str(k): round(v, 6) for k, v in sorted(owed.items())},
        "lds": results["attribution"].get("lds")})
