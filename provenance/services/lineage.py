"""Where a synthetic source's text comes from: the checkpoint that wrote it, the versions that
checkpoint and its ancestors trained on, and those versions' sources — followed up again where
one of them is synthetic too. What licences, verdicts and takedowns follow."""

from __future__ import annotations

from collections import deque
from collections.abc import Collection
from dataclasses import dataclass

from provenance.models import DatasetVersion, DataSource, ModelCheckpoint


@dataclass(frozen=True)
class Upstream:
    source_id: int
    # How it is reached, nearest first: "checkpoint NAME (sha256 …)", "version SLUG@vN", ...
    path: tuple[str, ...]


def _trained_on(checkpoint: ModelCheckpoint) -> list[tuple[ModelCheckpoint, DatasetVersion]]:
    """The checkpoint and each ancestor (fine-tuned from, unlearned from) with its version."""
    chain, seen = [], set()
    current: ModelCheckpoint | None = checkpoint
    while current is not None and current.pk not in seen:
        seen.add(current.pk)
        chain.append((current, current.version))
        current = current.parent
    return chain


def upstream_sources(source: DataSource) -> list[Upstream]:
    """Every source upstream of `source`, breadth first (the nearest first), each once. A source
    that is not synthetic has none."""
    found: list[Upstream] = []
    seen = {source.pk}
    queue: deque[tuple[DataSource, tuple[str, ...]]] = deque([(source, ())])
    while queue:
        current, path = queue.popleft()
        generator = (ModelCheckpoint.objects.select_related("version__dataset", "parent")
                     .filter(pk=current.generator_id).first()) if current.generator_id else None
        if generator is None:
            continue
        for checkpoint, version in _trained_on(generator):
            via = (*path, f"checkpoint {checkpoint.name} (sha256 {checkpoint.sha256[:12]}…)",
                   f"version {version}")
            ids = sorted(int(k) for k in version.counts_by_source)
            for upstream in DataSource.objects.filter(pk__in=ids).order_by("pk"):
                if upstream.pk in seen:
                    continue
                seen.add(upstream.pk)
                found.append(Upstream(upstream.pk, via))
                queue.append((upstream, via))
    return found


@dataclass
class Descendants:
    """What text reached, downstream: id -> generation (0: trained on the starting versions
    themselves; 1: trained on synthetic text a generation-0 model wrote; ...)."""

    versions: dict[int, int]
    checkpoints: dict[int, int]        # trained on those versions, or derived from such
    synthetic_sources: dict[int, int]  # written by those checkpoints

    @property
    def students(self) -> list[int]:
        """Checkpoints that learned from synthetic text (generation 1 and later)."""
        return sorted(pk for pk, g in self.checkpoints.items() if g > 0)

    def to_dict(self) -> dict[str, list[dict[str, int]]]:
        def rows(found: dict[int, int]) -> list[dict[str, int]]:
            return [{"id": pk, "generation": g} for pk, g in sorted(found.items())]

        return {"versions": rows(self.versions), "checkpoints": rows(self.checkpoints),
                "synthetic_sources": rows(self.synthetic_sources),
                "students": [{"id": pk, "generation": self.checkpoints[pk]}
                             for pk in self.students]}


def descendants_of_versions(version_ids: set[int]) -> Descendants:
    """Breadth first, a few indexed queries a generation (never a scan of members): the
    checkpoints trained on the versions and those derived from them (fine-tuned, unlearned),
    the synthetic sources they wrote (by a synthesis job or declared as generator), the
    versions that hold those sources (their per-source counts) — and on again."""
    from provenance.models import SynthesisJob

    found = Descendants({pk: 0 for pk in version_ids}, {}, {})
    frontier, generation = set(version_ids), 0
    while frontier:
        new = set(ModelCheckpoint.objects.filter(version_id__in=frontier)
                  .values_list("pk", flat=True)) - set(found.checkpoints)
        reached = set(new)
        while new:  # derived checkpoints, down the parent links
            new = set(ModelCheckpoint.objects.filter(parent_id__in=new)
                      .values_list("pk", flat=True)) - reached - set(found.checkpoints)
            reached |= new
        found.checkpoints.update({pk: generation for pk in reached})
        written = (set(DataSource.objects.filter(generator_id__in=reached)
                       .values_list("pk", flat=True))
                   | set(SynthesisJob.objects.filter(checkpoint_id__in=reached)
                         .values_list("source_id", flat=True))) - set(found.synthetic_sources)
        found.synthetic_sources.update({pk: generation for pk in written})
        generation += 1
        frontier = set(DatasetVersion.objects.filter(
            counts_by_source__has_any_keys=[str(pk) for pk in written])
            .values_list("pk", flat=True)) - set(found.versions) if written else set()
        found.versions.update({pk: generation for pk in frontier})
    return found


