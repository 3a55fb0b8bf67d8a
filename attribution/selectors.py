from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from attribution.models import AttributionRun, GradientIndex, ModelOutput
from core.permissions import Capability, can


def model_output_list(user: Any) -> QuerySet[ModelOutput]:
    if can(user, Capability.READ_ALL):
        return ModelOutput.objects.select_related("checkpoint")
    return ModelOutput.objects.none()


def attribution_run_list(user: Any) -> QuerySet[AttributionRun]:
    if can(user, Capability.READ_ALL):
        return AttributionRun.objects.select_related("output", "report").prefetch_related(
            "results")
    return AttributionRun.objects.none()


def gradient_index_list(user: Any) -> QuerySet[GradientIndex]:
    if can(user, Capability.READ_ALL):
        return GradientIndex.objects.all()
    return GradientIndex.objects.none()
