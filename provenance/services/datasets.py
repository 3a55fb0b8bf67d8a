"""Datasets, curation into immutable versions, publishing, diffs and manifests.

Curation reads the corpus, decides per document (in sha256 order, so the result depends only on
the recipe and the data, never on insertion order), and writes the whole version, members and
exclusions in one transaction at the end: a job that dies leaves nothing behind.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.errors import InvalidTransition
from core.jobs import claim_row, job_run
from provenance.engine import licenses
from provenance.engine.merkle import manifest_root
from provenance.engine.text import NUM_PERM, minhash_from_bytes
from provenance.ledger.append import ledger_append
from provenance.models import (
    CurationJob,
    Dataset,
    DatasetVersion,
    DataSource,
    Document,
    User,
    VersionExclusion,
)
from provenance.services.sources import source_opted_out
from provenance.signals import version_published

Reason = VersionExclusion.Reason
RECIPE_KEYS = {"intended_use", "sources", "allow_unknown_license", "exclude_share_alike",
               "opt_out_cutoff", "near_duplicate_threshold", "holdout_fraction", "publish",
               "notes"}


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


# ---------------------------------------------------------------------------------------------
# The curation itself


@dataclass
class Plan:
    members: list[tuple[int, int, str]] = field(default_factory=list)  # (doc, source, sha256)
    exclusions: list[tuple[int, int, str, str]] = field(default_factory=list)
    tokens: int = 0
    bytes: int = 0
    by_source: Counter[str] = field(default_factory=Counter)
    by_class: Counter[str] = field(default_factory=Counter)


def _source_verdicts(recipe: dict[str, Any]) -> dict[int, tuple[str, str]]:
    """Sources whose content may not be used, with the reason and a detail."""
    cutoff = datetime.fromisoformat(recipe["opt_out_cutoff"])
    verdicts: dict[int, tuple[str, str]] = {}
    for source in DataSource.objects.all():
        use_class = licenses.UseClass.from_label(source.use_class)
        if not licenses.allowed(use_class, recipe["intended_use"],
                                recipe["allow_unknown_license"]):
            verdicts[source.pk] = (Reason.LICENSE, f"{source.license_expression} is "
                                                   f"{source.use_class}")
        elif recipe["exclude_share_alike"] and source.share_alike:
            verdicts[source.pk] = (Reason.LICENSE, f"{source.license_expression} is share-alike")
        elif (signal := source_opted_out(source, cutoff)) is not None:
            verdicts[source.pk] = (Reason.OPT_OUT, f"{signal.kind} observed "
                                                   f"{signal.observed_at.isoformat()}")
    return verdicts


_CANDIDATES = """
SELECT d.id, d.sha256, d.removed_at IS NOT NULL, d.minhash, d.token_estimate, d.byte_count,
       array_agg(o.source_id ORDER BY o.source_id)
