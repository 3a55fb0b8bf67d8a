"""The facts behind dataset and model cards, and the EU AI Act training-content summary."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.db import connection
from django.db.models import (
    Q,
)
from django.utils import timezone

from core.conf import setting
from dashboards.composition import version_composition
from dashboards.engine.ai_act import AiActSummary, SourceShare
from dashboards.engine.cards.facts import (
    BenchmarkFacts,
    CardWords,
    CheckpointFacts,
    GeneratorFacts,
    SourceFacts,
    TakedownFacts,
    VersionFacts,
    all_of,
)
from dashboards.engine.cards.model import ModelFacts
from provenance.engine.licenses import UseClass
from provenance.models import DatasetVersion, DataSource, ModelCheckpoint


def version_lineage(version: DatasetVersion) -> list[int]:
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
                    license_as_written=s.license_as_written, generator=generator_facts(s))
        for s in DataSource.objects.filter(pk__in=counts).select_related("owner")
        .order_by("name"))
    lineage = set(version_lineage(version))
    takedowns = [
        TakedownFacts(reference=request.reference, legal_basis=request.legal_basis,
                      documents=_removed_from(request, lineage),
                      decided_at=(request.decision or {}).get("decided_at", "")[:10])
        for request in takedowns_touching(lineage)]
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
        takedowns=tuple(takedowns), checkpoints=checkpoints, benchmarks=benchmark_facts(version),
        languages={tag: n for tag, n in version_composition(version).by_language.items() if tag},
        words=CardWords(**{k: v for k, v in (words or {}).items() if k in known}))


def generator_facts(source: DataSource) -> GeneratorFacts | None:
    """A synthetic source's lineage for the cards (None for text no model wrote)."""
    if source.generator_id is None:
        return None
    from provenance.services.lineage import upstream_sources

    checkpoint = ModelCheckpoint.objects.select_related("version__dataset").get(
        pk=source.generator_id)
    ups = upstream_sources(source)
    rows = {s.pk: s for s in DataSource.objects.filter(pk__in=[u.source_id for u in ups])}
    upstream = tuple((rows[u.source_id].name, rows[u.source_id].license_expression,
                      rows[u.source_id].use_class) for u in ups)
    # licenses.UseClass is ordered from least to most restrictive; ties: the nearest first
    decisive = max(upstream, key=lambda u: UseClass.from_label(u[2]), default=None)
    return GeneratorFacts(checkpoint=checkpoint.pk, name=checkpoint.name,
                          sha256=checkpoint.sha256, trained_on=str(checkpoint.version),
                          upstream=upstream, decisive=decisive[0] if decisive else "")


def synthetic_chain(source: DataSource) -> str:
    """A synthetic source's chain in one sentence ("" for text no model wrote)."""
    facts = generator_facts(source)
    if facts is not None:
        return facts.line()
    if source.generator_name:
        return (f"written by {source.generator_name}, an outside model"
                + (f" (terms of use: {source.generator_terms_url})"
                   if source.generator_terms_url else ""))
    return ""


def benchmark_facts(version: DatasetVersion) -> tuple[BenchmarkFacts, ...]:
    from benchmarks.services.runs import entry_results

    def three(d: dict[str, Any]) -> tuple[float, float, float]:
        return float(d["mean"]), float(d["low"]), float(d["high"])

    return tuple(
        BenchmarkFacts(benchmark=r["benchmark"], run=r["run"], rank=r["row"]["rank"],
                       entries=r["entries"], reference=r["row"]["reference"],
                       reference_label=r["reference"],
                       bits_per_byte=three(r["row"]["bits_per_byte"]),
                       relative=three(r["row"]["relative"]),
                       probe=r["row"]["probe"]["mean"] if r["row"].get("probe") else None,
                       decision_accuracy=r["decision_accuracy"], seeds=r["seeds"],
                       steps=r["steps"])
        for r in entry_results(version))


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


def takedowns_touching(version_ids: set[int]) -> list[Any]:
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
                    tokens=by_source[s.pk][1], chain=synthetic_chain(s))
        for s in DataSource.objects.filter(pk__in=by_source).select_related("owner")
        .order_by("name"))
    lineage: set[int] = set()
    for version in versions:
        lineage |= set(version_lineage(version))
    removed = sum(_removed_from(request, lineage) for request in takedowns_touching(lineage))
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
