"""/api/v1/ endpoints for rights-holders, licence references, sources and documents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import django_filters
from django.db.models import Prefetch
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import ServiceViewSet
from core.permissions import Capability, Role, can, role_of
from provenance import selectors
from provenance import serializers as s
from provenance.models import DataSource, Document, LicenseRefTerms, RightsHolder, SourceCanary
from provenance.services import documents, onboarding, sources, usage
from provenance.services.canaries import canary_register

# --- rights-holders and sources ---------------------------------------------------------------


class RightsHolderFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = RightsHolder
        fields = ["name", "kind", "verified"]


class RightsHolderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceViewSet):
    serializer_class = s.RightsHolderOut
    filterset_class = RightsHolderFilter
    write_capability = Capability.CURATE

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.rights_holder_list(self.request.user)

    @extend_schema(request=s.RightsHolderIn, responses={201: s.RightsHolderOut})
    def create(self, request: Request) -> Response:
        data = self.valid(s.RightsHolderIn)
        holder = sources.rights_holder_create(actor=self.actor, **data)
        return self.out(holder, status.HTTP_201_CREATED)

    @extend_schema(request=s.OnboardIn, responses={201: s.OnboardedOut})
    @action(detail=False, methods=["post"])
    def onboard(self, request: Request) -> Response:
        """One action: the holder and its first user, who gets the password given or, without
        one, an e-mailed invitation to choose it (a one-time link)."""
        done = onboarding.rights_holder_onboard(actor=self.actor, **self.valid(s.OnboardIn))
        return Response(s.OnboardedOut(done, context=self.get_serializer_context()).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(request=s.RightsHolderIn, responses=s.RightsHolderOut)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        holder = self.get_object()
        data = self.valid(s.RightsHolderIn, partial=True)
        return self.out(sources.rights_holder_update(holder=holder, actor=self.actor, **data))


class LicenseRefViewSet(mixins.ListModelMixin, ServiceViewSet):
    """The terms curators gave LicenseRef- keys: read by every signed-in user, set (or replaced)
    by curators and admins with a reason; the sources naming a key take its terms at once."""

    serializer_class = s.LicenseRefOut
    write_capability = Capability.CURATE
    queryset = LicenseRefTerms.objects.all()

    @extend_schema(request=s.LicenseRefIn, responses={200: s.LicenseRefOut})
    def create(self, request: Request) -> Response:
        ref, _ = sources.license_ref_classify(actor=self.actor, **self.valid(s.LicenseRefIn))
        return self.out(ref)


class SourceFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = DataSource
        fields = ["owner", "use_class", "status", "name"]


class SourceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceViewSet):
    serializer_class = s.SourceOut
    filterset_class = SourceFilter
    write_capability = Capability.MANAGE_OWN_SOURCES
    action_capabilities = {"license_signals": Capability.CURATE}
    ordering_fields = ["name", "created_at", "document_count"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.source_list(self.request.user)

    @extend_schema(request=s.SourceIn, responses={201: s.SourceOut})
    def create(self, request: Request) -> Response:
        data = self.valid(s.SourceIn)
        owner = data.pop("owner", None)
        if role_of(request.user) == Role.RIGHTS_HOLDER:
            if owner is not None and owner.pk != self.actor.rights_holder_id:
                raise PermissionDenied("you can register sources for your own rights-holder only")
            owner = self.actor.rights_holder
        if owner is None:
            raise DRFValidationError({"owner": "this field is required"})
        source = sources.source_create(actor=self.actor, owner=owner, **data)
        return self.out(source, status.HTTP_201_CREATED)

    @extend_schema(request=s.SourceIn, responses=s.SourceOut)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        source = self.get_object()
        data = self.valid(s.SourceIn, partial=True)
        if "owner" in data:
            raise DRFValidationError({"owner": "a source's owner cannot be changed"})
        return self.out(sources.source_update(source=source, actor=self.actor, **data))

    def _signals(self, request: Request, related: str, out_cls: Any, in_cls: Any,
                 record: Any) -> Response:
        """List a source's signal history (GET) or record a new signal through `record` (POST)."""
        source = self.get_object()
        if request.method == "GET":
            return Response(out_cls(getattr(source, related).all(), many=True).data)
        signal = record(source=source, actor=self.actor, **self.valid(in_cls))
        return self.out(signal, status.HTTP_201_CREATED, out_cls)

    @extend_schema(request=s.OptOutSignalIn, responses={200: s.OptOutSignalOut(many=True),
                                                        201: s.OptOutSignalOut})
    @action(detail=True, methods=["get", "post"], url_path="opt-out-signals",
            pagination_class=None, filter_backends=[])  # a whole list, unfiltered
    def opt_out_signals(self, request: Request, pk: str | None = None) -> Response:
        """Usage signals as observed, each read into train and ai-input preferences."""
        return self._signals(request, "opt_out_signals", s.OptOutSignalOut, s.OptOutSignalIn,
                             usage.opt_out_signal_record)

    @extend_schema(parameters=[OpenApiParameter("at", OpenApiTypes.DATETIME, description=(
        "the verdicts as of this time (ISO 8601 with a zone); now when left out"))],
        responses=s.VerdictsOut)
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def verdicts(self, request: Request, pk: str | None = None) -> Response:
        """May the source's text train a model, may it be given to one as input (retrieval,
        grounding): each verdict with the signal and the words that decided it."""
        source = self.get_object()
        at = self._at(request.query_params.get("at"))
        verdicts = usage.source_verdicts(source, at)
        unread = [{"signal": sig.pk, "kind": sig.kind, "terms": sig.reading.get("unknown", [])}
                  for sig in usage.latest_signals(source, at) if sig.reading.get("unknown")]
        return Response(s.VerdictsOut({
            "source": source.pk, "at": at, "unread": unread,
            **{name: v.as_dict() for name, v in verdicts.items()}}).data)

    @extend_schema(responses=s.DescendantsOut)
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def descendants(self, request: Request, pk: str | None = None) -> Response:
        """Where the source's text went: the versions that hold it, the checkpoints trained on
        them (and derived from those), the synthetic sources those checkpoints wrote, the
        versions holding that text and the students trained on it, each with its generation.
        For those who read models (a rights-holder sees none)."""
        if not can(request.user, Capability.READ_ALL):
            raise PermissionDenied("your role does not read models")
        from provenance.services.lineage import source_descendants

        source = self.get_object()
        return Response(s.DescendantsOut({"source": source.pk,
                                          **source_descendants(source).to_dict()}).data)

    @staticmethod
    def _at(raw: str | None) -> datetime:
        if not raw:
            return timezone.now()
        try:  # a "+" of the zone arrives as a space when the query string was not encoded
            at = parse_datetime(raw.strip().replace(" ", "+"))
        except ValueError:  # well formed, but no such time (month 13)
            at = None
        if at is None or at.tzinfo is None:
            raise DRFValidationError({"at": "expected an ISO 8601 time with a zone, e.g. "
                                            "2026-11-27T00:00:00+00:00"})
        return at

    @extend_schema(request=s.CanaryIn, responses={200: s.CanaryOut, 201: s.CanaryOut})
    @action(detail=True, methods=["get", "post"])
    def canary(self, request: Request, pk: str | None = None) -> Response:
        """A source's canary (opt-in): its distribution; the sequence itself stays secret."""
        source = self.get_object()
        if request.method == "GET":
            registered = SourceCanary.objects.filter(source=source).first()
            if registered is None:
                raise NotFound("this source has no canary")
            return Response(s.CanaryOut(registered).data)
        registered = canary_register(source=source, actor=self.actor,
                                     spec=self.valid(s.CanaryIn).get("spec"))
        return self.out(registered, status.HTTP_201_CREATED, s.CanaryOut)

    @extend_schema(request=s.LicenseSignalIn, responses={200: s.LicenseSignalOut(many=True),
                                                         201: s.LicenseSignalOut})
    @action(detail=True, methods=["get", "post"], url_path="license-signals",
            pagination_class=None, filter_backends=[])  # a whole list, unfiltered
    def license_signals(self, request: Request, pk: str | None = None) -> Response:
        return self._signals(request, "license_signals", s.LicenseSignalOut, s.LicenseSignalIn,
                             sources.license_signal_add)


