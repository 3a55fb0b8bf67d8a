"""Curation: every candidate document of a recipe decided, in sha256 order (so the result depends
only on the recipe and the data, never on insertion order), and the version written from those
decisions in one transaction: a job that dies leaves nothing behind.

The decisions are staged in the database (`staging.Plan`) and near-duplicates are found through
LSH band keys kept in a table and grouped in SQL, so a worker's memory is O(batch) whatever the
corpus; the decision per document is the one datasketch's in-memory LSH index gives.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from core.jobs import claim_row, job_progress, job_run
from provenance.engine import dedup, licenses
from provenance.ledger.append import ledger_append
from provenance.models import CurationJob, Dataset, DatasetVersion, DataSource, User
from provenance.models import VersionExclusion as Exclusion
from provenance.services.datasets import dataset_version_publish
from provenance.services.stages import stages_apply
from provenance.services.staging import Plan, copy_bigints, copy_rows
from provenance.services.usage import source_refused

Reason = Exclusion.Reason
BATCH = 20_000  # candidates per round trip; the worker holds one batch at a time


def held_out(sha256: str, fraction: float) -> bool:
    """A fixed share of the texts, chosen by their hash alone: the same text is held out by
    every recipe with the same fraction (so a later version never trains on it)."""
    return fraction > 0 and int(sha256[-8:], 16) < fraction * 0x1_0000_0000


def source_verdicts(recipe: dict[str, Any]) -> dict[int, tuple[str, str]]:
    """Sources whose content may not be used, with the reason and a detail."""
    cutoff = datetime.fromisoformat(recipe["opt_out_cutoff"])
    verdicts: dict[int, tuple[str, str]] = {}
    names: dict[int, str] = {}
    for source in DataSource.objects.all():
        names[source.pk] = source.name
        use_class = licenses.UseClass.from_label(source.use_class)
        if not licenses.allowed(use_class, recipe["intended_use"],
                                recipe["allow_unknown_license"]):
            verdicts[source.pk] = (Reason.LICENSE, f"{source.license_expression} is "
                                                   f"{source.use_class}")
        elif recipe["exclude_share_alike"] and source.share_alike:
            verdicts[source.pk] = (Reason.LICENSE, f"{source.license_expression} is share-alike")
        elif (refusal := source_refused(source, "train", cutoff)) is not None:
            signal, term = refusal.signal, refusal.term
            assert signal is not None and term is not None
            verdicts[source.pk] = (Reason.OPT_OUT, f"{signal.kind} observed "
                                                   f"{signal.observed_at.isoformat()}: "
                                                   f"{term.says}")
    return _inherited(verdicts, names)


def _inherited(verdicts: dict[int, tuple[str, str]],
               names: dict[int, str]) -> dict[int, tuple[str, str]]:
    """A synthetic source is used only if every source upstream of it may be (the text a model
    wrote carries the terms of what it learned from): the first upstream verdict, nearest
    first, is the synthetic source's, naming that source and the chain to it."""
    from provenance.services.lineage import refused_through_lineage

    out = dict(verdicts)
    for pk, up in refused_through_lineage(verdicts).items():
        reason, detail = verdicts[up.source_id]
        out[pk] = (reason, f"derived from source {names[up.source_id]!r} (#{up.source_id}) "
                           f"through {' → '.join(up.path)}: {detail}")
    return out


CANDIDATES_SQL = """
SELECT d.id, d.sha256, d.removed_at IS NOT NULL, d.minhash,
       array_agg(o.source_id ORDER BY o.source_id)
FROM provenance_document d JOIN provenance_occurrence o ON o.document_id = d.id
WHERE d.id IN (SELECT document_id FROM provenance_occurrence WHERE source_id = ANY(%s))
GROUP BY d.id ORDER BY d.sha256
"""


