"""Where a synthetic source's text comes from: the checkpoint that wrote it, the versions that
checkpoint and its ancestors trained on, and those versions' sources — followed up again where
one of them is synthetic too. What licences, verdicts and takedowns follow."""

from __future__ import annotations

from collections import deque
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
