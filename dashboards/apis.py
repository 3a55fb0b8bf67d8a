"""/api/v1/versions/{id}/card/: a dataset version's cards. Anyone may read a published card;
staff, auditors and researchers also read drafts; staff and researchers edit and publish."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboards import services
from dashboards.engine.cards.model import model_card
from dashboards.models import VersionCard
from dashboards.selectors import checkpoint_facts
from provenance import selectors
from provenance.apis.base import ServiceViewSet
from provenance.models import DatasetVersion, ModelCheckpoint
from provenance.permissions import STAFF, Role, role_of


class CardOut(serializers.ModelSerializer):
    version = serializers.CharField(source="version.__str__", read_only=True)
    downloads = serializers.SerializerMethodField()

    class Meta:
        model = VersionCard
        fields = ["version", "state", "words", "digests", "rendered_at", "published_at",
                  "downloads"]

    def get_downloads(self, card: VersionCard) -> dict[str, str]:
        return {fmt: f"/api/v1/versions/{card.version_id}/card/{fmt}/"
                for fmt in services.FORMATS}


class CardWordsIn(serializers.Serializer):
    words = serializers.JSONField(help_text="any of: summary, uses, out_of_scope, "
                                            "curation_rationale, personal_information, biases, "
                                            "limitations, citation (text)")


class VersionCardViewSet(ServiceViewSet):
    serializer_class = CardOut
    anonymous_read = True
    write_roles = STAFF | {Role.RESEARCHER}

    def _version(self, version_id: str) -> DatasetVersion:
        version = selectors.version_list(self.request.user).filter(pk=version_id).first()
        if version is None:
            raise NotFound("no such dataset version")
        return version

    def _card(self, version_id: str) -> VersionCard:
        card = VersionCard.objects.filter(version=self._version(version_id)).first()
        sees_drafts = role_of(self.request.user) in selectors.SEES_ALL
        if card is None or (card.state != VersionCard.State.PUBLISHED and not sees_drafts):
            raise NotFound("this version has no published card")
        return card

    @extend_schema(responses=CardOut)
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

    @extend_schema(operation_id="v1_versions_card_download",
                   parameters=[OpenApiParameter("fmt", str, OpenApiParameter.PATH,
                                                enum=list(services.FORMATS))],
                   # Markdown for "hf"; a JSON-LD object for Croissant and SPDX 3
                   responses={(200, media.split(";")[0]):
                              OpenApiTypes.STR if media.startswith("text/") else OpenApiTypes.OBJECT
                              for media, _ in services.FORMATS.values()})
    def download(self, request: Request, version_id: str, fmt: str) -> HttpResponse:
        card = self._card(version_id)
        media_type, suffix = services.FORMATS[fmt]
        response = HttpResponse(services.card_bytes(card, fmt), content_type=media_type,
                                status=status.HTTP_200_OK)
        response["Content-Disposition"] = f'attachment; filename="{card.version}.{suffix}"'
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
