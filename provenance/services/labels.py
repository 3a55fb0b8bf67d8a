"""Which documents of a version a label job labels, the most useful first: diverse (k-center
greedy over their stored MiniLM embeddings), uncertain (the checkpoint's highest mean loss per
token: what it knows least), or in hash order. Chosen once per job and stored with it."""

from __future__ import annotations

from typing import Any

import numpy as np

from provenance.engine import selection
from provenance.models import SynthesisJob


def pool_choose(job: SynthesisJob, model: Any, tokenizer: Any) -> list[int]:
    from provenance.engine import lm

    assert job.pool_version is not None
    rows = list(job.pool_version.members.filter(document__removed_at__isnull=True)
                .order_by("document__sha256").values_list("document_id", "document__text"))
    ids = [pk for pk, _ in rows]
    if job.selection == "order":
        return ids[:job.count]
    if job.selection == "uncertainty":
        losses = lm.sequence_loss(model, tokenizer, [text for _, text in rows])
        order = sorted(range(len(ids)), key=lambda i: (-losses[i], i))
        return [ids[i] for i in order[:job.count]]
    from provenance.services.stages import document_vectors

    picks = selection.kcenter_greedy(document_vectors(ids), np.ones(len(ids)), job.count,
                                     job.seed)
    return [ids[i] for i in picks]