def curation_plan(recipe: dict[str, Any], progress: Callable[[int], None] | None = None) -> Plan:
    """Decide every candidate document. Rules, in order:
    1. tombstoned (removed by a takedown) -> out;
    2. a text is used only if every source it was found in allows the intended use and has not
       refused training as of the cut-off (the train verdict of services/usage) -> else out
       (license / opt_out);
    3. only recipe sources that are active contribute -> else out (source_inactive);
    4. near-duplicates (MinHash LSH at the threshold, estimated Jaccard confirmed) of a document
       kept earlier in sha256 order -> out;
    5. the held-out share (by hash, after deduplication) -> out (held_out);
    6. the recipe's stages, in its order, over what is left (services/stages.py).
    """
    verdicts = source_verdicts(recipe)
    sources = {s.pk: s for s in DataSource.objects.filter(pk__in=recipe["sources"])}
    active = {pk for pk, s in sources.items() if s.status == DataSource.Status.ACTIVE}
    threshold = recipe["near_duplicate_threshold"]
    fraction = recipe.get("holdout_fraction", 0.0)
    lsh = dedup.lsh_params(threshold) if threshold else None
    with transaction.atomic():  # a server-side cursor that streams, not one held past commit
        with connection.cursor() as cursor:  # the sorts and groupings are the server's, on disk
            cursor.execute("SET LOCAL work_mem = '256MB'")  # past this; this transaction only
        plan = Plan()
        if lsh:
            bands = f"{plan.table}_band"
            plan.execute(f"CREATE TEMPORARY TABLE {bands} (key bigint, position bigint)")
        n = 0
        with connection.chunked_cursor() as cursor:
            cursor.execute(CANDIDATES_SQL, [recipe["sources"]])
            while batch := cursor.fetchmany(BATCH):
                decided: list[tuple[int, int, int, str | None, str, bool]] = []
                eligible, blobs = [], []
                for doc, sha, removed, blob, doc_sources in batch:
                    n += 1
                    in_recipe = [s for s in doc_sources if s in sources]
                    blocked = [s for s in doc_sources if s in verdicts]
                    usable = [s for s in in_recipe if s in active]
                    if removed:
                        decided.append((n, doc, in_recipe[0], Reason.TOMBSTONED, "", False))
                    elif blocked:
                        reason, detail = verdicts[blocked[0]]
                        decided.append((n, doc, blocked[0], reason, detail, False))
                    elif not usable:
                        decided.append((n, doc, in_recipe[0], Reason.SOURCE_INACTIVE,
                                        f"source status {sources[in_recipe[0]].status}", False))
                    else:
                        decided.append((n, doc, usable[0], None, "", held_out(sha, fraction)))
                        eligible.append(n)
                        blobs.append(blob)
                plan.copy(decided)
                if lsh and eligible:
                    keys = dedup.band_keys(dedup.signatures(blobs), *lsh)
                    positions = np.repeat(np.asarray(eligible, dtype=np.int64), lsh[0])
                    copy_bigints(bands, ("key", "position"), keys.ravel(), positions)
                if progress:
                    progress(n)
        if lsh:
            _near_duplicates(plan, threshold, *lsh)
        plan.execute("UPDATE {plan} SET reason = %s, detail = 'set aside for membership tests' "
                     "WHERE held AND reason IS NULL", [Reason.HELD_OUT])
        if recipe.get("stages"):
            stages_apply(plan, recipe["stages"])
    return plan


def _near_duplicates(plan: Plan, threshold: float, bands: int, rows: int) -> None:
    """Rule 4 over the band keys staged beside the plan. Pairs that share a key are found in SQL;
    then, in position order, a document is out if a verified pair joins it to an earlier one
    still kept (whose own decision came first). Held here: the documents found out so far."""
    table = plan.table
    plan.execute(f"""
        CREATE TEMPORARY TABLE {table}_pair AS
        WITH shared AS (SELECT key FROM {table}_band GROUP BY key HAVING count(*) > 1),
             held AS (SELECT b.key, b.position FROM {table}_band b JOIN shared USING (key))
        SELECT DISTINCT a.position AS earlier, b.position AS later
        FROM held a JOIN held b ON a.key = b.key AND a.position < b.position""")
    out: dict[int, int] = {}  # position -> the kept document it nearly duplicates (least id)
    with connection.chunked_cursor() as cursor:
        cursor.execute(f"""
            SELECT p.later, p.earlier, e.document_id, dl.minhash, de.minhash
            FROM {table}_pair p
            JOIN {table} l ON l.position = p.later
            JOIN provenance_document dl ON dl.id = l.document_id
            JOIN {table} e ON e.position = p.earlier
            JOIN provenance_document de ON de.id = e.document_id
            ORDER BY p.later, p.earlier""")
        while batch := cursor.fetchmany(BATCH):
            near = dedup.near_pairs(dedup.signatures([r[3] for r in batch]),
                                    dedup.signatures([r[4] for r in batch]), bands, rows,
                                    threshold)
            for (later, earlier, earlier_doc, _, _), is_near in zip(batch, near, strict=True):
                if is_near and earlier not in out:
                    out[later] = min(out.get(later, earlier_doc), earlier_doc)
    if out:
        dups = f"{table}_dup"
        plan.execute(f"CREATE TEMPORARY TABLE {dups} (position bigint, near bigint)")
        copy_rows(dups, "position, near", out.items())
        plan.execute(f"UPDATE {{plan}} p SET reason = %s, "
                     f"detail = 'near-duplicate of document ' || d.near "
                     f"FROM {dups} d WHERE p.position = d.position", [Reason.NEAR_DUPLICATE])
        plan.execute(f"DROP TABLE {dups}")
    plan.execute(f"DROP TABLE {table}_pair, {table}_band")


