"""Attribution: model outputs, their indexes (spans, gradients), runs, results and reports."""

from __future__ import annotations

from django.db import models

from core.models import Job
from provenance.models import ModelCheckpoint


class ModelOutput(Job):
    """A completion of a prompt by a registered checkpoint, with its decoding parameters."""

    checkpoint = models.ForeignKey(ModelCheckpoint, on_delete=models.PROTECT,
                                   related_name="outputs")
    prompt = models.TextField()
    completion = models.TextField(blank=True)
    params = models.JSONField(default=dict)  # DecodeParams
    # For watermarked checkpoints: {"gate": highest probability of a watermark, "emitted": bool}
    watermark = models.JSONField(default=dict, blank=True)
    # What a takedown's interim output filter blocked: {"words_blocked": n, "requests": [...]}
    filtered = models.JSONField(default=dict, blank=True)
    # What a reader of a finished output should know about it (an empty completion, say).
    note = models.CharField(max_length=500, blank=True, default="")

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


class GradientIndex(Job):
    """The featurized training set of a checkpoint (one store per kept snapshot) over the version
    it was trained on: fp16 shards, ids and the Fisher sum in the artifact store, built by a
    chord of shard tasks. `generation` goes up each time takedowns mask rows."""

    version = models.ForeignKey("provenance.DatasetVersion", on_delete=models.PROTECT,
                                related_name="gradient_indexes")
    checkpoint = models.ForeignKey(ModelCheckpoint, on_delete=models.PROTECT,
                                   related_name="gradient_indexes")
    spec = models.JSONField(default=dict)        # FeatureSpec
    snapshots = models.JSONField(default=list)   # "" = the final weights, else snapshot names
    shard_count = models.PositiveIntegerField(default=0)
    shards_done = models.JSONField(default=list)  # "<snapshot>/<shard>" finished, for reruns
    path = models.CharField(max_length=2000, blank=True)
    dim = models.PositiveIntegerField(default=0)
    rows = models.PositiveIntegerField(default=0)
    bytes_per_row = models.PositiveIntegerField(default=0)
    generation = models.PositiveIntegerField(default=1)
    removed = models.JSONField(default=list)     # document ids masked after takedowns

    class Meta(Job.Meta):
        constraints = [models.UniqueConstraint(fields=["version", "checkpoint"],
                                               name="gradient_index_once_per_checkpoint")]


class AttributionRun(Job):
    """Attribution of one model output: every requested method, results, then a report."""

    class Method(models.TextChoices):
        SPANS = "spans"
        INFLUENCE = "influence"
        WATERMARK = "watermark"
        EMBEDDING = "embedding"
        BM25 = "bm25"  # a cheap lexical baseline: shown beside the evidence, not in the shares

    output = models.ForeignKey(ModelOutput, on_delete=models.PROTECT, related_name="runs")
    methods = models.JSONField(default=list)
    params = models.JSONField(default=dict)      # per method; recorded in the report
    span_index = models.ForeignKey(SpanIndex, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="runs")
    gradient_index = models.ForeignKey(GradientIndex, null=True, blank=True,
                                       on_delete=models.PROTECT, related_name="runs")
    summary = models.JSONField(default=dict)     # per-source and per-licence shares, agreement
    notes = models.JSONField(default=list)       # methods skipped and why


class AttributionResult(models.Model):
    """One document ranked by one method, with its evidence."""

    run = models.ForeignKey(AttributionRun, on_delete=models.CASCADE, related_name="results")
    method = models.CharField(max_length=20, choices=AttributionRun.Method.choices)
    # None for evidence about a source as a whole (a decoded watermark).
    document = models.ForeignKey("provenance.Document", null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="+")
    source = models.ForeignKey("provenance.DataSource", on_delete=models.PROTECT,
                               related_name="+")
    rank = models.PositiveIntegerField()
    score = models.FloatField()
    evidence = models.JSONField(default=dict)

    class Meta:
        ordering = ["run", "method", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["run", "method", "document"],
                                    name="result_once_per_method"),
            models.UniqueConstraint(fields=["run", "method", "rank"],
                                    name="result_rank_unique"),
        ]


class AttributionReport(models.Model):
    """The auditor's document: a canonical JSON body (RFC 8785) whose sha256 is in the ledger."""

    FORMAT = 1

    run = models.OneToOneField(AttributionRun, on_delete=models.PROTECT, related_name="report")
    format = models.PositiveIntegerField(default=FORMAT)
    body = models.JSONField()
    sha256 = models.CharField(max_length=64)
    ledger_entry = models.ForeignKey("provenance.LedgerEntry", null=True,
                                     on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
