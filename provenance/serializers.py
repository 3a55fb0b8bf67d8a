"""Output serializers (what the API shows) and input serializers (what it accepts)."""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.permissions import sees_holder_details
from provenance import selectors
from provenance.engine import readers, watermark
from provenance.models import (
    CanaryTest,
    CanaryTestRun,
    CurationJob,
    Dataset,
    DatasetVersion,
    DataSource,
    Document,
    IngestJob,
    LedgerEntry,
    LicenseRefTerms,
    LicenseSignal,
    ModelCheckpoint,
    Occurrence,
    OptOutSignal,
    RightsHolder,
    SourceCanary,
    TrainingRun,
    UseClass,
    User,
    VersionExclusion,
)


def one_line(value: str) -> None:
    """Names and titles are one line of text: they go into Markdown tables and headings, HTML
    and the cards, where a newline, a tab or an invisible control character reshapes the
    document. (The renderers escape Markdown and HTML as well.)"""
    bad = next((c for c in value if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")), None)
    if bad is not None:
        raise serializers.ValidationError(
            f"control or format character U+{ord(bad):04X} at position {value.index(bad) + 1}: "
            "a name is one line of visible text")


def _requester(serializer: serializers.Field) -> Any:
    request = serializer.context.get("request")
    return getattr(request, "user", None)


class VisibleId(serializers.PrimaryKeyRelatedField):
    """The id of an object the asker can see (`selector(user)`): an id that is not theirs is
    answered exactly like one that does not exist ("Invalid pk"), so that a create endpoint
    does not tell whether another holder's object exists."""

    def __init__(self, selector: Any, **kwargs: Any) -> None:
        self.selector = selector
        super().__init__(**kwargs)

    def get_queryset(self) -> Any:
        user = _requester(self)
        return super().get_queryset() if user is None else self.selector(user)


class RightsHolderOut(serializers.ModelSerializer):
    class Meta:
        model = RightsHolder
        fields = ["id", "name", "kind", "contact_name", "contact_email", "url", "verified",
                  "verified_at", "created_at", "updated_at"]

    def to_representation(self, instance: RightsHolder) -> dict[str, Any]:
        data = super().to_representation(instance)
        user = _requester(self)
        if user is not None and not sees_holder_details(user, instance.pk):
            data.update(name=instance.public_name, contact_name="", contact_email="")
        return data


class RightsHolderIn(serializers.Serializer):
    name = serializers.CharField(max_length=200, validators=[one_line])
    kind = serializers.ChoiceField(choices=RightsHolder.Kind.choices, required=False)
    contact_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    contact_email = serializers.EmailField(required=False, allow_blank=True)
    url = serializers.URLField(required=False, allow_blank=True)
    verified = serializers.BooleanField(required=False)


class OnboardIn(RightsHolderIn):
    username = serializers.RegexField(r"^[\w.@+-]+\Z", max_length=150,
                                      help_text="the first user's username (letters, digits "
                                                "and @.+-_)")
    email = serializers.EmailField(help_text="where the invitation goes")
    password = serializers.CharField(required=False, allow_blank=True, write_only=True,
                                     trim_whitespace=False, style={"input_type": "password"},
                                     help_text="set it now; leave it out to send an "
                                               "invitation instead")


class OnboardedUserOut(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email", "role"]


class OnboardedOut(serializers.Serializer):
    holder = RightsHolderOut()
    user = OnboardedUserOut()
    invited = serializers.SerializerMethodField()

    def get_invited(self, done: Any) -> bool:
        return bool(done.invitation_url)


class LicenseRefOut(serializers.ModelSerializer):
    class Meta:
        model = LicenseRefTerms
        fields = ["key", "use_class", "requires_attribution", "share_alike", "reason", "set_by",
                  "set_at"]


class LicenseRefIn(serializers.Serializer):
    key = serializers.CharField(max_length=200, help_text="a LicenseRef-... key")
    use_class = serializers.ChoiceField(choices=UseClass.choices)
    requires_attribution = serializers.BooleanField(default=False)
    share_alike = serializers.BooleanField(default=False)
    reason = serializers.CharField(max_length=2_000,
                                   help_text="where the terms come from (the licence's text)")


class LicenseSignalOut(serializers.ModelSerializer):
    class Meta:
        model = LicenseSignal
        fields = ["id", "origin", "expression", "url", "observed_at", "active", "created_at"]


class LicenseSignalIn(serializers.Serializer):
    origin = serializers.ChoiceField(choices=[c for c in LicenseSignal.Origin.choices
                                              if c[0] != LicenseSignal.Origin.DECLARED])
    expression = serializers.CharField(max_length=500)
    url = serializers.URLField(required=False, allow_blank=True)
    observed_at = serializers.DateTimeField(required=False)


class OptOutSignalOut(serializers.ModelSerializer):
    class Meta:
        model = OptOutSignal
        fields = ["id", "kind", "value", "opted_out", "observed_at", "created_at"]


class OptOutSignalIn(serializers.Serializer):
    kind = serializers.ChoiceField(choices=OptOutSignal.Kind.choices)
    value = serializers.CharField(max_length=10000)
    opted_out = serializers.BooleanField()
    observed_at = serializers.DateTimeField(required=False)


class SourceOut(serializers.ModelSerializer):
    owner_name = serializers.CharField(source="owner.name", read_only=True)

    def to_representation(self, instance: DataSource) -> dict[str, Any]:
        data = super().to_representation(instance)
        user = _requester(self)
        if user is not None and not sees_holder_details(user, instance.owner_id):
            data["owner_name"] = instance.owner.public_name
        return data

    class Meta:
        model = DataSource
        fields = ["id", "owner", "owner_name", "name", "uri", "description", "license_expression",
                  "license_as_written", "use_class", "requires_attribution", "share_alike",
                  "terms_url", "status", "acquisition", "document_count", "byte_count",
                  "created_at", "updated_at"]


class SourceIn(serializers.Serializer):
    owner = VisibleId(selectors.rights_holder_list, queryset=RightsHolder.objects.all(),
                      required=False,
                      help_text="required from staff; a rights-holder's sources are its own "
                                "(this may be left out or name it)")
    name = serializers.CharField(max_length=200, validators=[one_line])
    license_expression = serializers.CharField(max_length=500)
    uri = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    terms_url = serializers.URLField(max_length=2000, required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=DataSource.Status.choices, required=False)
    acquisition = serializers.ChoiceField(choices=DataSource.Acquisition.choices,
                                          required=False)


class DocumentOut(serializers.ModelSerializer):
    sources = serializers.PrimaryKeyRelatedField(  # type: ignore[var-annotated]
        many=True, read_only=True)

    class Meta:
        model = Document
        fields = ["id", "sha256", "byte_count", "token_estimate", "sources", "removed_at",
                  "removal_reason", "text_purged", "created_at"]


class OccurrenceOut(serializers.ModelSerializer):
    source_name = serializers.CharField(source="source.name", read_only=True)

    class Meta:
        model = Occurrence
        fields = ["source", "source_name", "external_id", "url", "file", "line", "metadata",
                  "created_at"]


class DocumentDetailOut(DocumentOut):
    """A document with its text as submitted, both hashes, and where it was seen: each
    occurrence (in a source the asker can see) with its record's metadata."""

    occurrences = serializers.SerializerMethodField()

    class Meta(DocumentOut.Meta):
        fields = [*DocumentOut.Meta.fields, "normalised_sha256", "language", "text",
                  "occurrences"]
        extra_kwargs = {
            "sha256": {"help_text": "sha256 of `text`, UTF-8: the text as submitted"},
            "normalised_sha256": {"help_text": "sha256 of the normalised text (Unicode NFC, "
                                  "whitespace folded): what exact matching compares"}}

    @extend_schema_field(OccurrenceOut(many=True))
    def get_occurrences(self, doc: Document) -> list[dict]:
        request = self.context.get("request")
        visible = selectors.occurrence_list(getattr(request, "user", None)).filter(document=doc)
        return list(OccurrenceOut(visible.select_related("source").order_by("pk"),
                                  many=True).data)


class TombstoneIn(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)
    purge_text = serializers.BooleanField(default=False)


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


class IngestJobOut(JobFields):
    class Meta:
        model = IngestJob
        fields = ["id", "source", "original_name", "format", "text_field", "state", "stage",
                  "position", "total", "unit", "percent", "rows_read", "rows_added",
                  "rows_linked", "rows_duplicate", "rows_blocked", "rows_bad", "errors", "error",
                  "fields_kept", "rows_metadata_dropped", "created_at", "started_at",
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