@transaction.atomic
def version_create_from_plan(*, dataset: Dataset, recipe: dict[str, Any], plan: Plan,
                             actor: User | None) -> DatasetVersion:
    """The version a plan decided (the plan's stage is dropped: a plan makes one version)."""
    dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)  # serialises numbering
    number = (dataset.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    parent = dataset.versions.filter(state=DatasetVersion.State.PUBLISHED).order_by(
        "-number").first()
    totals = plan.totals()
    version = DatasetVersion.objects.create(
        dataset=dataset, number=number, parent=parent, recipe=recipe,
        manifest_root=plan.manifest_root(), document_count=totals.members,
        token_estimate=totals.tokens, byte_count=totals.bytes,
        counts_by_source=dict(sorted(totals.by_source.items())),
        counts_by_license_class=dict(sorted(totals.by_class.items())),
        exclusions_by_reason=dict(sorted(totals.by_reason.items())),
        notes=recipe.get("notes", ""), created_by=actor,
    )
    plan.write_version(version.pk)
    plan.drop()
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
    reasons, so the card of a remediated version still says so. All of it in SQL."""
    removing, restoring = sorted(remove or ()), dict(restore or {})
    plan = Plan()
    plan.execute("""
        INSERT INTO {plan} (position, document_id, source_id, reason, detail)
        SELECT row_number() OVER (ORDER BY document_id), document_id, source_id,
               CASE WHEN document_id = ANY(%(remove)s) THEN %(tomb)s END,
               CASE WHEN document_id = ANY(%(remove)s) THEN %(detail)s ELSE '' END
        FROM provenance_versionmember WHERE version_id = %(parent)s""",
        {"remove": removing, "tomb": Reason.TOMBSTONED, "detail": detail, "parent": parent.pk})
    removed = plan.count("reason IS NOT NULL")
    # A restored document comes back under the source it was a member under before.
    plan.execute("""
        INSERT INTO {plan} (position, document_id, source_id, reason, detail)
        SELECT (SELECT count(*) FROM {plan}) + row_number() OVER (ORDER BY d.id), d.id, r.source,
               NULL, ''
        FROM unnest(%s::bigint[], %s::bigint[]) AS r(document, source)
        JOIN provenance_document d ON d.id = r.document AND d.removed_at IS NULL
        WHERE NOT EXISTS (SELECT 1 FROM provenance_versionmember m
                          WHERE m.version_id = %s AND m.document_id = d.id)""",
                 [list(restoring), list(restoring.values()), parent.pk])
    back = plan.count("document_id = ANY(%s)", [list(restoring)])
    plan.execute("""
        INSERT INTO {plan} (position, document_id, source_id, reason, detail)
        SELECT (SELECT count(*) FROM {plan}) + row_number() OVER (ORDER BY e.document_id),
               e.document_id, e.source_id, e.reason, e.detail
        FROM provenance_versionexclusion e WHERE e.version_id = %s
        AND NOT EXISTS (SELECT 1 FROM {plan} p WHERE p.document_id = e.document_id)""",
                 [parent.pk])
    recipe = {**parent.recipe, "notes": f"{parent} less {removed}, plus "
                                        f"{back} document(s): {detail}"}
    version = version_create_from_plan(dataset=parent.dataset, recipe=recipe, plan=plan,
                                       actor=actor)
    return dataset_version_publish(version=version, actor=actor)


def curation_run(*, job_id: int) -> CurationJob | None:
    with job_run("curation", job_id, model=CurationJob,
                 claim=claim_row(CurationJob, stage="selecting")) as job:
        if job is None:
            return None

        def progress(n: int) -> None:
            job_progress(CurationJob, job_id, n)

        with transaction.atomic():  # the stage and the version commit together, or neither
            plan = curation_plan(job.recipe, progress)
            version = version_create_from_plan(dataset=job.dataset, recipe=job.recipe, plan=plan,
                                               actor=job.created_by)
            if job.recipe.get("publish"):
                version = dataset_version_publish(version=version, actor=job.created_by)
            total = version.document_count + sum(version.exclusions_by_reason.values())
            CurationJob.objects.filter(pk=job_id).update(
                state=CurationJob.State.SUCCEEDED, stage="done", version=version, position=total,
                total=total, finished_at=timezone.now(), updated_at=timezone.now())
    job.refresh_from_db()
    return job
