from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.db import connection
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

from attribution.engine.aggregate import agreement_sentence, baseline_sentence, evaluation_sentence
from core.conf import setting
from dashboards.composition import version_composition
from dashboards.engine.ai_act import AiActSummary, SourceShare
from dashboards.engine.cards.facts import (
    CardWords,
    CheckpointFacts,
    SourceFacts,
    TakedownFacts,
    VersionFacts,
    all_of,
)
from dashboards.engine.cards.model import ModelFacts
from provenance import selectors as prov
from provenance.engine.text import language_name
from provenance.engine.watermark import detect
from provenance.models import DatasetVersion, DataSource, ModelCheckpoint
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
    from provenance.services.watermarks import TRUST

    source = prov.source_list(user).filter(pk=source_id).first()
    if source is None:
        return None
    results = CanaryTest.objects.filter(source=source).select_related("checkpoint").order_by(
        "-run_id")[:20]
    from core.permissions import sees_holder_details

    owner = source.owner
    return {"source": source, "signals": list(source.opt_out_signals.order_by("-observed_at")),
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


def _lineage(version: DatasetVersion) -> list[int]:
    ids: list[int] = []
    current: DatasetVersion | None = version
    while current is not None:
        ids.append(current.pk)
        current = current.parent
    return ids


def version_facts(version: DatasetVersion, words: dict[str, str] | None = None) -> VersionFacts:
    """Everything a card says about a version, read once: its sources and their licences, what
    the recipe left out, the takedowns applied to its lineage, and the models trained on it."""

    counts = {int(k): n for k, n in version.counts_by_source.items()}
    sources = tuple(
        SourceFacts(id=s.pk, name=s.name, owner=s.owner.public_name, uri=s.uri,
                    license=s.license_expression, use_class=s.use_class,
                    documents=counts.get(s.pk, 0), terms_url=s.terms_url,
                    license_as_written=s.license_as_written)
        for s in DataSource.objects.filter(pk__in=counts).select_related("owner")
        .order_by("name"))
    lineage = set(_lineage(version))
    takedowns = [
        TakedownFacts(reference=request.reference, legal_basis=request.legal_basis,
                      documents=_removed_from(request, lineage),
                      decided_at=(request.decision or {}).get("decided_at", "")[:10])
        for request in _takedowns_touching(lineage)]
    checkpoints = tuple(
        CheckpointFacts(id=c.pk, name=c.name, kind=c.kind, sha256=c.sha256,
                        created_at=c.created_at.isoformat())
        for c in ModelCheckpoint.objects.filter(version=version).order_by("pk"))
    diff = {}
    if version.parent is not None:
        from provenance.services.datasets import version_diff

        found = version_diff(version, version.parent)
        diff = {"added": found["added"]["total"], "removed": found["removed"]["total"]}
    base = str(setting("PUBLIC_URL")).rstrip("/")
    known = set(CardWords.__dataclass_fields__)
    return VersionFacts(
        slug=version.dataset.slug, title=version.dataset.title, number=version.number,
        url=f"{base}/datasets/{version.dataset.slug}/v{version.number}/",
        publisher=str(setting("PUBLISHER")),
        published_at=(version.published_at or version.created_at).isoformat(),
        manifest_root=version.manifest_root, documents=version.document_count,
        tokens=version.token_estimate, bytes=version.byte_count,
        intended_use=str(version.recipe.get("intended_use", "unknown")), recipe=version.recipe,
        sources=sources, by_license_class=dict(version.counts_by_license_class),
        exclusions=dict(version.exclusions_by_reason),
        parent=str(version.parent) if version.parent else "", diff=diff,
        takedowns=tuple(takedowns), checkpoints=checkpoints,
        languages={tag: n for tag, n in version_composition(version).by_language.items() if tag},
        words=CardWords(**{k: v for k, v in (words or {}).items() if k in known}))


def checkpoint_facts(checkpoint: ModelCheckpoint) -> ModelFacts:
    """A model card's facts: the version, its licence mix, the checkpoint's ancestors and the
    remediation runs asked of it (each with its request and verdict)."""
    from takedowns.models import UnlearningRun

    version = checkpoint.version
    sources = DataSource.objects.filter(pk__in=[int(k) for k in version.counts_by_source])
    lineage = []
    child, parent = checkpoint, checkpoint.parent
    while parent is not None:
        made_by = UnlearningRun.objects.filter(result=child).select_related("request").first()
        how = (f" by {made_by.method} for {made_by.request.reference}" if made_by else "")
        lineage.append(f"derived{how} from {parent.name} (sha256 {parent.sha256[:16]}…)")
        child, parent = parent, parent.parent
    made = UnlearningRun.objects.filter(result=checkpoint).select_related(
        "request", "checkpoint").first()
    origin = (f"Made by {made.method} for takedown {made.request.reference} "
              f"({made.request.legal_basis}), to replace {made.checkpoint.name} (sha256 "
              f"{made.checkpoint.sha256[:16]}…)"
              + (": trained from scratch on the version without the claimed work"
                 if made.method == UnlearningRun.Method.RETRAIN else "")
              if made is not None else "")
    remediations = tuple(
        f"{run.request.reference} ({run.request.legal_basis}): {run.method}, {run.state}"
        + (f", verdict {run.verdict}" if run.verdict else "")
        + (f", remediated model {run.result.name}" if run.result else "")
        for run in UnlearningRun.objects.filter(checkpoint=checkpoint)
        .select_related("request", "result").order_by("pk"))
    base = str(setting("PUBLIC_URL")).rstrip("/")
    return ModelFacts(
        name=checkpoint.name, kind=checkpoint.kind, sha256=checkpoint.sha256,
        config=dict(checkpoint.config), metrics=dict(checkpoint.metrics), version=str(version),
        version_url=f"{base}/datasets/{version.dataset.slug}/v{version.number}/",
        manifest_root=version.manifest_root, documents=version.document_count,
        license_expression=all_of(s.license_expression for s in sources),
        license_mix=dict(version.counts_by_license_class), lineage=tuple(lineage),
        remediations=remediations, origin=origin)


def _takedowns_touching(version_ids: set[int]) -> list[Any]:
    """The takedown requests whose remediation made one of these versions."""
    from takedowns.models import TakedownRequest

    touched = Q()
    for version_id in version_ids:
        touched |= Q(scope__remediation__versions__contains=[{"to": version_id}])
    return list(TakedownRequest.objects.filter(touched).order_by("pk")) if version_ids else []


def _removed_from(request: Any, lineage: set[int]) -> int:
    """Documents a takedown's remediation removed in making versions of this lineage."""
    return sum(v.get("diff", {}).get("removed", {}).get("total", 0)
               for v in request.scope.get("remediation", {}).get("versions", [])
               if v.get("to") in lineage)


_ANCESTRY = """
SELECT x.source_id, count(*), coalesce(sum(d.token_estimate), 0)
FROM (SELECT DISTINCT document_id, source_id FROM provenance_versionmember
      WHERE version_id = ANY(%s)) x
JOIN provenance_document d ON d.id = x.document_id GROUP BY 1
"""


def ancestry_cache_key(version_ids: list[int]) -> str:
    return "ancestry-by-source:" + ",".join(str(pk) for pk in sorted(version_ids))


def _ancestry_by_source(versions: list[DatasetVersion]) -> tuple[dict[int, tuple[int, int]],
                                                                  set[int]]:
    """Per source (documents, tokens) over the union of the versions' members, and every source
    a recipe looked at: those it kept and those it left out (an opt-out removes all of a
    source's documents, so it has no members). One version: its stored composition. Several (a
    fine-tuned or unlearned model): their union, each document once, counted once per ancestry
    and cached (published versions never change)."""
    compositions = [version_composition(v) for v in versions]
    considered = {int(k) for c in compositions
                  for k in (*c.by_source, *c.exclusions_by_source)}
    if len(compositions) == 1:
        return ({int(k): (v["documents"], v["tokens"])
                 for k, v in compositions[0].by_source.items()}, considered)
    key = ancestry_cache_key([v.pk for v in versions])
    found = cache.get(key)
    if found is None:
        with connection.cursor() as cursor:
            cursor.execute(_ANCESTRY, [[v.pk for v in versions]])
            found = {source: (documents, int(tokens))
                     for source, documents, tokens in cursor.fetchall()}
        cache.set(key, found, timeout=None)
    return found, considered


def ai_act_summary(checkpoint: ModelCheckpoint) -> AiActSummary:
    """The training-content summary of a model: every version in its ancestry (a fine-tuned or
    unlearned model keeps its ancestors' data), per source exact token sums."""
    from provenance.models import OptOutSignal
    from takedowns.models import TakedownEvent, TakedownRequest

    versions: list[DatasetVersion] = []
    current: ModelCheckpoint | None = checkpoint
    while current is not None:
        if current.version not in versions:
            versions.append(current.version)
        current = current.parent
    by_source, considered = _ancestry_by_source(versions)
    sources = tuple(
        SourceShare(name=s.name, owner=s.owner.public_name, acquisition=s.acquisition, uri=s.uri,
                    license=s.license_expression, documents=by_source[s.pk][0],
                    tokens=by_source[s.pk][1])
        for s in DataSource.objects.filter(pk__in=by_source).select_related("owner")
        .order_by("name"))
    lineage: set[int] = set()
    for version in versions:
        lineage |= set(_lineage(version))
    removed = sum(_removed_from(request, lineage) for request in _takedowns_touching(lineage))
    accepted = TakedownEvent.objects.filter(to_state=TakedownRequest.State.ACCEPTED).values(
        "request").distinct().count()
    base = str(setting("PUBLIC_URL")).rstrip("/")
    return AiActSummary(
        provider=str(setting("PUBLISHER")), model=checkpoint.name,
        model_sha256=checkpoint.sha256, versions=tuple(str(v) for v in versions),
        generated_at=timezone.now().date().isoformat(), sources=sources,
        opt_out_kinds=tuple(OptOutSignal.Kind.values),
        sources_with_opt_out=OptOutSignal.objects.filter(
            source_id__in=considered, opted_out=True).values("source").distinct().count(),
        excluded_for_opt_out=sum(v.exclusions_by_reason.get("opt_out", 0) for v in versions),
        takedowns_received=TakedownRequest.objects.count(), takedowns_accepted=accepted,
        takedowns_rejected=TakedownRequest.objects.filter(
            state=TakedownRequest.State.REJECTED).count(),
        documents_removed_by_takedowns=removed, transparency_url=f"{base}/transparency/")


def bars(counts: dict[Any, int], labels: dict[Any, str] | None = None) -> list[dict[str, Any]]:
    """Rows for a horizontal bar chart: label, count, share of the total (for widths), largest
    first."""
    total = sum(counts.values()) or 1
    return [{"label": (labels or {}).get(key, str(key)), "n": n, "share": n / total,
             "width": round(100 * n / total, 1)}
            for key, n in sorted(counts.items(), key=lambda item: -item[1])]


def version_page(slug: str, number: int) -> dict[str, Any] | None:
    """A published version's public page: composition, what was left out and why, the diff to
    its parent, the takedowns applied to its lineage, the models trained on it, its cards. Every
    figure is stored with the version or its card; nothing is counted over documents here."""
    from dashboards.models import VersionCard

    version = (DatasetVersion.objects.select_related("dataset", "parent")
               .filter(dataset__slug=slug, number=number,
                       state=DatasetVersion.State.PUBLISHED).first())
    if version is None:
        return None
    names = dict(DataSource.objects.filter(pk__in=[int(k) for k in version.counts_by_source])
                 .values_list("pk", "name"))
    # The newest published revision (the public page shows what was published), else the draft.
    card = (VersionCard.objects.filter(version=version)
            .order_by(F("published_at").desc(nulls_last=True), "-revision").first())
    takedowns = _takedowns_touching(set(_lineage(version)))
    languages = version_composition(version).by_language
    return {
        "version": version,
        "by_language": bars(languages, {tag: language_name(tag) if tag else "not declared"
                                        for tag in languages}),
        "by_source": bars({int(k): n for k, n in version.counts_by_source.items()}, names),
        "by_license_class": bars(version.counts_by_license_class),
        "exclusions": bars(version.exclusions_by_reason),
        "card": card,
        "takedowns": takedowns,
        "checkpoints": list(ModelCheckpoint.objects.filter(version=version).order_by("pk")),
        "versions": list(DatasetVersion.objects.filter(
            dataset=version.dataset, state=DatasetVersion.State.PUBLISHED).order_by("number")
            .values_list("number", flat=True)),
    }


_TAKEDOWNS_BY_BASIS = """
SELECT r.legal_basis, count(*),
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM takedowns_takedownevent e
                                      WHERE e.request_id = r.id AND e.to_state = 'accepted')),
       count(*) FILTER (WHERE r.state = 'rejected')
FROM takedowns_takedownrequest r GROUP BY 1 ORDER BY 1
"""
# Days from receipt to the first decision (decided or rejected), over the requests decided.
_DECISION_DAYS = """
SELECT count(*), percentile_cont(0.5) WITHIN GROUP (
           ORDER BY extract(epoch FROM d.at - r.received_at) / 86400)
FROM takedowns_takedownrequest r
JOIN (SELECT request_id, min(at) AS at FROM takedowns_takedownevent
      WHERE to_state IN ('decided', 'rejected') GROUP BY request_id) d ON d.request_id = r.id
"""


def transparency() -> dict[str, Any]:
    """The public transparency page: takedown statistics (counted by the database, two queries
    whatever the number of requests) and the ledger's latest checkpoint."""
    from provenance.models import LedgerCheckpoint
    from takedowns.models import TakedownRequest

    with connection.cursor() as cursor:
        cursor.execute(_TAKEDOWNS_BY_BASIS)
        by_basis = {basis: {"received": received, "accepted": accepted, "rejected": rejected}
                    for basis, received, accepted, rejected in cursor.fetchall()}
        cursor.execute(_DECISION_DAYS)
        decided, median_days = cursor.fetchone()
    labels = dict(TakedownRequest.Basis.choices)
    return {
        "received": sum(v["received"] for v in by_basis.values()),
        "accepted": sum(v["accepted"] for v in by_basis.values()),
        "rejected": sum(v["rejected"] for v in by_basis.values()),
        "decided": decided,
        "median_days": round(median_days, 1) if median_days is not None else None,
        "by_basis": [{"basis": labels.get(k, k), **v} for k, v in sorted(by_basis.items())],
        "basis_bars": bars({k: v["received"] for k, v in by_basis.items()}, labels),
        "checkpoint": LedgerCheckpoint.objects.order_by("-size").first(),
        "versions": list(DatasetVersion.objects.filter(state=DatasetVersion.State.PUBLISHED)
                         .select_related("dataset").order_by("dataset__slug", "-number")[:100]),
        "models": list(ModelCheckpoint.objects.order_by("-pk").values("pk", "name", "kind")[:100]),
    }


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
    ("generation", "attribution.ModelOutput", "id", "/outputs/{}/"),
    ("span index", "attribution.SpanIndex", "checkpoint_id", "/checkpoints/{}/"),
    ("gradient index", "attribution.GradientIndex", "id", "/api/v1/gradient-indexes/{}/"),
    ("attribution", "attribution.AttributionRun", "id", "/attribution/{}/"),
    ("remediation", "takedowns.UnlearningRun", "request_id", "/takedowns/{}/"),
)
FAILED_SHOWN_FOR = timedelta(days=7)


def jobs_board(limit: int = 100) -> dict[str, Any]:
    """The jobs that are queued or running, and those that failed in the last week, of every
    kind, in one query (a UNION over the job tables), newest first."""
    from django.apps import apps

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
    return {"active": active, "failed": [r for r in rows if r["state"] == "failed"]}


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
