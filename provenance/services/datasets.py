"""Datasets, recipes, curation jobs, publishing, diffs and manifests (the curation itself, deciding
each document and writing a version, is `provenance.services.curation`)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.errors import InvalidTransition
from provenance.engine import licenses
from provenance.ledger.append import ledger_append
from provenance.models import (
    CurationJob,
    Dataset,
    DatasetVersion,
    DataSource,
    User,
    VersionExclusion,
)
from provenance.services.staging import manifest_root_query
from provenance.signals import version_published

Reason = VersionExclusion.Reason
RECIPE_KEYS = {"intended_use", "sources", "allow_unknown_license", "exclude_share_alike",
               "opt_out_cutoff", "near_duplicate_threshold", "holdout_fraction", "publish",
               "notes", "stages"}


@transaction.atomic
def dataset_create(*, actor: User | None, slug: str, title: str, description: str = "") -> Dataset:
    if Dataset.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"a dataset named {slug!r} exists"})
    dataset = Dataset(slug=slug, title=title, description=description, created_by=actor)
    dataset.full_clean()
    dataset.save()
    ledger_append(actor=actor, event="dataset.created", subject=dataset, payload={"slug": slug})
    return dataset


def recipe_validate(recipe: Any) -> dict[str, Any]:
    """Check a recipe and fill in its defaults, so that the stored recipe alone reproduces the
    version (the opt-out cut-off in particular is pinned to a time)."""
    if not isinstance(recipe, dict):
        raise ValidationError({"recipe": "must be a JSON object"})
    unknown = sorted(set(recipe) - RECIPE_KEYS)
    if unknown:
        raise ValidationError({"recipe": f"unknown key(s): {', '.join(unknown)}"})
    use = recipe.get("intended_use")
    if use not in licenses.POLICIES:
        raise ValidationError({"recipe.intended_use": f"must be one of "
                                                      f"{', '.join(licenses.POLICIES)}"})
    out: dict[str, Any] = {"intended_use": use}
    sources = recipe.get("sources")
    if sources is None:
        sources = sorted(DataSource.objects.values_list("pk", flat=True))
    if not isinstance(sources, list) or not all(isinstance(s, int) for s in sources):
        raise ValidationError({"recipe.sources": "must be a list of source ids"})
    missing = sorted(set(sources) - set(DataSource.objects.filter(pk__in=sources)
                                        .values_list("pk", flat=True)))
    if missing:
        raise ValidationError({"recipe.sources": f"no such source(s): {missing}"})
    out["sources"] = sorted(set(sources))
    for key in ("allow_unknown_license", "exclude_share_alike", "publish"):
        value = recipe.get(key, False)
        if not isinstance(value, bool):
            raise ValidationError({f"recipe.{key}": "must be true or false"})
        out[key] = value
    cutoff = recipe.get("opt_out_cutoff")
    parsed = parse_datetime(cutoff) if isinstance(cutoff, str) else None
    if cutoff is not None and (parsed is None or parsed.tzinfo is None):
        raise ValidationError({"recipe.opt_out_cutoff": "must be an ISO 8601 time with a zone"})
    out["opt_out_cutoff"] = (parsed or timezone.now()).isoformat()
    threshold = recipe.get("near_duplicate_threshold", 0.8)
    if threshold is not None and (not isinstance(threshold, int | float)
                                  or isinstance(threshold, bool) or not 0 < threshold <= 1):
        raise ValidationError({"recipe.near_duplicate_threshold": "must be in (0, 1] or null"})
    out["near_duplicate_threshold"] = threshold
    holdout = recipe.get("holdout_fraction", 0.0)
    if not isinstance(holdout, int | float) or isinstance(holdout, bool) \
            or not 0 <= holdout <= 0.5:
        raise ValidationError({"recipe.holdout_fraction": "must be in [0, 0.5]"})
    out["holdout_fraction"] = float(holdout)
    if recipe.get("stages"):  # none: the recipe as it was before stages, unchanged
        from provenance.services.stages import stages_validate

        out["stages"] = stages_validate(recipe["stages"], out["sources"])
    notes = recipe.get("notes", "")
    if not isinstance(notes, str):
        raise ValidationError({"recipe.notes": "must be a string"})
    out["notes"] = notes
    return out


@transaction.atomic
def curation_job_create(*, dataset: Dataset, recipe: Any, actor: User | None,
                        enqueue: bool = True) -> CurationJob:
    """Queue a curation (enqueue=False: the caller runs `curation_run` itself, as the CLI does)."""
    job = CurationJob.objects.create(dataset=dataset, recipe=recipe_validate(recipe),
                                     created_by=actor, unit="documents")
    if enqueue:
        from provenance.tasks import curate_run_task

        curate_run_task.delay_on_commit(job.pk)
    return job


@transaction.atomic
def dataset_version_publish(*, version: DatasetVersion, actor: User | None) -> DatasetVersion:
    version = DatasetVersion.objects.select_for_update().get(pk=version.pk)
    if version.state != DatasetVersion.State.DRAFT:
        raise InvalidTransition(str(version), version.state, "publish")
    version.state = DatasetVersion.State.PUBLISHED
    version.published_at = timezone.now()
    version.published_by = actor
    version.save(update_fields=["state", "published_at", "published_by"])
    ledger_append(actor=actor, event="dataset_version.published", subject=version,
                  payload={"manifest_root": version.manifest_root,
                           "documents": version.document_count})
    version_published.send(sender=DatasetVersion, version=version)
    return version


@transaction.atomic
def dataset_version_discard(*, version: DatasetVersion, actor: User) -> None:
    """Delete a draft (a published version cannot be deleted: the database refuses)."""
    version = DatasetVersion.objects.select_for_update().get(pk=version.pk)
    if version.state != DatasetVersion.State.DRAFT:
        raise InvalidTransition(str(version), version.state, "discard")
    CurationJob.objects.filter(version=version).update(version=None)
    ledger_append(actor=actor, event="dataset_version.discarded", subject=version,
                  payload={"number": version.number})
    version.members.all().delete()
    version.exclusions.all().delete()
    version.delete()


# ---------------------------------------------------------------------------------------------
# Reading versions: manifests and diffs


def version_member_hashes(version: DatasetVersion) -> list[str]:
    return list(version.members.order_by("document__sha256")
                .values_list("document__sha256", flat=True))


def version_manifest_recompute(version: DatasetVersion) -> str:
    """The manifest root recomputed from the members, streamed in sha256 order."""
    return manifest_root_query(
        "SELECT d.sha256 FROM provenance_versionmember m JOIN provenance_document d "
        "ON d.id = m.document_id WHERE m.version_id = %s ORDER BY d.sha256", [version.pk])


_DIFF = """
SELECT m.source_id, count(*) FROM provenance_versionmember m
WHERE m.version_id = %s AND NOT EXISTS (
    SELECT 1 FROM provenance_versionmember o
    WHERE o.version_id = %s AND o.document_id = m.document_id)
