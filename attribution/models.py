"""Attribution: model outputs (and, next, attribution runs, results and reports)."""

from __future__ import annotations

from django.db import models

from provenance.models import Job, ModelCheckpoint


class ModelOutput(Job):
    """A completion of a prompt by a registered checkpoint, with its decoding parameters."""

    checkpoint = models.ForeignKey(ModelCheckpoint, on_delete=models.PROTECT,
                                   related_name="outputs")
    prompt = models.TextField()
    completion = models.TextField(blank=True)
    params = models.JSONField(default=dict)  # DecodeParams
    # For watermarked checkpoints: {"gate": highest probability of a watermark, "emitted": bool}
    watermark = models.JSONField(default=dict, blank=True)

    class Meta(Job.Meta):
        pass
