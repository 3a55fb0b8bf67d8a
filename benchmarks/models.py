"""Recipe benchmarks: curated versions trained alike over several seeds, evaluated on a version
none of them holds, and ranked against an "everything" reference (the cost of compliance)."""

from __future__ import annotations

from django.db import models

from core.models import Job, TimeStamped
from provenance.models import DatasetVersion, ModelCheckpoint, TrainingRun, User


class Benchmark(TimeStamped):
    """What every entry shares: one training configuration (model, steps: the same tokens for
    every entry, whatever its size, as DataComp and DCLM fix compute), the seeds, and the
    evaluation: held-out bits per byte on each source of `evaluation` (a published version no
    entry may hold, checked by hash and near-duplicate) and a closed-book probe."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    training = models.JSONField(default=dict)   # TrainConfig, every default filled in; seed unset
    token_budget = models.PositiveBigIntegerField()  # training tokens of one seed, any entry
    seeds = models.JSONField(default=list)       # [0, 1, 2]
    evaluation = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT,
                                   related_name="evaluating_benchmarks")
    probes = models.JSONField(default=list, blank=True)  # [{prompt, choices, answer}]
    near_duplicate_threshold = models.FloatField(default=0.8)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.name


class Entry(models.Model):
    """A curated version entered in a benchmark. One entry per benchmark is its reference:
    everything ingested, the licences and opt-outs ignored, against which the others' quality
    is read."""

    benchmark = models.ForeignKey(Benchmark, on_delete=models.CASCADE, related_name="entries")
    version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT,
                                related_name="benchmark_entries")
    label = models.CharField(max_length=100)
    reference = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["benchmark", "version"], name="entry_version_once"),
            models.UniqueConstraint(fields=["benchmark", "label"], name="entry_label_once"),
            models.UniqueConstraint(fields=["benchmark"], condition=models.Q(reference=True),
                                    name="entry_one_reference"),
        ]

    def __str__(self) -> str:
        return self.label


class BenchmarkRun(Job):
    """One run of a whole benchmark: a contamination check, then a trial per entry and seed on
    the gpu queue (a chord), then the leaderboard. `results` is written once, when every trial
    has succeeded; a run with a failed trial publishes nothing."""

    benchmark = models.ForeignKey(Benchmark, on_delete=models.PROTECT, related_name="runs")
    # {entry id: {exact, near, examples}} for every entry, clean ones included
    contamination = models.JSONField(default=dict, blank=True)
    results = models.JSONField(default=dict, blank=True)


class Trial(Job):
    """One entry trained with one seed (a `TrainingRun` of its own, so it appears on the jobs
    board and its checkpoint has the usual lineage), then evaluated."""

    run = models.ForeignKey(BenchmarkRun, on_delete=models.CASCADE, related_name="trials")
    entry = models.ForeignKey(Entry, on_delete=models.PROTECT, related_name="trials")
    seed = models.IntegerField()
    training_run = models.ForeignKey(TrainingRun, on_delete=models.PROTECT, related_name="+")
    checkpoint = models.ForeignKey(ModelCheckpoint, null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="+")
    # {domains: {name: {bits_per_byte, nll, tokens, bytes}}, bits_per_byte (the domains'
    #  mean), probe: {right, n, accuracy}}
    scores = models.JSONField(default=dict, blank=True)

    class Meta(Job.Meta):
        constraints = [
            models.UniqueConstraint(fields=["run", "entry", "seed"], name="trial_once"),
        ]
