"""Training runs, model checkpoints, canary tests."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from core.models import Job
from provenance.models.datasets import DatasetVersion
from provenance.models.sources import DataSource


class TrainingRun(Job):
    """Training a tokenizer and a causal LM on a dataset version, on the gpu queue."""

    version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT,
                                related_name="training_runs")
    config = models.JSONField(default=dict)  # TrainConfig, defaults filled in
    # How the config was chosen and what it should cost: the preset, why packing is on or off,
    # and the expected time on 2 CPU cores (shown before it starts).
    plan = models.JSONField(default=dict, blank=True)
    # What the export wove into the training text: {"canaries": {source id: [document ids]}}
    marks = models.JSONField(default=dict)
    tokens = models.PositiveBigIntegerField(default=0)
    loss = models.FloatField(null=True, blank=True)
    tokens_per_s = models.FloatField(null=True, blank=True)
    device = models.CharField(max_length=20, blank=True)
    cancel_requested = models.BooleanField(default=False)

    class Meta(Job.Meta):
        pass


class ModelCheckpoint(models.Model):
    """A model and what it was trained on: the lineage attribution and takedowns follow."""

    class Kind(models.TextChoices):
        TRAINED = "trained"    # by a Trailmark TrainingRun
        IMPORTED = "imported"  # a local Hugging Face directory registered by staff
        UNLEARNED = "unlearned"  # a takedown's unlearning run, from its parent checkpoint

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT,
                                related_name="checkpoints")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT,
                               related_name="children")
    run = models.OneToOneField(TrainingRun, null=True, blank=True, on_delete=models.PROTECT,
                               related_name="checkpoint")
    path = models.CharField(max_length=2000)
    sha256 = models.CharField(max_length=64)
    config = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)  # heldout_loss, train_loss, steps, tokens, ...
    created_by = models.ForeignKey("User", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(name="checkpoint_trained_has_run",
                                   condition=~Q(kind="trained") | Q(run__isnull=False)),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def local_path(self) -> str:
        """The checkpoint's folder on this host, fetched from the artifact store if this host
        has no copy (a model trained on another worker)."""
        from core.storage import artifact_local

        return str(artifact_local(self.path))


class CanaryTestRun(Job):
    """Membership tests of one checkpoint against the canaries of several sources at once."""

    checkpoint = models.ForeignKey(ModelCheckpoint, on_delete=models.PROTECT,
                                   related_name="canary_test_runs")
    sources = models.JSONField(default=list)     # source ids tested together (Bonferroni m)
    null_size = models.PositiveIntegerField(default=1000)
    alpha = models.FloatField(default=0.01)
    power = models.FloatField(null=True, blank=True)        # trained-on sources detected
    calibration = models.FloatField(null=True, blank=True)  # never-inserted probes at p < alpha

    class Meta(Job.Meta):
        pass


class CanaryTest(models.Model):
    """One source's result in a test run, with its evidence."""

    run = models.ForeignKey(CanaryTestRun, on_delete=models.CASCADE, related_name="results")
    checkpoint = models.ForeignKey(ModelCheckpoint, on_delete=models.PROTECT,
                                   related_name="canary_tests")
    source = models.ForeignKey(DataSource, on_delete=models.PROTECT, related_name="canary_tests")
    inserted = models.BooleanField(null=True)  # was it in this checkpoint's training export?
    observed_loss = models.FloatField()
    p_value = models.FloatField()
    p_adjusted = models.FloatField()  # Bonferroni over the run's sources
    z = models.FloatField()
    detected = models.BooleanField()  # p_adjusted < alpha
    evidence = models.JSONField(default=dict)  # null size, mean, sd, quantiles, copies

    class Meta:
        ordering = ["run", "source"]
        constraints = [models.UniqueConstraint(fields=["run", "source"],
                                               name="canary_test_once_per_source")]
