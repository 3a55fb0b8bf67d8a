"""The staff pages: the audit view, the jobs board and the staff overview."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import (
    BigIntegerField,
    CharField,
    Count,
    DateTimeField,
    ExpressionWrapper,
    F,
    Field,
    Q,
    Sum,
    TextField,
    Value,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from provenance.models import DataSource


def audit_context() -> dict[str, Any]:
    from attribution.models import AttributionRun
    from provenance.models import LedgerCheckpoint, LedgerEntry

    return {
        "entries": LedgerEntry.objects.count(),
        "checkpoint": LedgerCheckpoint.objects.order_by("-size").first(),
        "runs": list(AttributionRun.objects.select_related("output__checkpoint", "report")
                     .order_by("-pk")[:50]),
        "exports": ["ledger", "takedowns", "attribution-runs"],
    }


# The staff dashboard ------------------------------------------------------------------------

# Every kind of background job, what its reference column points at, and where it is shown.
JOB_KINDS: tuple[tuple[str, str, str, str], ...] = (
    # (label, "app.Model", reference field, page for the reference)
    ("ingest", "provenance.IngestJob", "source_id", "/sources/{}/"),
    ("curation", "provenance.CurationJob", "id", "/api/v1/curation-jobs/{}/"),
    ("training", "provenance.TrainingRun", "id", "/runs/{}/"),
    ("canary test", "provenance.CanaryTestRun", "checkpoint_id", "/checkpoints/{}/"),
    ("synthesis", "provenance.SynthesisJob", "id", "/synthesis/{}/"),
    ("generation", "attribution.ModelOutput", "id", "/outputs/{}/"),
    ("span index", "attribution.SpanIndex", "checkpoint_id", "/checkpoints/{}/"),
    ("gradient index", "attribution.GradientIndex", "id", "/api/v1/gradient-indexes/{}/"),
    ("attribution", "attribution.AttributionRun", "id", "/attribution/{}/"),
    ("remediation", "takedowns.UnlearningRun", "request_id", "/takedowns/{}/"),
    ("benchmark", "benchmarks.BenchmarkRun", "id", "/benchmarks/runs/{}/"),
)
FAILED_SHOWN_FOR = timedelta(days=7)


def jobs_board(limit: int = 100) -> dict[str, Any]:
    """The jobs that are queued or running, and those that failed in the last week, of every
    kind, in one query (a UNION over the job tables), newest first."""
    from django.apps import apps

    from provenance.selectors import embedding_status

    since = timezone.now() - FAILED_SHOWN_FOR
    parts = []
    for label, model_name, ref, _ in JOB_KINDS:
        model = apps.get_model(model_name)
        parts.append(_job_columns(
            model.objects.filter(Q(state__in=["queued", "running"])
                                 | Q(state="failed", updated_at__gte=since)),
            label, F(ref), F("state"), F("stage"), F("position"), F("total"), F("unit"),
            F("error"), F("created_at")))
    parts += _takedown_jobs(since)
    pages = {label: page for label, _, _, page in JOB_KINDS} | {
        "verification": "/takedowns/{}/", "scoping": "/takedowns/{}/"}
    rows = [{key.removeprefix("j_"): value for key, value in row.items()} for row in
            parts[0].union(*parts[1:], all=True).order_by("-j_created")[:limit]]
    for row in rows:
        row["url"] = pages[row["kind"]].format(row["ref"])
        row["created_at"] = row.pop("created")
        row["percent"] = round(100.0 * (row["position"] or 0) / row["total"], 1) \
            if row["total"] else 0.0
    active = [r for r in rows if r["state"] in ("queued", "running")]
    return {"active": active, "failed": [r for r in rows if r["state"] == "failed"],
            "embedding": embedding_status()}


_COLUMNS = ("kind", "ref", "j_state", "j_stage", "j_position", "j_total", "j_unit", "j_error",
            "j_created", "j_updated_at")


def _job_columns(queryset: Any, kind: str, *values: Any) -> Any:
    """One part of the jobs board's UNION: the same columns, named alike and in one order,
    whatever the table (every column an annotation, so that Django orders them as given)."""
    text, number = CharField(), BigIntegerField()
    types: tuple[Field, ...] = (number, text, text, number, number, text, TextField(),
                                DateTimeField())
    named = {name: ExpressionWrapper(value, output_field=field)
             for name, value, field in zip(_COLUMNS[1:-1], values, types, strict=True)}
    return (queryset.annotate(kind=Value(kind, output_field=text), **named,
                              j_updated_at=F("updated_at"))
            .values("id", *_COLUMNS).order_by())


def _takedown_jobs(since: Any) -> list[Any]:
    """A takedown's scoping and verification run as tasks with their state on the request
    (`scope.job`, `verification`): they are jobs on the board too."""
    from takedowns.models import TakedownRequest

    def number(key: str) -> Any:
        return Cast(KT(key), BigIntegerField())

    verifying = TakedownRequest.objects.filter(
        Q(verification__state="running")
        | Q(verification__state="failed", updated_at__gte=since))
    scoping = TakedownRequest.objects.filter(
        Q(state=TakedownRequest.State.SCOPING) & (
            Q(scope__job__state__in=["queued", "running"])
            | Q(scope__job__state="failed", updated_at__gte=since)))
    return [
        _job_columns(verifying, "verification", F("id"), KT("verification__state"),
                     Value("measuring the models"), number("verification__position"),
                     number("verification__total"), Value("measurements"),
                     Coalesce(KT("verification__error"), Value("")), F("updated_at")),
        _job_columns(scoping, "scoping", F("id"), KT("scope__job__state"),
                     Value("matching the works"), Value(None), Value(None), Value(""),
                     Coalesce(KT("scope__job__error"), Value("")), F("updated_at")),
    ]


def staff_context() -> dict[str, Any]:
    """Curators and admins: sources, live job progress, takedowns overdue or nearly due, and
    the latest attribution runs. Every list is bounded; nothing counts documents."""
    from attribution.models import AttributionRun
    from takedowns.models import TakedownRequest
    from takedowns.services.deadlines import RUNNING

    today = timezone.localdate()
    sources = (DataSource.objects.select_related("owner")
               .annotate(opt_outs=Count("opt_out_signals", distinct=True))
               .order_by("name")[:200])
    totals = DataSource.objects.aggregate(
        sources=Count("id"), active=Count("id", filter=Q(status=DataSource.Status.ACTIVE)),
        occurrences=Sum("document_count"), bytes=Sum("byte_count"))
    open_requests = TakedownRequest.objects.exclude(state__in=TakedownRequest.FINAL_STATES)
    soon = (today + timedelta(days=3)).isoformat()
    # Overdue as the deadline checker flags it, or a decision deadline that still runs and
    # falls within 3 days.
    due = list(open_requests.filter(Q(overdue_since__isnull=False)
                                    | Q(state__in=RUNNING["decide"],
                                        deadlines__decide__lte=soon))
               .only("id", "reference", "state", "legal_basis", "deadlines", "overdue_since",
                     "received_at")
               .order_by(F("overdue_since").asc(nulls_last=True), "received_at")[:50])
    takedown_counts = open_requests.aggregate(
        open=Count("id"), overdue=Count("id", filter=Q(overdue_since__isnull=False)))
    runs = list(AttributionRun.objects.select_related("output__checkpoint")
                .only("id", "state", "methods", "summary", "created_at", "finished_at",
                      "output__id", "output__checkpoint__id", "output__checkpoint__name")
                .order_by("-id")[:20])
    for run in runs:
        shares = run.summary.get("sources") or []
        run.top_source = shares[0] if shares else None  # type: ignore[attr-defined]
    return {"sources": list(sources), "totals": totals, "jobs": jobs_board(),
            "due": due, "takedown_counts": takedown_counts, "today": today,
            "attribution_runs": runs}