FROM provenance_document d JOIN provenance_occurrence o ON o.document_id = d.id
WHERE d.id IN (SELECT document_id FROM provenance_occurrence WHERE source_id = ANY(%s))
GROUP BY d.id ORDER BY d.sha256
"""


def held_out(sha256: str, fraction: float) -> bool:
    """A fixed share of the texts, chosen by their hash alone: the same text is held out by
    every recipe with the same fraction (so a later version never trains on it)."""
    return fraction > 0 and int(sha256[-8:], 16) < fraction * 0x1_0000_0000


def curation_plan(recipe: dict[str, Any], progress: Any = None) -> Plan:
    """Decide every candidate document. Rules, in order:
    1. tombstoned (removed by a takedown) -> out;
    2. a text is used only if every source it was found in allows the intended use and has not
       opted out as of the cut-off (an opt-out anywhere is honoured) -> else out (license/opt_out);
    3. only recipe sources that are active contribute -> else out (source_inactive);
    4. near-duplicates (MinHash LSH at the threshold, estimated Jaccard confirmed) of a document
       kept earlier in sha256 order -> out.
    """
    verdicts = _source_verdicts(recipe)
    sources = {s.pk: s for s in DataSource.objects.filter(pk__in=recipe["sources"])}
    active = {pk for pk, s in sources.items() if s.status == DataSource.Status.ACTIVE}
    threshold = recipe["near_duplicate_threshold"]
    from datasketch import MinHashLSH  # (and scipy): loaded where a plan is made

    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM) if threshold else None
    kept_sketches: dict[int, Any] = {}
    plan = Plan()
    # A server-side cursor: candidates stream in chunks instead of all MinHashes at once.
    with connection.chunked_cursor() as cursor:
        cursor.execute(_CANDIDATES, [recipe["sources"]])
        for n, (doc, sha, removed, blob, tokens, size, doc_sources) in enumerate(cursor, 1):
            if progress and n % 1000 == 0:
                progress(n)
            in_recipe = [s for s in doc_sources if s in sources]
            home = in_recipe[0]
            if removed:
                plan.exclusions.append((doc, home, Reason.TOMBSTONED, ""))
                continue
            blocked = [(s, verdicts[s]) for s in doc_sources if s in verdicts]
            if blocked:
                source_id, (reason, detail) = blocked[0]
                plan.exclusions.append((doc, source_id, reason, detail))
                continue
            usable = [s for s in in_recipe if s in active]
            if not usable:
                plan.exclusions.append((doc, home, Reason.SOURCE_INACTIVE,
                                        f"source status {sources[home].status}"))
                continue
            if lsh is not None:
                sketch = minhash_from_bytes(bytes(blob))
                near = [k for k in lsh.query(sketch)
                        if kept_sketches[k].jaccard(sketch) >= threshold]
                if near:
                    plan.exclusions.append((doc, usable[0], Reason.NEAR_DUPLICATE,
                                            f"near-duplicate of document {min(near)}"))
                    continue
                lsh.insert(doc, sketch)
                kept_sketches[doc] = sketch
            if held_out(sha, recipe.get("holdout_fraction", 0.0)):
                # After deduplication, so no near-copy of a held-out text is trained on.
                plan.exclusions.append((doc, usable[0], Reason.HELD_OUT,
                                        "set aside for membership tests"))
                continue
            plan.members.append((doc, usable[0], sha))
            plan.tokens += tokens
            plan.bytes += size
            plan.by_source[str(usable[0])] += 1
            plan.by_class[sources[usable[0]].use_class] += 1
    return plan


def _copy_rows(table: str, columns: str, rows: list[tuple]) -> None:
    with connection.cursor() as cursor, cursor.copy(
            f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


@transaction.atomic
def version_create_from_plan(*, dataset: Dataset, recipe: dict[str, Any], plan: Plan,
                             actor: User | None) -> DatasetVersion:
    dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)  # serialises numbering
    number = (dataset.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    parent = dataset.versions.filter(state=DatasetVersion.State.PUBLISHED).order_by(
        "-number").first()
    version = DatasetVersion.objects.create(
        dataset=dataset, number=number, parent=parent, recipe=recipe,
        manifest_root=manifest_root([sha for _, _, sha in plan.members]),
        document_count=len(plan.members), token_estimate=plan.tokens, byte_count=plan.bytes,
        counts_by_source=dict(sorted(plan.by_source.items())),
        counts_by_license_class=dict(sorted(plan.by_class.items())),
        exclusions_by_reason=dict(sorted(Counter(e[2] for e in plan.exclusions).items())),
        notes=recipe.get("notes", ""), created_by=actor,
    )
    _copy_rows("provenance_versionmember", "version_id, document_id, source_id",
               [(version.pk, doc, src) for doc, src, _ in plan.members])
    _copy_rows("provenance_versionexclusion", "version_id, document_id, source_id, reason, detail",
               [(version.pk, doc, src, reason, detail[:500])
                for doc, src, reason, detail in plan.exclusions])
    ledger_append(actor=actor, event="dataset_version.created", subject=version,
                  payload={"dataset": dataset.slug, "number": number,
                           "parent": parent.pk if parent else None,
                           "manifest_root": version.manifest_root,
                           "documents": version.document_count, "recipe": recipe})
    return version


@transaction.atomic
def version_derive(*, parent: DatasetVersion, detail: str, actor: User | None,
                   remove: set[int] | None = None,
                   restore: dict[int, int] | None = None) -> DatasetVersion:
    """A new published version of the parent's dataset: the parent's members less `remove`
    (recorded as tombstoned exclusions) plus `restore` ({document: source}, documents a
    takedown took out and a counter-notice brought back), nothing else changed: what the
    parent left out (held out, near-duplicates, licences...) stays left out, for the same
    reasons, so the card of a remediated version still says so."""
    remove, restore = remove or set(), dict(restore or {})
    rows = list(parent.members.order_by("document_id").values_list(
        "document_id", "source_id", "document__sha256", "document__token_estimate",
        "document__byte_count", "source__use_class"))
    classes = dict(DataSource.objects.filter(pk__in=set(restore.values()))
                   .values_list("pk", "use_class"))
    # A restored document comes back under the source it was a member under before.
    rows += [(doc, restore[doc], sha, tokens, size, classes[restore[doc]])
             for doc, sha, tokens, size in Document.objects.filter(
                 pk__in=list(restore), removed_at__isnull=True)
             .exclude(memberships__version=parent).order_by("pk")
             .values_list("pk", "sha256", "token_estimate", "byte_count")]
    plan = Plan()
    for doc, source, sha, tokens, size, use_class in rows:
        if doc in remove:
            plan.exclusions.append((doc, source, Reason.TOMBSTONED, detail))
            continue
        plan.members.append((doc, source, sha))
        plan.tokens += tokens
        plan.bytes += size
        plan.by_source[str(source)] += 1
        plan.by_class[use_class] += 1
    removed = len(plan.exclusions)
    back = {doc for doc, *_ in rows} & set(restore)
    plan.exclusions += list(parent.exclusions.exclude(document_id__in=back).order_by(
        "document_id").values_list("document_id", "source_id", "reason", "detail"))
    recipe = {**parent.recipe, "notes": f"{parent} less {removed}, plus "
                                        f"{len(back)} document(s): {detail}"}
    version = version_create_from_plan(dataset=parent.dataset, recipe=recipe, plan=plan,
                                       actor=actor)
    return dataset_version_publish(version=version, actor=actor)


def curation_run(*, job_id: int) -> CurationJob | None:
    with job_run("curation", job_id, model=CurationJob,
                 claim=claim_row(CurationJob, stage="selecting")) as job:
        if job is None:
            return None

        def progress(n: int) -> None:
            CurationJob.objects.filter(pk=job_id).update(position=n, updated_at=timezone.now())

        plan = curation_plan(job.recipe, progress)
        with transaction.atomic():
            version = version_create_from_plan(dataset=job.dataset, recipe=job.recipe, plan=plan,
                                               actor=job.created_by)
            if job.recipe.get("publish"):
                version = dataset_version_publish(version=version, actor=job.created_by)
            total = len(plan.members) + len(plan.exclusions)
            CurationJob.objects.filter(pk=job_id).update(
                state=CurationJob.State.SUCCEEDED, stage="done", version=version, position=total,
                total=total, finished_at=timezone.now(), updated_at=timezone.now())
    job.refresh_from_db()
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
    return manifest_root(version_member_hashes(version))


_DIFF = """
SELECT m.source_id, count(*) FROM provenance_versionmember m
WHERE m.version_id = %s AND NOT EXISTS (
    SELECT 1 FROM provenance_versionmember o
    WHERE o.version_id = %s AND o.document_id = m.document_id)
GROUP BY m.source_id
"""


def version_diff(new: DatasetVersion, old: DatasetVersion) -> dict[str, Any]:
    """Documents added in `new` and removed from `old`, per source."""
    result: dict[str, Any] = {"from": old.pk, "to": new.pk}
    with connection.cursor() as cursor:
        for key, (a, b) in {"added": (new, old), "removed": (old, new)}.items():
            cursor.execute(_DIFF, [a.pk, b.pk])
            by_source = defaultdict(int, {str(s): n for s, n in cursor.fetchall()})
            result[key] = {"total": sum(by_source.values()), "by_source": dict(by_source)}
    result["unchanged"] = new.document_count - result["added"]["total"]
    return result
