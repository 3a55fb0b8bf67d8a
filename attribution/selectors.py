from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from attribution.models import AttributionRun, GradientIndex, ModelOutput
from provenance.permissions import role_of
from provenance.selectors import MODEL_READERS


def model_output_list(user: Any) -> QuerySet[ModelOutput]:
    if role_of(user) in MODEL_READERS:
        return ModelOutput.objects.select_related("checkpoint")
    return ModelOutput.objects.none()


def attribution_run_list(user: Any) -> QuerySet[AttributionRun]:
    if role_of(user) in MODEL_READERS:
        return AttributionRun.objects.select_related("output", "report").prefetch_related(
            "results")
    return AttributionRun.objects.none()


def gradient_index_list(user: Any) -> QuerySet[GradientIndex]:
    if role_of(user) in MODEL_READERS:
        return GradientIndex.objects.all()
    return GradientIndex.objects.none()
