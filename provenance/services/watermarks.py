"""Detecting sources' watermarks in any text (a model output, or text a rights-holder sends)."""

from __future__ import annotations

from typing import Any

from provenance.engine import watermark
from provenance.models import DataSource
from provenance.selectors import source_list

TRUST = ("A watermark is evidence that a model learned from a source's documents, not proof: "
         "anything that drops Unicode format characters (category Cf) removes it, such as "
         "NFKC-style text cleaning, many copy-paste paths and sanitisers; so its absence proves "
         "nothing. A source is named only when random watermark characters would come as close "
         "to some registered code with probability p_value <= 0.01 (calibrated on the codebook "
         "itself: bench/watermark_null.py); confidence is 1 - p_value. A run can still come "
         "from a model that emits watermark characters for text it never saw (see the "
         "false-positive rate measured in bench/watermark_eval.py).")


def watermark_codebook() -> dict[int, str]:
    """Every source's watermark code, by source id."""
    return {pk: code for pk, code in DataSource.objects.values_list("pk", "watermark") if code}


def watermark_detect(*, text: str, user: Any, top_k: int = 3) -> dict[str, Any]:
    found = watermark.detect(text, watermark_codebook(), top_k=top_k)
    names = dict(source_list(user).filter(pk__in=[c.source for c in found])
                 .values_list("pk", "name"))
    return {
        "characters_found": sum(text.count(c) for c in watermark.ALPHABET),
        "candidates": [{"source": c.source if c.source in names else None,
                        "source_name": names.get(c.source, "a source you cannot see"),
                        "distance": c.distance, "confidence": c.confidence,
                        "p_value": c.p_value, "found": c.found}
                       for c in found],
        "note": TRUST,
    }
