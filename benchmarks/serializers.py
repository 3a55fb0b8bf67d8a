"""Benchmarks: what the API shows and accepts."""

from __future__ import annotations

from rest_framework import serializers

from benchmarks.models import Benchmark, BenchmarkRun, Entry, Trial
from provenance import selectors as prov
from provenance.models import DatasetVersion
from provenance.serializers.common import VisibleId, one_line
from provenance.serializers.datasets import JobFields


class EntryOut(serializers.ModelSerializer):
    version_name = serializers.CharField(source="version.__str__", read_only=True)

    class Meta:
        model = Entry
        fields = ["id", "label", "version", "version_name", "reference", "created_at"]


class BenchmarkOut(serializers.ModelSerializer):
    entries = EntryOut(many=True, read_only=True)

    class Meta:
        model = Benchmark
        fields = ["id", "name", "description", "evaluation", "token_budget", "training", "seeds",
                  "probes", "near_duplicate_threshold", "entries", "created_at"]


class BenchmarkIn(serializers.Serializer):
    name = serializers.CharField(max_length=200, validators=[one_line])
    description = serializers.CharField(required=False, default="", allow_blank=True,
                                        max_length=5000)
    evaluation = VisibleId(prov.version_list, queryset=DatasetVersion.objects.all(),
                           help_text="a published version no entry may hold: the held-out "
                                     "texts, one domain per source")
    token_budget = serializers.IntegerField(
        min_value=1, max_value=10**12,
        help_text="training tokens of every seed of every entry (the steps it buys)")
    training = serializers.JSONField(
        required=False, default=dict,
        help_text='the model: a preset ("tiny", "small", "default"; tiny unless given) and '
                  'options under it (n_layer, n_embd, seq_len, batch_size, learning_rate...); '
                  "the seed, steps and held-out share are the benchmark's")
    seeds = serializers.JSONField(required=False, default=None,
                                  help_text="3 to 10 integers; [0, 1, 2] unless given")
    probes = serializers.ListField(
        child=serializers.JSONField(), required=False, default=list,
        help_text="closed-book multiple-choice questions: [{prompt, choices, answer}], the "
                  "facts stated in the corpus asked in other words")
    near_duplicate_threshold = serializers.FloatField(
        required=False, default=0.8, min_value=0.01, max_value=1.0,
        help_text="MinHash Jaccard at which an entry's text counts as an evaluation text")


class EntryIn(serializers.Serializer):
    version = VisibleId(prov.version_list, queryset=DatasetVersion.objects.all(),
                        help_text="a published version holding none of the evaluation's texts")
    # A field named `label` shadows Field.label (DRF's metaclass takes it out of the class).
    label = serializers.CharField(max_length=100, validators=[one_line])  # type: ignore[assignment]
    reference = serializers.BooleanField(
        default=False, help_text="the everything-ingested reference the others are read "
                                 "against (one per benchmark)")


class TrialOut(JobFields):
    entry_label = serializers.CharField(source="entry.label", read_only=True)

    class Meta:
        model = Trial
        fields = ["id", "entry", "entry_label", "seed", "training_run", "checkpoint", "state",
                  "stage", "position", "total", "unit", "percent", "scores", "error",
                  "started_at", "finished_at"]


class BenchmarkRunOut(JobFields):
    trials = TrialOut(many=True, read_only=True)

    class Meta:
        model = BenchmarkRun
        fields = ["id", "benchmark", "state", "stage", "position", "total", "unit", "percent",
                  "contamination", "results", "error", "trials", "created_at", "started_at",
                  "finished_at"]


class BenchmarkRunIn(serializers.Serializer):
    pass
