from __future__ import annotations

from rest_framework import serializers

from attribution.models import AttributionResult, AttributionRun, GradientIndex, ModelOutput
from provenance.models import ModelCheckpoint
from provenance.serializers import JobFields


class ModelOutputOut(JobFields):
    class Meta:
        model = ModelOutput
        fields = ["id", "checkpoint", "prompt", "completion", "params", "watermark", "filtered",
                  "note", "state", "error", "created_at", "started_at", "finished_at"]


class ModelOutputIn(serializers.Serializer):
    checkpoint = serializers.PrimaryKeyRelatedField(queryset=ModelCheckpoint.objects.all())
    prompt = serializers.CharField(max_length=20_000)
    params = serializers.JSONField(required=False, help_text="max_new_tokens, temperature "
                                                             "(0 = greedy), top_p, seed")


class GradientIndexOut(JobFields):
    class Meta:
        model = GradientIndex
        fields = ["id", "checkpoint", "version", "spec", "snapshots", "shard_count", "dim", "rows",
                  "bytes_per_row", "generation", "removed", "state", "stage", "position",
                  "total", "unit", "percent", "error", "created_at", "started_at", "finished_at"]


class GradientIndexIn(serializers.Serializer):
    checkpoint = serializers.PrimaryKeyRelatedField(queryset=ModelCheckpoint.objects.all())
    spec = serializers.JSONField(required=False, help_text="max_dim, k_max, seed, fisher "
                                 "(sampled | empirical), fisher_samples (0: automatic), damping, "
                                 "max_tokens")


class AttributionResultOut(serializers.ModelSerializer):
    class Meta:
        model = AttributionResult
        fields = ["method", "rank", "document", "source", "score", "evidence"]


class AttributionRunOut(JobFields):
    results = AttributionResultOut(many=True, read_only=True)
    report_sha256 = serializers.SerializerMethodField()

    class Meta:
        model = AttributionRun
        fields = ["id", "output", "methods", "params", "span_index", "gradient_index", "state",
                  "stage", "position", "total", "unit", "percent", "error", "summary", "notes",
                  "report_sha256", "results", "created_at", "started_at", "finished_at"]

    def get_report_sha256(self, run: AttributionRun) -> str | None:
        report = getattr(run, "report", None)
        return report.sha256 if report is not None else None


class AttributionRunIn(serializers.Serializer):
    output = serializers.PrimaryKeyRelatedField(queryset=ModelOutput.objects.all())
    methods = serializers.ListField(child=serializers.CharField(), required=False,
                                    help_text="spans, influence, watermark, embedding "
                                              "(default: all)")
    params = serializers.JSONField(required=False, help_text="per method, e.g. "
                                                             '{"influence": {"top_k": 20}}')
