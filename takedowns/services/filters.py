"""Interim output filters at generation: a checkpoint that still holds a removed work does not
repeat it verbatim."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from core.storage import artifact_local, artifact_path
from takedowns.engine.output_filter import redact
from takedowns.models import OutputFilter


@lru_cache(maxsize=32)
def _hashes(path: str) -> np.ndarray:
    return np.load(artifact_local(path))


def output_filter_apply(checkpoint_id: int, text: str) -> tuple[str, dict[str, Any]]:
    """The text with every active filter of the checkpoint applied, and what was blocked."""
    blocked, requests = 0, []
    for row in OutputFilter.objects.filter(checkpoint_id=checkpoint_id, active=True) \
            .select_related("request").order_by("pk"):
        text, words = redact(text, _hashes(str(artifact_path(row.path))), row.ngram)
        if words:
            blocked += words
            requests.append(row.request.reference)
    return text, ({"words_blocked": blocked, "requests": requests} if blocked else {})
