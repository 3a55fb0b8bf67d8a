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


class SpanIndex(Job):
    """A verbatim span index of a dataset version, tokenized with a checkpoint's tokenizer, one
    suffix-array shard per source, in the artifact store."""

    version = models.ForeignKey("provenance.DatasetVersion", on_delete=models.PROTECT,
                                related_name="span_indexes")
    checkpoint = models.ForeignKey(ModelCheckpoint, on_delete=models.PROTECT,
                                   related_name="span_indexes")
    path = models.CharField(max_length=2000, blank=True)
    shards = models.JSONField(default=dict)  # {source id: {"documents": n, "tokens": n}}

    class Meta(Job.Meta):
        constraints = [models.UniqueConstraint(fields=["version", "checkpoint"],
                                               name="span_index_once_per_tokenizer")]
