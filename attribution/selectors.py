from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from attribution.models import ModelOutput
from provenance.permissions import role_of
from provenance.selectors import MODEL_READERS


def model_output_list(user: Any) -> QuerySet[ModelOutput]:
    if role_of(user) in MODEL_READERS:
        return ModelOutput.objects.select_related("checkpoint")
    return ModelOutput.objects.none()
