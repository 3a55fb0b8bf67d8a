"""Attribution before and after remediation, for the outputs that triggered the request: outputs
of the original checkpoint whose attribution credited a removed document. Each prompt is
generated again by every remediated model, and both completions are traced through the original's
span index (which still knows the removed documents): the share of each completion that is
verbatim text of a removed document, before and after. Only figures are kept, never the text."""

from __future__ import annotations

from typing import Any

import numpy as np

from attribution.engine.spans import SpanParams, coverage
from attribution.models import AttributionResult, ModelOutput, SpanIndex
from attribution.services.spans import spans_of_text
from provenance.engine.lm_config import DecodeParams
from provenance.engine.watermark import strip
from provenance.models import ModelCheckpoint

MAX_OUTPUTS = 20
PARAMS = SpanParams(min_length=8, max_count=10_000, max_docs=100, max_density=1.0)


def _share(text: str, index: SpanIndex, forget: set[int]) -> float:
    ids, spans, _ = spans_of_text(strip(text), index, PARAMS)
    masks = [mask for doc, mask in coverage(len(ids), spans).items() if doc in forget]
    return float(np.logical_or.reduce(masks).mean()) if masks else 0.0


def attribution_before_after(checkpoint: ModelCheckpoint, forget: set[int],
                             remediated: dict[str, ModelCheckpoint]) -> dict[str, Any]:
    """{"outputs": [...], "note": ...} for the certificate; `remediated`: label -> model."""
    from provenance.engine import lm

    outputs = list(ModelOutput.objects.filter(
        checkpoint=checkpoint, state=ModelOutput.State.SUCCEEDED,
        runs__results__document_id__in=forget).distinct().order_by("pk")[:MAX_OUTPUTS])
    if not outputs:
        return {"outputs": [], "note": "no attributed output of this checkpoint credited a "
                                       "removed document"}
    index = SpanIndex.objects.filter(checkpoint=checkpoint, version=checkpoint.version,
                                     state=SpanIndex.State.SUCCEEDED).first()
    if index is None:
        return {"outputs": [], "note": "no span index of the original checkpoint to trace with"}
    models = {label: lm.load(model.local_path) for label, model in remediated.items()}
    rows = []
    for output in outputs:
        credited = AttributionResult.objects.filter(run__output=output,
                                                    document_id__in=forget)
        params = DecodeParams.from_dict(output.params)
        after = {}
        for label, (model, tokenizer) in models.items():
            after[label] = round(_share(lm.generate(model, tokenizer, output.prompt, params),
                                        index, forget), 4)
        rows.append({"output": output.pk,
                     "credited_by": sorted(set(credited.values_list("method", flat=True))),
                     "best_rank": min(credited.values_list("rank", flat=True), default=None),
                     "verbatim_share_before": round(_share(output.completion, index, forget), 4),
                     "verbatim_share_after": after})
    return {"outputs": rows, "note": "share of each completion that is verbatim text of a "
                                     "removed document (span index of the original)"}
