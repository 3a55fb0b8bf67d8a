"""/api/v1/versions/{id}/card/: a dataset version's cards. Anyone may read a published card;
staff, auditors and researchers also read drafts; staff and researchers edit and publish."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ServiceViewSet
from core.permissions import Capability, can
from dashboards import services
from dashboards.engine.cards.model import model_card
from dashboards.models import VersionCard
from dashboards.selectors import checkpoint_facts
from provenance import selectors
from provenance.models import DatasetVersion, ModelCheckpoint


class RevisionOut(serializers.ModelSerializer):
    class Meta:
        model = VersionCard
        fields = ["revision", "state", "reason", "digests", "published_at"]


class CardOut(serializers.ModelSerializer):
    version = serializers.CharField(source="version.__str__", read_only=True)
    downloads = serializers.SerializerMethodField()
    revisions = serializers.SerializerMethodField()

    class Meta:
        model = VersionCard
        fields = ["version", "revision", "reason", "state", "words", "digests", "rendered_at",
                  "published_at", "downloads", "revisions"]

    def get_downloads(self, card: VersionCard) -> dict[str, str]:
        return {fmt: f"/api/v1/versions/{card.version_id}/card/{fmt}/?revision={card.revision}"
                for fmt in services.FORMATS}

    @extend_schema_field(RevisionOut(many=True))
    def get_revisions(self, card: VersionCard) -> list[dict]:
        """Every revision the asker may read, newest first: a corrected card keeps the ones
        it supersedes."""
        visible = VersionCard.objects.filter(version_id=card.version_id).order_by("-revision")
        if not self.context.get("sees_drafts"):
            visible = visible.filter(state=VersionCard.State.PUBLISHED)
        return list(RevisionOut(visible, many=True).data)


class CardReviseIn(serializers.Serializer):
    reason = serializers.CharField(max_length=services.REASON_LIMIT,
                                   help_text="what the new revision corrects (in the ledger)")


class CardWordsIn(serializers.Serializer):
    words = serializers.JSONField(help_text="any of: summary, uses, out_of_scope, "
                                            "curation_rationale, personal_information, biases, "
                                            "limitations, citation (text)")


REVISION = OpenApiParameter("revision", int, description="a revision of the card (default: "
                            "the newest one you may read)")


class VersionCardViewSet(ServiceViewSet):
    serializer_class = CardOut
    anonymous_read = True
    write_capability = Capability.PUBLISH_CARDS

    def _version(self, version_id: str) -> DatasetVersion:
        version = selectors.version_list(self.request.user).filter(pk=version_id).first()
        if version is None:
            raise NotFound("no such dataset version")
        return version

    @property
    def sees_drafts(self) -> bool:
        return can(self.request.user, Capability.READ_ALL)

    def get_serializer_context(self) -> dict:
        return {**super().get_serializer_context(), "sees_drafts": self.sees_drafts}

    def _card(self, version_id: str) -> VersionCard:
        """`?revision=N`, or the newest revision the asker may read (a draft for those who
        read drafts; else the newest published one)."""
        cards = VersionCard.objects.filter(version=self._version(version_id))
        if not self.sees_drafts:
            cards = cards.filter(state=VersionCard.State.PUBLISHED)
        raw = self.request.query_params.get("revision")
        if raw is not None:
            if not (raw.isascii() and raw.isdigit() and 0 < len(raw) <= 9):
                raise DRFValidationError({"revision": "a revision number (1, 2...)"})
            card = cards.filter(revision=int(raw)).first()
            if card is None:
                raise NotFound(f"this version has no revision {raw} of its card that you "
                               "can read")
            return card
        card = cards.order_by("-revision").first()
        if card is None:
            raise NotFound("this version has no published card")
        return card

    @extend_schema(responses=CardOut, parameters=[REVISION])
    def retrieve(self, request: Request, version_id: str) -> Response:
        return self.out(self._card(version_id))

    @extend_schema(request=CardWordsIn, responses=CardOut)
    def partial_update(self, request: Request, version_id: str) -> Response:
        words = self.valid(CardWordsIn)["words"]
        return self.out(services.version_card_edit(version=self._version(version_id),
                                                   actor=self.actor, words=words))

    @extend_schema(request=None, responses=CardOut)
    def publish(self, request: Request, version_id: str) -> Response:
        return self.out(services.version_card_publish(version=self._version(version_id),
                                                      actor=self.actor))

    @extend_schema(request=CardReviseIn, responses={201: CardOut})
    def revise(self, request: Request, version_id: str) -> Response:
        """Correct a published card: a new draft revision, rendered from the current data with
        the words carried over; edit it (PATCH) and publish it. The old revision stays."""
        reason = self.valid(CardReviseIn)["reason"]
        return self.out(services.version_card_revise(version=self._version(version_id),
                                                     actor=self.actor, reason=reason),
                        status.HTTP_201_CREATED)

    @extend_schema(operation_id="v1_versions_card_download",
                   parameters=[OpenApiParameter("fmt", str, OpenApiParameter.PATH,
                                                enum=list(services.FORMATS)), REVISION],
                   # Markdown for "hf"; a JSON-LD object for Croissant and SPDX 3
                   responses={(200, media.split(";")[0]):
                              OpenApiTypes.STR if media.startswith("text/") else OpenApiTypes.OBJECT
                              for media, _ in services.FORMATS.values()})
    def download(self, request: Request, version_id: str, fmt: str) -> HttpResponse:
        card = self._card(version_id)
        media_type, suffix = services.FORMATS[fmt]
        response = HttpResponse(services.card_bytes(card, fmt), content_type=media_type,
                                status=status.HTTP_200_OK)
        name = f"{card.version}.{suffix}" if card.revision == 1 else \
            f"{card.version}.r{card.revision}.{suffix}"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["X-Content-SHA256"] = card.digests.get(fmt, "")
        return response


class ModelCardView(APIView):
    """GET /api/v1/checkpoints/{id}/card/: a checkpoint's model card, public like the dataset
    cards (the checkpoint's own record stays for model readers)."""

    anonymous_read = True

    @extend_schema(operation_id="v1_checkpoints_card",
                   responses={(200, "text/markdown"): OpenApiTypes.STR})
    def get(self, request: Request, checkpoint_id: int) -> HttpResponse:
        checkpoint = ModelCheckpoint.objects.select_related("version__dataset", "parent").filter(
            pk=checkpoint_id).first()
        if checkpoint is None:
            raise NotFound("no such checkpoint")
        text = model_card(checkpoint_facts(checkpoint))
        response = HttpResponse(text.encode(), content_type="text/markdown; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{checkpoint.name}.README.md"'
        return response
