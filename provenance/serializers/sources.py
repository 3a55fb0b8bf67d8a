"""Rights-holders, licences, signals, sources and documents: what the API shows and accepts."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.permissions import sees_holder_details
from provenance import selectors
from provenance.models import (
    DataSource,
    Document,
    LicenseRefTerms,
    LicenseSignal,
    ModelCheckpoint,
    Occurrence,
    OptOutSignal,
    RightsHolder,
    UseClass,
    User,
)
from provenance.serializers.common import VisibleId, one_line, requester


class RightsHolderOut(serializers.ModelSerializer):
    class Meta:
        model = RightsHolder
        fields = ["id", "name", "kind", "contact_name", "contact_email", "url", "verified",
                  "verified_at", "created_at", "updated_at"]

    def to_representation(self, instance: RightsHolder) -> dict[str, Any]:
        data = super().to_representation(instance)
        user = requester(self)
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
        fields = ["id", "kind", "value", "url", "train", "ai_input", "opted_out", "reading",
                  "observed_at", "created_at"]


PREF_CHOICES = OptOutSignal.Pref.choices


class OptOutSignalIn(serializers.Serializer):
    kind = serializers.ChoiceField(choices=OptOutSignal.Kind.choices)
    value = serializers.CharField(max_length=512_000, trim_whitespace=False,
                                  help_text="the signal as observed: a robots.txt, an ai.txt, "
                                            "header lines, a tdmrep.json, an RSL document, or "
                                            "a registry entry's reference")
    url = serializers.CharField(max_length=2000, required=False, allow_blank=True,
                                validators=[one_line], help_text="where it was observed")
    observed_at = serializers.DateTimeField(required=False)
    train = serializers.ChoiceField(choices=PREF_CHOICES, required=False,
                                    help_text="registry entries only: the entry's reading")
    ai_input = serializers.ChoiceField(choices=PREF_CHOICES, required=False,
                                       help_text="registry entries only: the entry's reading")


class DecidedByOut(serializers.Serializer):
    signal = serializers.IntegerField()
    kind = serializers.CharField()
    vocabulary = serializers.CharField()
    says = serializers.CharField()
    value = serializers.CharField()
    url = serializers.CharField()
    observed_at = serializers.DateTimeField()


class VerdictOut(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=PREF_CHOICES)
    decided_by = DecidedByOut(allow_null=True)


class UnreadOut(serializers.Serializer):
    signal = serializers.IntegerField()
    kind = serializers.CharField()
    terms = serializers.ListField(child=serializers.CharField())


class VerdictsOut(serializers.Serializer):
    source = serializers.IntegerField()  # type: ignore[assignment]  # a field named "source"
    at = serializers.DateTimeField()
    train = VerdictOut()
    ai_input = VerdictOut()
    unread = UnreadOut(many=True, help_text="terms of the deciding signals that no reader "
                                            "understood: reported, never guessed")


class SourceOut(serializers.ModelSerializer):
    owner_name = serializers.CharField(source="owner.name", read_only=True)

    def to_representation(self, instance: DataSource) -> dict[str, Any]:
        data = super().to_representation(instance)
        user = requester(self)
        if user is not None and not sees_holder_details(user, instance.owner_id):
            data["owner_name"] = instance.owner.public_name
        return data

    class Meta:
        model = DataSource
        fields = ["id", "owner", "owner_name", "name", "uri", "description", "license_expression",
                  "license_as_written", "use_class", "requires_attribution", "share_alike",
                  "terms_url", "status", "acquisition", "generator", "generator_name",
                  "generator_terms_url", "document_count", "byte_count", "created_at",
                  "updated_at"]


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
    generator = VisibleId(selectors.checkpoint_list, queryset=ModelCheckpoint.objects.all(),
                          required=False, allow_null=True,
                          help_text="synthetic text a registered checkpoint wrote: its licences "
                                    "and opt-outs follow the checkpoint's training data")
    generator_name = serializers.CharField(
        max_length=200, required=False, allow_blank=True, validators=[one_line],
        help_text="synthetic text an outside model wrote: the model's name")
    generator_terms_url = serializers.URLField(
        max_length=2000, required=False, allow_blank=True,
        help_text="the terms of use its outputs come under")


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
