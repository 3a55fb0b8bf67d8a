from __future__ import annotations

from rest_framework import serializers

from attribution.models import ModelOutput
from provenance.models import ModelCheckpoint
from provenance.serializers import JobFields


class ModelOutputOut(JobFields):
    class Meta:
        model = ModelOutput
        fields = ["id", "checkpoint", "prompt", "completion", "params", "watermark", "state",
                  "error",
                  "created_at", "started_at", "finished_at"]


class ModelOutputIn(serializers.Serializer):
    checkpoint = serializers.PrimaryKeyRelatedField(queryset=ModelCheckpoint.objects.all())
    prompt = serializers.CharField(max_length=20_000)
    params = serializers.JSONField(required=False, help_text="max_new_tokens, temperature "
                                                             "(0 = greedy), top_p, seed")
