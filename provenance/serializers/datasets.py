"""Datasets, versions, ingest and curation jobs, and the ledger: what the API shows and
accepts."""

from __future__ import annotations

from pathlib import Path

from rest_framework import serializers

from provenance import selectors
from provenance.engine import readers
from provenance.models import (
    CurationJob,
    Dataset,
    DatasetVersion,
    DataSource,
    IngestJob,
    IngestShard,
    LedgerEntry,
    VersionExclusion,
)
from provenance.serializers.common import VisibleId, one_line


class DatasetOut(serializers.ModelSerializer):
    class Meta:
        model = Dataset
        fields = ["id", "slug", "title", "description", "created_at", "updated_at"]


class DatasetIn(serializers.Serializer):
    slug = serializers.SlugField(max_length=100)
    title = serializers.CharField(max_length=200, validators=[one_line])
    description = serializers.CharField(required=False, allow_blank=True)


class VersionOut(serializers.ModelSerializer):
    dataset_slug = serializers.CharField(source="dataset.slug", read_only=True)

    class Meta:
        model = DatasetVersion
        fields = ["id", "dataset", "dataset_slug", "number", "parent", "state", "recipe",
                  "manifest_root", "document_count", "token_estimate", "byte_count",
                  "counts_by_source", "counts_by_license_class", "exclusions_by_reason", "notes",
                  "created_at", "published_at"]


class ExclusionOut(serializers.ModelSerializer):
    sha256 = serializers.CharField(source="document.sha256", read_only=True)

    class Meta:
        model = VersionExclusion
        fields = ["document", "sha256", "source", "reason", "detail"]


class JobFields(serializers.ModelSerializer):
    percent = serializers.FloatField(read_only=True)


class IngestShardOut(JobFields):
    class Meta:
        model = IngestShard
        fields = ["number", "state", "stage", "start", "end", "position", "total", "unit",
                  "percent", "rows_read", "error", "started_at", "finished_at"]
        extra_kwargs = {"start": {"help_text": "where the shard starts, in the input's split "
                                  "unit (bytes of JSONL, files of a folder, row groups of "
                                  "Parquet)"}}


class IngestJobOut(JobFields):
    shards = IngestShardOut(many=True, read_only=True,
                            help_text="the parts of a large input ingested by workers at once "
                                      "(empty: read whole)")

    class Meta:
        model = IngestJob
        fields = ["id", "source", "original_name", "format", "text_field", "state", "stage",
                  "position", "total", "unit", "percent", "rows_read", "rows_added",
                  "rows_linked", "rows_duplicate", "rows_blocked", "rows_bad", "errors", "error",
                  "fields_kept", "rows_metadata_dropped", "shards", "created_at", "started_at",
                  "finished_at"]
        extra_kwargs = {"fields_kept": {"help_text": "the record fields kept beside the text "
                                        "(as each occurrence's metadata): {field: rows}"}}


class IngestJobIn(serializers.Serializer):
    # A field named "source" shadows Field.source for the type checker only.
    source = VisibleId(  # type: ignore[assignment]
        selectors.source_list, queryset=DataSource.objects.all())
    file = serializers.FileField(required=False, help_text="upload (multipart)")
    path = serializers.CharField(required=False, help_text="a path under TRAILMARK_IMPORT_DIRS")
    format = serializers.ChoiceField(choices=["jsonl", "csv", "folder", "parquet"],
                                     required=False)
    text_field = serializers.CharField(max_length=100, default="text")

    def validate(self, attrs: dict) -> dict:
        if bool(attrs.get("file")) == bool(attrs.get("path")):
            raise serializers.ValidationError({"file": "give exactly one of file or path"})
        upload = attrs.get("file")
        if upload is not None and attrs.get("format") is None:
            try:  # refuse a file of no readable type before it is stored
                readers.detect_format(Path(upload.name))
            except readers.IngestFileError as exc:
                raise serializers.ValidationError({"file": str(exc)}) from None
        return attrs


class CurationJobOut(JobFields):
    class Meta:
        model = CurationJob
        fields = ["id", "dataset", "recipe", "state", "stage", "position", "total", "unit",
                  "percent", "version", "error", "created_at", "started_at", "finished_at"]


class CurationJobIn(serializers.Serializer):
    dataset = serializers.PrimaryKeyRelatedField(queryset=Dataset.objects.all())
    recipe = serializers.JSONField()


class LedgerEntryOut(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name", default=None, read_only=True,
                                  allow_null=True,
                                  help_text="who, while the person is not erased")

    class Meta:
        model = LedgerEntry
        fields = ["seq", "created_at", "actor", "actor_label", "event", "subject_type",
                  "subject_id",
                  "payload", "payload_hash", "prev_hash", "entry_hash"]
