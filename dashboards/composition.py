"""A published version's composition, counted once over its members and kept: the public pages,
the cards and the AI Act summaries read it instead of counting documents per request."""

from __future__ import annotations

from django.db import connection, transaction

from dashboards.models import VersionComposition
from provenance.models import DatasetVersion

_COMPOSITION = """
SELECT m.source_id, split_part(d.language, '-', 1), count(*), coalesce(sum(d.token_estimate), 0)
FROM provenance_versionmember m JOIN provenance_document d ON d.id = m.document_id
WHERE m.version_id = %s GROUP BY 1, 2
"""
_EXCLUDED = """
SELECT source_id, count(*) FROM provenance_versionexclusion WHERE version_id = %s GROUP BY 1
"""


def version_composition(version: DatasetVersion) -> VersionComposition:
    """The version's composition, counted over its members the first time it is asked for
    (when the version is published: the card task asks) and kept."""
    found = VersionComposition.objects.filter(version=version).first()
    if found is not None:
        return found
    by_source: dict[str, dict[str, int]] = {}
    by_language: dict[str, int] = {}
    with connection.cursor() as cursor:
        cursor.execute(_COMPOSITION, [version.pk])
        for source, language, documents, tokens in cursor.fetchall():
            counts = by_source.setdefault(str(source), {"documents": 0, "tokens": 0})
            counts["documents"] += documents
            counts["tokens"] += int(tokens)
            by_language[language] = by_language.get(language, 0) + documents
        cursor.execute(_EXCLUDED, [version.pk])
        excluded = {str(source): n for source, n in cursor.fetchall()}
    with transaction.atomic():  # two workers at once: the first one's row stays
        composition, _ = VersionComposition.objects.get_or_create(
            version=version, defaults={"by_source": by_source, "by_language": by_language,
                                       "exclusions_by_source": excluded})
    return composition