# --- documents --------------------------------------------------------------------------------


class DocumentFilter(django_filters.FilterSet):
    source = django_filters.NumberFilter(method="in_source")
    removed = django_filters.BooleanFilter(field_name="removed_at", lookup_expr="isnull",
                                           exclude=True)

    class Meta:
        model = Document
        fields = ["sha256", "source", "removed"]

    def in_source(self, queryset: Any, name: str, value: int) -> Any:
        """Documents in a source the asker can see: a rights-holder's filter on another holder's
        source finds nothing (it would tell which of its documents that source holds too)."""
        visible = selectors.source_list(self.request.user).filter(pk=value)
        # At most one source matches and a document occurs once per source: no duplicates,
        # so no DISTINCT (a sort over every document of a large source).
        return queryset.filter(occurrences__source__in=visible)


class DocumentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceViewSet):
    filterset_class = DocumentFilter
    write_capability = Capability.CURATE

    def get_queryset(self):  # type: ignore[no-untyped-def]
        user = self.request.user
        # A rights-holder sees only its own sources among a document's sources.
        visible = Prefetch("sources",
                           queryset=selectors.source_list(user).select_related(None).only("id"))
        qs = selectors.document_list(user).prefetch_related(visible)
        return qs.defer("text", "minhash", "embedding") if self.action == "list" else qs

    def get_serializer_class(self):  # type: ignore[no-untyped-def]
        return s.DocumentDetailOut if self.action == "retrieve" else s.DocumentOut

    @extend_schema(request=s.TombstoneIn, responses=s.DocumentOut)
    @action(detail=True, methods=["post"])
    def tombstone(self, request: Request, pk: str | None = None) -> Response:
        data = self.valid(s.TombstoneIn)
        doc = documents.document_tombstone(document=self.get_object(), actor=self.actor, **data)
        return self.out(doc, cls=s.DocumentOut)
