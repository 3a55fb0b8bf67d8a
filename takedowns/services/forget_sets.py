"""The sets a remediated model is measured on: the forgotten documents (as trained), a retain
sample, held-out texts of the same sources and of others, and the canaries of the forget set."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from provenance.engine.canary import CanarySpec, canary_sequence, null_sequences
from provenance.models import (
    Document,
    ModelCheckpoint,
    SourceCanary,
    TrainingRun,
    VersionExclusion,
    VersionMember,
)
from provenance.services.lineage import inherited_canary
from provenance.services.training import training_export

HOLDOUT_MAX = 1000
UTILITY_MAX = 256
CANARY_NULLS = 500  # smallest p-value 1/501: a hard fail (p <= 0.01) can be seen


def origin_run(checkpoint: ModelCheckpoint) -> TrainingRun | None:
    """The training run behind a checkpoint: its own, or (unlearned) its nearest ancestor's."""
    while checkpoint.run is None and checkpoint.parent is not None:
        checkpoint = checkpoint.parent
    return checkpoint.run


@dataclass
class Sets:
    forget: list[str]         # the removed documents as stored: what is measured
    forget_trained: list[str]  # the same as the checkpoint saw them (marks, canaries): unlearned
    retain: list[str]         # as trained
    holdout: list[str]        # never trained on, from the forget set's sources (membership)
    utility: list[str]        # never trained on, from the other sources (held-out perplexity)
    canary: list[str] | None  # a removed source's canary, then its null sequences
    retain_ids: list[int] = field(default_factory=list)  # the documents `retain` came from
    # where the canary came from when the model never saw it itself: the teachers whose
    # synthetic text it learned from
    canary_inherited_from: list[int] = field(default_factory=list)

    def sizes(self) -> dict[str, Any]:
        return {"forget_documents": len(self.forget), "holdout_documents": len(self.holdout),
                "retain_documents": len(self.retain), "utility_documents": len(self.utility),
                "canary_nulls": len(self.canary) - 1 if self.canary else 0}

    def split(self, seed: int = 0) -> tuple[Sets, Sets]:
        """(validation, test): each set cut in two halves by a seeded permutation, disjoint, so
        that a candidate chosen on one is certified on documents it was not chosen on. The
        canary (one sequence) is in both; its null sequences are split."""
        rng = random.Random(f"verification split {seed}")

        def halves(n: int) -> tuple[list[int], list[int]]:
            order = list(range(n))
            rng.shuffle(order)
            return sorted(order[:n // 2]), sorted(order[n // 2:])

        parts: list[dict[str, Any]] = [{}, {}]
        f_val, f_test = halves(len(self.forget))
        for part, index in zip(parts, (f_val, f_test), strict=True):
            part["forget"] = [self.forget[i] for i in index]
            part["forget_trained"] = [self.forget_trained[i] for i in index]
        for name in ("holdout", "utility"):
            values = getattr(self, name)
            for part, index in zip(parts, halves(len(values)), strict=True):
                part[name] = [values[i] for i in index]
        r_val, r_test = halves(len(self.retain))
        for part, index in zip(parts, (r_val, r_test), strict=True):
            part["retain"] = [self.retain[i] for i in index]
            part["retain_ids"] = [self.retain_ids[i] for i in index if i < len(self.retain_ids)]
        for n, part in enumerate(parts):
            part["canary"] = [self.canary[0], *self.canary[1 + n::2]] if self.canary else None
            part["canary_inherited_from"] = self.canary_inherited_from
        return Sets(**parts[0]), Sets(**parts[1])


def trained_export(checkpoint: ModelCheckpoint, **kwargs: Any) -> Any:
    """The checkpoint's training text as it saw it (its own canaries and watermarks)."""
    run = origin_run(checkpoint)
    if run is None:
        return training_export(checkpoint.version, marks={"canaries": {}}, **kwargs)
    return training_export(checkpoint.version, marks=run.marks,
                           watermarks=bool(run.config.get("watermarks")), **kwargs)


def verification_sets(checkpoint: ModelCheckpoint, forget_ids: list[int], retain_n: int,
                      seed: int = 0, exclude_retain: set[int] | None = None,
                      removed: set[int] | None = None) -> Sets:
    """The forget, retain, held-out and utility texts and the canary of one checkpoint's
    verification. `exclude_retain`: documents not to sample the retain set from (verification
    leaves out those the unlearning runs trained on, so utility is judged on retained text
    the unlearning never saw). `removed`: every document the request removed (a student's
    forget set is the synthetic text; the work itself, whose canary its teacher saw, is
    here)."""
    purged = sorted(Document.objects.filter(pk__in=forget_ids, text_purged=True)
                    .values_list("pk", flat=True))
    if purged:
        raise ValueError(f"the text of documents {purged} was purged: unlearning and its "
                         f"verification need it")
    trained = trained_export(checkpoint, only=set(forget_ids), include_removed=True)
    # Measured in the same form as the held-out text (stored, no watermark characters, no
    # canary), so that membership does not measure "carries invisible characters"; the canary
    # has its own test.
    stored = dict(Document.objects.filter(pk__in=trained.documents).values_list("pk", "text"))
    forget = [stored[d] for d in trained.documents]
    everything = trained_export(checkpoint)
    skip = set(forget_ids) | (exclude_retain or set())
    rest = [(t, d) for t, d in zip(everything.texts, everything.documents, strict=True)
            if d not in skip]
    retain = random.Random(seed).sample(rest, min(retain_n, len(rest)))
    # Held-out text from the forget set's own sources: a membership test between different
    # distributions (a removed source's style against everyone else's) measures the style.
    # Held-out documents the same request removed still count (never trained on either way),
    # until their text is purged.
    sources = set(VersionMember.objects.filter(version=checkpoint.version,
                                               document_id__in=forget_ids)
                  .values_list("source_id", flat=True))
    held = VersionExclusion.objects.filter(version=checkpoint.version,
                                           reason=VersionExclusion.Reason.HELD_OUT)

    def texts(rows: Any, limit: int) -> list[str]:
        return list(Document.objects.filter(pk__in=rows.values("document_id"),
                                            text_purged=False)
                    .order_by("sha256").values_list("text", flat=True)[:limit])

    canary, inherited = _canary(checkpoint, set(forget_ids), (removed or set()) | set(forget_ids))
    # Utility is measured on what the model should still know: held-out text of the rest.
    return Sets(forget=forget, forget_trained=trained.texts, retain=[t for t, _ in retain],
                retain_ids=[d for _, d in retain],
                holdout=texts(held.filter(source_id__in=sources), HOLDOUT_MAX),
                utility=texts(held.exclude(source_id__in=sources), UTILITY_MAX),
                canary=canary, canary_inherited_from=inherited)


def _canary(checkpoint: ModelCheckpoint, forget: set[int], removed: set[int]
            ) -> tuple[list[str] | None, list[int]]:
    """The canary of a source all of whose carriers are in the forget set (if some stay, the
    model is meant to know it still), then its null sequences; failing that, a canary the
    model could only have inherited, from teachers whose carriers of it were all removed
    (with those teachers)."""
    run = origin_run(checkpoint)
    marks = run.marks.get("canaries", {}) if run else {}
    own = [int(source) for source, carriers in sorted(marks.items())
           if carriers and set(carriers) <= forget]
    canary = SourceCanary.objects.filter(source_id__in=own).order_by("source_id").first()
    teachers: list[int] = []
    if canary is None:
        inherited = inherited_canary(checkpoint, removed)
        if inherited is not None:
            canary = SourceCanary.objects.filter(source_id=inherited[0]).first()
            teachers = inherited[1]
    if canary is None:
        return None, []
    spec = CanarySpec.from_dict(canary.spec)
    return [canary_sequence(spec, canary.secret),
            *null_sequences(spec, canary.secret, CANARY_NULLS, stream="takedown")], teachers


# ---------------------------------------------------------------------------------------------
# The worker side
