"""Training runs, checkpoints, canaries and watermark checks: what the API shows and accepts."""

from __future__ import annotations

from rest_framework import serializers

from provenance.engine import watermark
from provenance.models import (
    CanaryTest,
    CanaryTestRun,
    DatasetVersion,
    ModelCheckpoint,
    SourceCanary,
    TrainingRun,
)
from provenance.serializers.common import one_line
from provenance.serializers.datasets import JobFields


class TrainingRunOut(JobFields):
    checkpoint = serializers.PrimaryKeyRelatedField(  # type: ignore[var-annotated]
        read_only=True, allow_null=True)

    class Meta:
        model = TrainingRun
        fields = ["id", "version", "config", "plan", "state", "stage", "position", "total",
                  "unit", "percent", "tokens", "loss", "tokens_per_s", "device",
                  "cancel_requested", "checkpoint", "error", "created_at", "started_at",
                  "finished_at"]
        extra_kwargs = {"plan": {"help_text": "the preset, why packing is on or off, and the "
                                 "expected tokens and time on 2 CPU cores"}}


class TrainingRunIn(serializers.Serializer):
    version = serializers.PrimaryKeyRelatedField(queryset=DatasetVersion.objects.all())
    config = serializers.JSONField(required=False, help_text=(
        "TrainConfig options, over a preset: {\"preset\": \"tiny\" | \"small\" | "
        "\"default\", ...}; packing is chosen by the documents' length unless \"pack\" is "
        "given. GET /api/v1/training-runs/plans/?version=ID gives each preset's expected time."))


class TrainingPlanOut(serializers.Serializer):
    preset = serializers.CharField()
    config = serializers.DictField()
    pack = serializers.CharField()
    expected = serializers.DictField()
    summary = serializers.CharField()


class CheckpointOut(serializers.ModelSerializer):
    class Meta:
        model = ModelCheckpoint
        fields = ["id", "name", "kind", "version", "parent", "run", "path", "sha256", "config",
                  "metrics", "created_at"]


class CheckpointRegisterIn(serializers.Serializer):
    name = serializers.CharField(max_length=200, validators=[one_line])
    path = serializers.CharField(help_text="a local Hugging Face model folder under "
                                           "TRAILMARK_IMPORT_DIRS")
    version = serializers.PrimaryKeyRelatedField(queryset=DatasetVersion.objects.all(),
                                                 help_text="the version it was trained on")
    # A field named "parent" shadows Field.parent for the type checker only.
    parent = serializers.PrimaryKeyRelatedField(  # type: ignore[assignment]
        queryset=ModelCheckpoint.objects.all(), required=False)


class CanaryOut(serializers.ModelSerializer):
    """The registration, never the secret or the sequence."""

    class Meta:
        model = SourceCanary
        fields = ["source", "spec", "created_at"]


class CanaryIn(serializers.Serializer):
    spec = serializers.JSONField(required=False, help_text="kind (words|chars), length, copies")


class CanaryTestOut(serializers.ModelSerializer):
    class Meta:
        model = CanaryTest
        fields = ["source", "inserted", "observed_loss", "p_value", "p_adjusted", "z",
                  "detected", "evidence"]


class CanaryTestRunOut(JobFields):
    results = CanaryTestOut(many=True, read_only=True)

    class Meta:
        model = CanaryTestRun
        fields = ["id", "checkpoint", "sources", "null_size", "alpha", "state", "position",
                  "total", "percent", "power", "calibration", "results", "error", "created_at",
                  "finished_at"]


class CanaryTestRunIn(serializers.Serializer):
    checkpoint = serializers.PrimaryKeyRelatedField(queryset=ModelCheckpoint.objects.all())
    sources = serializers.ListField(child=serializers.IntegerField(), required=False,
                                    help_text="default: every source with a canary")
    null_size = serializers.IntegerField(default=1000)
    alpha = serializers.FloatField(default=0.01)


class WatermarkDetectIn(serializers.Serializer):
    text = serializers.CharField(max_length=watermark.MAX_TEXT_CHARS, trim_whitespace=False)
    top_k = serializers.IntegerField(default=3, min_value=1, max_value=10)
