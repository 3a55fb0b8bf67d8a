"""Attribution runs: one per model output, every method it asks for, results, then a report.

A run needs the checkpoint's span and gradient indexes; missing ones are started when the run is
created, and the run waits for them (re-queued with a delay, never blocking a worker). A method
whose index failed is skipped with a note in the report. Results of a rerun replace the earlier
rows in one transaction, so a run is never half-published.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from attribution.engine.aggregate import (
    BASELINES,
    Evidence,
    agreement,
    baseline_check,
    combined_shares,
    group_shares,
    method_shares,
)
from attribution.engine.spans import SpanParams
from attribution.models import (
    AttributionResult,
    AttributionRun,
    GradientIndex,
    ModelOutput,
)
from attribution.services.influence import gradient_index_create, open_stores
from attribution.services.reports import attribution_report_write
from attribution.services.spans import span_index_create, trace_output
from core.jobs import job_run
from provenance.models import DataSource, Document, User, VersionMember

State = AttributionRun.State
Method = AttributionRun.Method
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "spans": {"min_length": 8, "max_count": 100, "max_docs": 10, "max_density": 0.1},
    "influence": {"top_k": 20},
    "embedding": {"top_k": 10, "min_similarity": 0.5},
    "watermark": {"top_k": 3},
    "bm25": {"top_k": 10},
}


def _params(methods: list[str], given: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(given) - set(DEFAULT_PARAMS))
    if unknown:
        raise ValidationError({"params": f"unknown method(s): {', '.join(unknown)}"})
    out = {}
    for method in methods:
        value = given.get(method, {})
        if not isinstance(value, dict):
            raise ValidationError({"params": f"{method}: give an object"})
        extra = sorted(set(value) - set(DEFAULT_PARAMS[method]))
        if extra:
            raise ValidationError({"params": f"{method}: unknown option(s) {', '.join(extra)}"})
        merged = {**DEFAULT_PARAMS[method], **value}
        for name, v in merged.items():
            if not isinstance(v, int | float) or isinstance(v, bool) or v < 0:
                raise ValidationError({"params": f"{method}.{name} must be a number >= 0"})
        if method == "spans":
            try:
                SpanParams(**merged).validate()
            except ValueError as exc:
                raise ValidationError({"params": f"spans: {exc}"}) from exc
        elif not 1 <= int(merged["top_k"]) <= 1000:
            raise ValidationError({"params": f"{method}.top_k must be between 1 and 1000"})
        out[method] = merged
    return out


@transaction.atomic
def attribution_run_create(*, output: ModelOutput, actor: User | None,
                           methods: list[str] | None = None, params: dict[str, Any] | None = None,
                           enqueue: bool = True) -> AttributionRun:
    if output.state != ModelOutput.State.SUCCEEDED:
        raise ValidationError({"output": f"output {output.pk} is {output.state}: attribute a "
                                         f"finished output"})
    if not output.completion.strip():
        raise ValidationError({"output": f"output {output.pk} has an empty completion: nothing "
                                         f"to attribute"})
    methods = list(dict.fromkeys(methods or [m.value for m in Method]))
    bad = sorted(set(methods) - {m.value for m in Method})
    if bad:
        raise ValidationError({"methods": f"unknown method(s): {', '.join(bad)}"})
    checkpoint = output.checkpoint
    run = AttributionRun.objects.create(
        output=output, methods=methods, params=_params(methods, params or {}),
        created_by=actor, unit="steps", total=len(methods) + 1, stage="queued")
    if Method.SPANS in methods:
        run.span_index = span_index_create(version=checkpoint.version, checkpoint=checkpoint,
                                           actor=actor, enqueue=enqueue)
    if Method.INFLUENCE in methods:
        run.gradient_index = gradient_index_create(checkpoint=checkpoint, actor=actor,
                                                   enqueue=enqueue)
    run.save(update_fields=["span_index", "gradient_index", "updated_at"])
    if enqueue:
        from attribution.tasks import attribution_run_task

        attribution_run_task.delay_on_commit(run.pk)
    return run


def _waiting_for(run: AttributionRun) -> list[str]:
    waiting = []
    for name, index in (("spans", run.span_index), ("gradients", run.gradient_index)):
        if index is not None:
            index.refresh_from_db()
            if index.state in (index.State.QUEUED, index.State.RUNNING):
                waiting.append(f"{name} {index.percent:.0f}%")
    return waiting


class Outcome(StrEnum):
    DONE = "done"          # finished (succeeded, or failed with its error recorded)
    WAITING = "waiting"    # its indexes are still building: their last step sends it again
    SKIPPED = "skipped"    # another worker has it, or it is finished


def attribution_run_execute(*, run_id: int,
                            on_step: Callable[[str], None] | None = None) -> Outcome:
    """Run every method (see Outcome for what it returns)."""
    waiting: list[str] = []

    def claim(pk: int) -> AttributionRun | None:
        run = AttributionRun.objects.select_related(
            "output__checkpoint", "span_index", "gradient_index").filter(pk=pk).first()
        if run is None or run.state not in (State.QUEUED, State.RUNNING):
            return None
        waiting[:] = _waiting_for(run)
        if waiting:
            # The stage column is short: the index ids are on the run, the percentages fit.
            stage = "waiting for indexes: " + ", ".join(waiting)
            AttributionRun.objects.filter(pk=pk).update(
                stage=stage[:AttributionRun._meta.get_field("stage").max_length],
                updated_at=timezone.now())
            return None
        AttributionRun.objects.filter(pk=pk).update(
            state=State.RUNNING, position=0, started_at=run.started_at or timezone.now(),
            updated_at=timezone.now())
        return run

    with job_run("attribution_run", run_id, model=AttributionRun, claim=claim) as run:
        if run is None:
            return Outcome.WAITING if waiting else Outcome.SKIPPED
        rows: list[AttributionResult] = []
        notes: list[dict[str, str]] = []
        for step, method in enumerate(run.methods):
            AttributionRun.objects.filter(pk=run_id).update(stage=method, position=step,
                                                            updated_at=timezone.now())
            if on_step:
                on_step(method)
            found, note = METHODS[method](run)
            if note:
                notes.append({"method": method, "note": note})
            rows.extend(found)
        AttributionRun.objects.filter(pk=run_id).update(stage="report",
                                                        position=len(run.methods))
        evidence = [Evidence(r.method, r.source_id, r.document_id, r.score) for r in rows]
        _publish(run, rows, _summary(evidence, list(run.methods)), notes)
    return Outcome.DONE


def attribution_run_waiting(run_id: int) -> bool:
    """Whether a queued run still waits for an index (read outside the run's lock)."""
    run = AttributionRun.objects.select_related("span_index", "gradient_index").filter(
        pk=run_id, state=State.QUEUED).first()
    return run is not None and bool(_waiting_for(run))


def _ranked(run: AttributionRun, method: str, scored: list[tuple[int | None, int, float, dict]]
            ) -> list[AttributionResult]:
    """(document, source, score, evidence) -> result rows ranked by score."""
    scored = sorted(scored, key=lambda r: (-r[2], r[0] or 0))
    return [AttributionResult(run=run, method=method, document_id=doc, source_id=source,
                              rank=rank, score=float(score), evidence=evidence)
            for rank, (doc, source, score, evidence) in enumerate(scored, start=1)]


def _sources_of(run: AttributionRun, doc_ids: list[int]) -> dict[int, int]:
    """The source each document was included under in the checkpoint's version."""
    return dict(VersionMember.objects.filter(version_id=run.output.checkpoint.version_id,
                                             document_id__in=doc_ids)
                .values_list("document_id", "source_id"))


def _spans(run: AttributionRun) -> tuple[list[AttributionResult], str]:
    index = run.span_index
    if index is None or index.state != index.State.SUCCEEDED:
        return [], f"no span index ({index.state if index else 'none'})"
    params = SpanParams(**{k: type(getattr(SpanParams(), k))(v)
                           for k, v in run.params["spans"].items()})
    spans = trace_output(output=run.output, index=index, params=params)
    covered: dict[int, dict[str, Any]] = {}
    for span in spans:
        for doc in span["documents"]:
            entry = covered.setdefault(doc["document"], {"tokens": 0, "spans": [],
                                                         "blocked": doc["blocked"]})
            entry["tokens"] += span["length"]
            entry["spans"].append({"start": span["start"], "length": span["length"],
                                   "count": span["count"],
                                   "text": None if doc["blocked"] else span["text"]})
    sources = _sources_of(run, list(covered))
    return _ranked(run, "spans", [(doc, sources[doc], e["tokens"], e)
                                  for doc, e in covered.items()]), ""


def _influence(run: AttributionRun) -> tuple[list[AttributionResult], str]:
    from attribution.engine import influence
    from provenance.engine import lm

    index: GradientIndex | None = run.gradient_index
    if index is None or index.state != index.State.SUCCEEDED:
        return [], f"no gradient index ({index.state if index else 'none'})"
    spec = influence.FeatureSpec.from_dict(index.spec)
    queries = []
    for snap in index.snapshots:
        snapshot = None if snap == "final" else snap
        model, tokenizer = lm.load(index.checkpoint.local_path, snapshot=snapshot)
        example = influence.query_example(tokenizer, run.output.prompt, run.output.completion,
                                          spec.max_tokens)
        featurizer = influence.Featurizer(model, spec, lm.load_watermark_heads(
            model, tokenizer, index.checkpoint.local_path, snapshot))
        queries.append(influence.featurize(featurizer, [example])[0])
    top = influence.rank(open_stores(index), queries, int(run.params["influence"]["top_k"]))
    doc_ids = [int(d) for d in top.ids]
    sources = _sources_of(run, doc_ids)
    total = float(np.abs(top.scores).sum()) or 1.0
    return _ranked(run, "influence", [
        (doc, sources[doc], float(score), {"score": float(score),
                                           "relative": round(float(score) / total, 4)})
        for doc, score in zip(doc_ids, top.scores, strict=True)]), ""


def _embedding(run: AttributionRun) -> tuple[list[AttributionResult], str]:
    from pgvector.django import CosineDistance

    from provenance.services.embeddings import embed_texts

    p = run.params["embedding"]
    vector = embed_texts([run.output.completion])[0][0]
    version = run.output.checkpoint.version
    near = list(Document.objects.filter(memberships__version=version,
                                        embedding__isnull=False)
                .annotate(distance=CosineDistance("embedding", vector))
                .order_by("distance").values_list("pk", "distance")[:int(p["top_k"])])
    near = [(pk, 1.0 - float(d)) for pk, d in near if 1.0 - float(d) >= p["min_similarity"]]
    sources = _sources_of(run, [pk for pk, _ in near])
    missing = Document.objects.filter(memberships__version=version,
                                      embedding__isnull=True).count()
    note = f"{missing} document(s) of the version not embedded yet" if missing else ""
    return _ranked(run, "embedding", [(pk, sources[pk], sim, {"similarity": round(sim, 4)})
                                      for pk, sim in near]), note


def _watermark(run: AttributionRun) -> tuple[list[AttributionResult], str]:
    from provenance.engine import watermark
    from provenance.services.watermarks import watermark_codebook

    found = watermark.detect(run.output.completion, watermark_codebook(),
                             top_k=int(run.params["watermark"]["top_k"]))
    if not found:
        return [], "no watermark in the output"
    return _ranked(run, "watermark", [
        (None, c.source, c.confidence, {"distance": c.distance, "found": c.found,
                                        "confidence": c.confidence, "p_value": c.p_value})
        for c in found]), ""


def _bm25(run: AttributionRun) -> tuple[list[AttributionResult], str]:
    """BM25 of the completion over the version's documents (the index is built once per
    version, in the artifact store: versions are immutable)."""
    from django.conf import settings

    from attribution.engine.lexical import Lexical

    version = run.output.checkpoint.version
    folder = Path(settings.ARTIFACT_DIR) / "bm25" / f"version-{version.pk}"
    index = Lexical.open(folder)
    if index is None:
        members = VersionMember.objects.filter(version=version).order_by("document_id")
        pairs = list(Document.objects.filter(pk__in=members.values("document_id"))
                     .order_by("pk").values_list("pk", "text").iterator(chunk_size=2000))
        index = Lexical.build([t for _, t in pairs], [pk for pk, _ in pairs])
        folder.parent.mkdir(parents=True, exist_ok=True)
        index.save(folder)
    found = index.search(run.output.completion, int(run.params["bm25"]["top_k"]))
    sources = _sources_of(run, [pk for pk, _ in found])
    return _ranked(run, "bm25", [(pk, sources[pk], score, {"bm25": round(score, 4)})
                                 for pk, score in found]), ""


METHODS: dict[str, Callable[[AttributionRun], tuple[list[AttributionResult], str]]] = {
    "spans": _spans, "influence": _influence, "embedding": _embedding, "watermark": _watermark,
    "bm25": _bm25}


def _summary(evidence: list[Evidence], methods: list[str]) -> dict[str, Any]:
    """Shares and agreement of the evidence; the cheap baselines (BM25) beside it, never in
    the shares, compared with influence and spans (`baselines`)."""
    everything = method_shares(evidence)
    per_method = {m: v for m, v in everything.items() if m not in BASELINES}
    combined = combined_shares(per_method)
    sources = {s.pk: s for s in DataSource.objects.filter(pk__in=list(combined))}
    return {
        "sources": [{"source": pk, "name": sources[pk].name, "share": round(share, 4),
                     "license": sources[pk].license_expression,
                     "use_class": sources[pk].use_class} for pk, share in combined.items()],
        "by_method": {m: {str(s): round(v, 4) for s, v in shares.items()}
                      for m, shares in per_method.items()},
        "by_use_class": {k: round(v, 4) for k, v in group_shares(
            combined, {pk: s.use_class for pk, s in sources.items()}).items()},
        "by_license": {k: round(v, 4) for k, v in group_shares(
            combined, {pk: s.license_expression for pk, s in sources.items()}).items()},
        "agreement": agreement([e for e in evidence if e.method not in BASELINES], per_method,
                               methods=[m for m in methods if m not in BASELINES]),
        "baselines": baseline_check(evidence, everything),
    }


@transaction.atomic
def _publish(run: AttributionRun, rows: list[AttributionResult], summary: dict[str, Any],
             notes: list[dict[str, str]]) -> None:
    AttributionResult.objects.filter(run=run).delete()  # a retried run replaces its rows
    AttributionResult.objects.bulk_create(rows)
    AttributionRun.objects.filter(pk=run.pk).update(
        summary=summary, notes=notes, state=State.SUCCEEDED, stage="done",
        position=len(run.methods) + 1, finished_at=timezone.now(), updated_at=timezone.now())
    run.refresh_from_db()
    attribution_report_write(run=run)
