"""The signed-in pages' contexts: home, models, checkpoints, sources, outputs, attribution runs."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import (
    Count,
    F,
    Q,
)
from django.utils import timezone

from attribution.engine.aggregate import agreement_sentence, baseline_sentence, evaluation_sentence
from provenance import selectors as prov
from provenance.engine.watermark import detect
from provenance.models import DatasetVersion, DataSource
from provenance.services.watermarks import watermark_codebook


def home_context(user: Any) -> dict[str, Any]:
    versions = (prov.version_list(user).filter(state=DatasetVersion.State.PUBLISHED)
                .order_by("dataset__slug", "-number")[:50])
    sources = prov.source_list(user).order_by("name")[:50]
    return {
        "versions": list(versions),
        "sources": list(sources),
        "takedowns": open_takedowns(user),
        "source_totals": DataSource.objects.aggregate(
            n=Count("id"), active=Count("id", filter=Q(status=DataSource.Status.ACTIVE))),
    }


def open_takedowns(user: Any) -> list[Any]:
    """For staff: the requests still open, overdue ones first, then by decision deadline."""
    from core.permissions import Capability, can
    from takedowns.models import TakedownRequest

    if not can(user, Capability.MOVE_TAKEDOWN):
        return []
    rows = (TakedownRequest.objects.exclude(state__in=TakedownRequest.FINAL_STATES)
            .only("id", "reference", "state", "legal_basis", "deadlines", "overdue_since")
            .order_by(F("overdue_since").asc(nulls_last=True), "received_at")[:50])
    return list(rows)


def health() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    return {"database": "ok", "pgvector": row[0] if row else None}


def models_context(user: Any) -> dict[str, Any]:
    return {"checkpoints": list(prov.checkpoint_list(user).select_related(
                "version__dataset")[:100]),
            "runs": list(prov.training_run_list(user).select_related("version__dataset")[:100])}


def training_run(user: Any, run_id: int) -> Any:
    return prov.training_run_list(user).select_related("version__dataset").filter(
        pk=run_id).first()


def checkpoint_context(user: Any, checkpoint_id: int) -> dict[str, Any] | None:
    from attribution.selectors import model_output_list

    checkpoint = prov.checkpoint_list(user).select_related("version__dataset", "parent").filter(
        pk=checkpoint_id).first()
    if checkpoint is None:
        return None
    outputs = model_output_list(user).filter(checkpoint=checkpoint).order_by("id")[:50]
    latest = prov.canary_test_run_list(user).filter(checkpoint=checkpoint,
                                                    state="succeeded").order_by("-id").first()
    results = list(latest.results.select_related("source").order_by("source__name")) \
        if latest else []
    visible = dict(prov.source_list(user).values_list("pk", "name"))
    codebook = watermark_codebook()
    shown = []
    for output in outputs:
        found = detect(output.completion, codebook, top_k=1)
        shown.append((output, (visible.get(found[0].source, "a source you cannot see"),
                               found[0].distance) if found else None))
    return {"checkpoint": checkpoint, "outputs": shown, "canary_run": latest,
            "canary_results": results}


def source_context(user: Any, source_id: int) -> dict[str, Any] | None:
    from provenance.engine.watermark import visible
    from provenance.models import CanaryTest, SourceCanary
    from provenance.services.usage import latest_signals, source_verdicts
    from provenance.services.watermarks import TRUST

    source = prov.source_list(user).filter(pk=source_id).first()
    if source is None:
        return None
    results = CanaryTest.objects.filter(source=source).select_related("checkpoint").order_by(
        "-run_id")[:20]
    from core.permissions import sees_holder_details

    owner = source.owner
    now = timezone.now()
    return {"source": source, "signals": list(source.opt_out_signals.order_by("-observed_at")),
            "verdicts": list(source_verdicts(source, now).values()),
            "unread": [u for s in latest_signals(source, now)
                       for u in s.reading.get("unknown", [])],
            "owner_name": owner.name if sees_holder_details(user, owner.pk)
            else owner.public_name,
            "watermark_visible": visible(source.watermark) if source.watermark else "none",
            "trust": TRUST, "canary": SourceCanary.objects.filter(source=source).first(),
            "canary_results": list(results)}


def output_context(user: Any, output_id: int) -> dict[str, Any] | None:
    from attribution.models import AttributionRun
    from attribution.selectors import attribution_run_list, model_output_list

    output = model_output_list(user).filter(pk=output_id).first()
    if output is None:
        return None
    runs = attribution_run_list(user).filter(output=output).order_by("-id")[:20]
    return {"output": output, "runs": list(runs), "methods": AttributionRun.Method.choices}


def attribution_context(user: Any, run_id: int) -> dict[str, Any] | None:
    from attribution.models import AttributionReport
    from attribution.selectors import attribution_run_list

    run = attribution_run_list(user).select_related("output__checkpoint").filter(
        pk=run_id).first()
    if run is None:
        return None
    report = AttributionReport.objects.filter(run=run).select_related("ledger_entry").first()
    body = report.body if report else {}
    documents = body.get("documents", {})
    names = {s["source"]: s["name"] for s in run.summary.get("sources", [])}
    listed = {r["source"] for r in body.get("results", [])} - set(names)
    names.update(DataSource.objects.filter(pk__in=listed).values_list("pk", "name"))
    by_method: dict[str, list[dict[str, Any]]] = {}
    for r in body.get("results", []):
        doc = documents.get(str(r["document"])) if r["document"] is not None else None
        by_method.setdefault(r["method"], []).append({
            **r, "source_name": names.get(r["source"], f"source {r['source']}"), "doc": doc})
    return {"run": run, "report": report, "by_method": by_method,
            "agreement": run.summary.get("agreement", {}),
            "agreement_sentence": agreement_sentence(run.summary.get("agreement", {}),
                                                     names),
            "baselines_sentence": baseline_sentence(run.summary["baselines"], names)
            if "baselines" in run.summary else None,
            "influence_evaluation": body.get("influence_evaluation"),
            "evaluation_sentence": evaluation_sentence(body["influence_evaluation"])
            if body.get("influence_evaluation") else None,
            "gradient_generation": body.get("indexes", {}).get("gradient_index", {}).get(
                "generation")}