GROUP BY m.source_id
"""


def _recipe_paths(recipe: dict[str, Any]) -> dict[str, Any]:
    """A recipe flattened to paths: stages by position and kind ("stages[1].quality.min_words"),
    so that a changed threshold reads as one line, and a stage added or dropped as its own."""
    out: dict[str, Any] = {}
    for key, value in recipe.items():
        if key == "stages":
            for i, stage in enumerate(value):
                for name, param in stage.items():
                    if name != "stage":
                        out[f"stages[{i}].{stage['stage']}.{name}"] = param
                out.setdefault(f"stages[{i}].{stage['stage']}", "present")
        elif key != "notes":
            out[key] = value
    return out


def recipe_diff(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """What changed from one recipe to the next, one row per setting: path, before, after (None
    where absent). The notes are left out: they describe, they do not decide."""
    a, b = _recipe_paths(old), _recipe_paths(new)
    return [{"path": path, "before": a.get(path), "after": b.get(path)}
            for path in sorted(set(a) | set(b)) if a.get(path) != b.get(path)]


def version_diff(new: DatasetVersion, old: DatasetVersion) -> dict[str, Any]:
    """Documents added in `new` and removed from `old`, per source, and what changed in the
    recipe."""
    result: dict[str, Any] = {"from": old.pk, "to": new.pk}
    with connection.cursor() as cursor:
        for key, (a, b) in {"added": (new, old), "removed": (old, new)}.items():
            cursor.execute(_DIFF, [a.pk, b.pk])
            by_source = defaultdict(int, {str(s): n for s, n in cursor.fetchall()})
            result[key] = {"total": sum(by_source.values()), "by_source": dict(by_source)}
    result["unchanged"] = new.document_count - result["added"]["total"]
    result["recipe"] = recipe_diff(old.recipe, new.recipe)
    return result
