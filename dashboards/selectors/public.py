"""What anyone may read: a published version's page and the transparency page."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import (
    F,
)

from dashboards.composition import version_composition
from dashboards.selectors.cards import takedowns_touching, version_lineage
from provenance.engine.text import language_name
from provenance.models import DatasetVersion, DataSource, ModelCheckpoint


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
    rows = list(DataSource.objects.filter(pk__in=[int(k) for k in version.counts_by_source]))
    names = {s.pk: s.name for s in rows}
    from dashboards.selectors.cards import generator_facts

    # Synthetic text: the chain to the model that wrote it (queries only when there is some).
    synthetic = [(s.name, facts.line()) for s in sorted(rows, key=lambda s: s.name)
                 if (facts := generator_facts(s)) is not None]
    # The newest published revision (the public page shows what was published), else the draft.
    card = (VersionCard.objects.filter(version=version)
            .order_by(F("published_at").desc(nulls_last=True), "-revision").first())
    takedowns = takedowns_touching(set(version_lineage(version)))
    languages = version_composition(version).by_language
    from provenance.services.datasets import recipe_diff

    return {
        "version": version,
        "stages": version.recipe.get("stages", []),
        "synthetic": synthetic,
        "recipe_changes": recipe_diff(version.parent.recipe, version.recipe)
        if version.parent else [],
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