def source_descendants(source: DataSource) -> Descendants:
    """Everything downstream of a source's text: the versions that hold it and what follows."""
    return descendants_of_versions(set(DatasetVersion.objects.filter(
        counts_by_source__has_key=str(source.pk)).values_list("pk", flat=True)))


def upstream_generators(checkpoint: ModelCheckpoint) -> list[ModelCheckpoint]:
    """The checkpoints upstream of `checkpoint` through text they wrote: the generators of the
    synthetic sources in the versions it (and its ancestors) trained on, then theirs, nearest
    first, each once."""
    found: list[ModelCheckpoint] = []
    seen: set[int] = set()
    queue = deque(version for _, version in _trained_on(checkpoint))
    while queue:
        version = queue.popleft()
        ids = [int(k) for k in version.counts_by_source]
        for generator in (ModelCheckpoint.objects.filter(
                generated_sources__pk__in=ids).select_related("run", "version", "parent")
                .distinct().order_by("pk")):
            if generator.pk in seen:
                continue
            seen.add(generator.pk)
            found.append(generator)
            queue.extend(v for _, v in _trained_on(generator))
    return found


def canary_teachers(checkpoint: ModelCheckpoint, source_id: int) -> list[int]:
    """The upstream generators (teachers, nearest first) whose own training wove `source_id`'s
    canary in: a student can carry a canary it never saw, through the text its teacher
    wrote."""
    return [g.pk for g in upstream_generators(checkpoint)
            if g.run is not None and str(source_id) in g.run.marks.get("canaries", {})]


def inherited_canary(checkpoint: ModelCheckpoint, removed: set[int]
                     ) -> tuple[int, list[int]] | None:
    """(source id, teachers) of a canary that reached `checkpoint` only through a teacher and
    all of whose carriers in that teacher's training are among the `removed` documents: what
    a takedown of that source checks the student for. None if there is none."""
    teachers: dict[int, list[int]] = {}
    for generator in upstream_generators(checkpoint):
        marks = generator.run.marks.get("canaries", {}) if generator.run is not None else {}
        for source, carriers in marks.items():
            if carriers and set(carriers) <= removed:
                teachers.setdefault(int(source), []).append(generator.pk)
    if not teachers:
        return None
    source = min(teachers)
    return source, teachers[source]


def descendants_summary(version_ids: set[int]) -> dict[str, list[dict[str, object]]]:
    """What a takedown's scope shows beyond the versions and the checkpoints trained on them:
    the synthetic sources written by those checkpoints (or their derivatives), the later
    versions that hold that text, and the students trained on it, each with its generation."""
    found = descendants_of_versions(version_ids)
    sources = DataSource.objects.filter(pk__in=found.synthetic_sources).order_by("pk")
    versions = DatasetVersion.objects.filter(
        pk__in=[pk for pk, g in found.versions.items() if g > 0]).select_related("dataset")
    students = ModelCheckpoint.objects.filter(pk__in=found.students).order_by("pk")
    return {
        "synthetic_sources": [{"id": s.pk, "name": s.name, "documents": s.document_count,
                               "generator": s.generator_id or None,
                               "generation": found.synthetic_sources[s.pk]} for s in sources],
        "versions": [{"id": v.pk, "version": str(v), "generation": found.versions[v.pk]}
                     for v in versions.order_by("pk")],
        "students": [{"id": c.pk, "name": c.name, "version": c.version_id,
                      "generation": found.checkpoints[c.pk]} for c in students]}


def refused_through_lineage(refused: Collection[int]) -> dict[int, Upstream]:
    """Each synthetic source not refused itself but with a refused source upstream: the first
    such upstream source (the nearest), with the chain to it. Few sources are synthetic; each
    one's upstream is walked (a few indexed queries)."""
    found: dict[int, Upstream] = {}
    for source in (DataSource.objects.filter(generator__isnull=False).exclude(pk__in=refused)
                   .order_by("pk")):
        first = next((u for u in upstream_sources(source) if u.source_id in refused), None)
        if first is not None:
            found[source.pk] = first
    return found


def inherited_refusals(usage: str) -> list[int]:
    """The synthetic sources a refusal reaches through their lineage: a source upstream of them
    refuses `usage` ("train" or "ai_input") by its signals now."""
    from django.db import connection

    from provenance.services.usage import REFUSING_SOURCES_SQL

    if not DataSource.objects.filter(generator__isnull=False).exists():
        return []
    with connection.cursor() as cursor:
        cursor.execute(REFUSING_SOURCES_SQL.format(usage=usage), [])
        refusing = {row[0] for row in cursor.fetchall()}
    return sorted(refused_through_lineage(refusing))
