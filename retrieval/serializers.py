"""Datastores and retrieval: what the API shows and accepts."""

from __future__ import annotations

from rest_framework import serializers

from provenance import selectors as prov
from provenance.models import DatasetVersion
from provenance.serializers.common import VisibleId, one_line
from retrieval.models import Datastore


class DatastoreOut(serializers.ModelSerializer):
    percent = serializers.FloatField(read_only=True)

    class Meta:
        model = Datastore
        fields = ["id", "name", "version", "chunk_tokens", "overlap_tokens", "embedder", "state",
                  "stage", "position", "total", "unit", "percent", "document_count",
                  "chunk_count", "error", "created_at", "started_at", "finished_at"]


class DatastoreIn(serializers.Serializer):
    name = serializers.CharField(max_length=200, validators=[one_line])
    version = VisibleId(prov.version_list, queryset=DatasetVersion.objects.all(),
                        help_text="a published dataset version")
    chunk_tokens = serializers.IntegerField(default=128, min_value=16, max_value=256)
    overlap_tokens = serializers.IntegerField(default=32, min_value=0, max_value=255)


class SearchIn(serializers.Serializer):
    query = serializers.CharField(max_length=2000)
    k = serializers.IntegerField(default=5, min_value=1, max_value=50)


class HitSourceOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    license = serializers.CharField()
    use_class = serializers.CharField()
    train = serializers.CharField(help_text="the source's train verdict now")
    ai_input = serializers.CharField(help_text="the source's ai-input verdict now (never no: "
                                               "a refused source is not retrieved)")


class HitOut(serializers.Serializer):
    chunk = serializers.IntegerField()
    document = serializers.IntegerField()
    sha256 = serializers.CharField()
    ordinal = serializers.IntegerField()
    start = serializers.IntegerField()
    end = serializers.IntegerField()
    text = serializers.CharField()
    score = serializers.FloatField(help_text="reciprocal-rank fusion of the two legs")
    keyword_rank = serializers.IntegerField(allow_null=True)
    vector_rank = serializers.IntegerField(allow_null=True)
    sources = HitSourceOut(many=True)


class SearchOut(serializers.Serializer):
    datastore = serializers.IntegerField()
    query = serializers.CharField()
    legs = serializers.ListField(child=serializers.CharField(),
                                 help_text="keyword, and vector when a worker embedded the query")
    note = serializers.CharField(allow_blank=True)
    hits = HitOut(many=True)
