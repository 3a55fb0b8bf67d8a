"""/api/v1/ endpoints for holders, sources, documents, datasets, versions, jobs and the ledger."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import django_filters
from django.db.models import Prefetch
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.utils import OpenApiParameter, extend_schema
from knox.auth import TokenAuthentication
from rest_framework import mixins, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from core.conf import setting
from core.permissions import Capability, Role, can, role_of
from provenance import selectors
from provenance import serializers as s
from provenance.apis.base import ServiceViewSet
from provenance.authentication import TokenBasicAuthentication
from provenance.ledger.proofs import ledger_audit
from provenance.models import (
    DatasetVersion,
    DataSource,
    Document,
    IngestJob,
    SourceCanary,
    VersionExclusion,
)
from provenance.services import datasets, documents, exports, ingest, onboarding, sources
from provenance.services.canaries import canary_register

# --- rights-holders and sources ---------------------------------------------------------------


class RightsHolderFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = s.RightsHolder
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
    queryset = s.LicenseRefTerms.objects.all()

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
        return self._signals(request, "opt_out_signals", s.OptOutSignalOut, s.OptOutSignalIn,
                             sources.opt_out_signal_record)

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


# --- datasets and versions --------------------------------------------------------------------

RECORDS_PAGE_MAX = 1_000


class DatasetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceViewSet):
    serializer_class = s.DatasetOut
    filterset_fields = ["slug"]
    anonymous_read = True
    write_capability = Capability.BUILD_DATASETS

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.dataset_list(self.request.user)

    @extend_schema(request=s.DatasetIn, responses={201: s.DatasetOut})
    def create(self, request: Request) -> Response:
        dataset = datasets.dataset_create(actor=self.actor, **self.valid(s.DatasetIn))
        return self.out(dataset, status.HTTP_201_CREATED)


class FormatIsTheFile(DefaultContentNegotiation):
    """`?format=` names the export's file format here, not a renderer: errors are JSON."""

    def select_renderer(self, request: Request, renderers: Iterable[BaseRenderer],
                        format_suffix: str | None = None) -> tuple[BaseRenderer, str]:
        first = next(iter(renderers))
        return first, first.media_type


def _whole(raw: str, field: str, least: int) -> int:
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18) or int(raw) < least:
        raise DRFValidationError({field: f"a whole number, at least {least}"})
    return int(raw)


class VersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceViewSet):
    serializer_class = s.VersionOut
    filterset_fields = ["dataset", "state", "number"]
    anonymous_read = True
    write_capability = Capability.BUILD_DATASETS

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.version_list(self.request.user)

    @extend_schema(request=None, responses=s.VersionOut)
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, pk: str | None = None) -> Response:
        version = datasets.dataset_version_publish(version=self.get_object(), actor=self.actor)
        return self.out(version)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        datasets.dataset_version_discard(version=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={(200, "text/plain"): str})
    @action(detail=True, methods=["get"])
    def manifest(self, request: Request, pk: str | None = None) -> StreamingHttpResponse:
        """The sorted member content hashes, one per line; the root is in X-Manifest-Root.
        Recompute it offline with `python -m provenance.engine.merkle FILE`."""
        version: DatasetVersion = self.get_object()
        response = StreamingHttpResponse(exports.manifest_lines(version),
                                         content_type="text/plain")
        response["X-Manifest-Root"] = version.manifest_root
        response["Content-Disposition"] = f'attachment; filename="{version}.manifest.txt"'
        return response

    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=list(exports.FORMATS),
                             description="jsonl (the default) or parquet"),
            OpenApiParameter("after", int, description="JSON Lines page: the records after "
                             "this document id (the Link header names the next page)"),
            OpenApiParameter("limit", int, description=f"JSON Lines page size, at most "
                             f"{RECORDS_PAGE_MAX}")],
        responses={(200, "application/jsonlines"): str,
                   (200, "application/vnd.apache.parquet"): bytes})
    @action(detail=True, methods=["get"], content_negotiation_class=FormatIsTheFile,
            authentication_classes=[SessionAuthentication, TokenAuthentication,
                                    TokenBasicAuthentication])
    def records(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        """The version's documents: text as submitted, both hashes, source, licence, language
        and the record's metadata; what its Croissant card describes. Without `after`/`limit`
        the whole export (with its sha256 in X-Content-SHA256, the digest the card gives);
        with them, one page of JSON Lines. Documents removed since publication are left out.
        Clients that send only HTTP Basic credentials give an API token as the password."""
        if not can(request.user, Capability.READ_ALL):
            raise PermissionDenied("a version's records (its documents' text) are open to "
                                   "staff, auditors and researchers")
        version: DatasetVersion = self.get_object()
        if not version.is_published:
            raise DRFValidationError({"version": "publish the version first: a draft has no "
                                                 "export"})
        params = request.query_params
        fmt = params.get("format", "jsonl")
        if fmt not in exports.FORMATS:
            raise DRFValidationError({"format": f"one of {sorted(exports.FORMATS)}"})
        if "after" in params or "limit" in params:
            if fmt != "jsonl":
                raise DRFValidationError({"format": "pages (after, limit) are JSON Lines"})
            after = _whole(params.get("after", "0"), "after", 0)
            limit = _whole(params.get("limit", str(RECORDS_PAGE_MAX)), "limit", 1)
            if limit > RECORDS_PAGE_MAX:
                raise DRFValidationError({"limit": f"at most {RECORDS_PAGE_MAX}"})
            page = list(exports.records(version, after=after, limit=limit))
            response = HttpResponse(b"".join(map(exports.jsonl_line, page)),
                                    content_type=exports.FORMATS["jsonl"])
            if len(page) == limit:
                response["Link"] = (f'<{request.build_absolute_uri(request.path)}?after='
                                    f'{page[-1]["id"]}&limit={limit}>; rel="next"')
            return response
        export = exports.version_export(version, fmt)
        whole = FileResponse(export.path.open("rb"), content_type=export.media_type,
                                as_attachment=True, filename=f"{version}.{fmt}")
        whole["X-Content-SHA256"] = export.sha256
        return whole

    @extend_schema(parameters=[OpenApiParameter("against", int, required=True)],
                   responses={200: dict})
    @action(detail=True, methods=["get"])
    def diff(self, request: Request, pk: str | None = None) -> Response:
        version = self.get_object()
        raw = request.query_params.get("against", "")
        # ASCII digits only: "²".isdigit() holds and int("²") raises; and within bigint
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
            raise DRFValidationError({"against": "give the id of the version to compare with"})
        other = self.get_queryset().filter(pk=int(raw)).first()
        if other is None:
            raise DRFValidationError({"against": f"no version {raw} that you can see"})
        return Response(datasets.version_diff(version, other))

    @extend_schema(parameters=[OpenApiParameter("reason", str,
                                                enum=VersionExclusion.Reason.values)],
                   responses=s.ExclusionOut(many=True))
    @action(detail=True, methods=["get"])
    def exclusions(self, request: Request, pk: str | None = None) -> Response:
        if not can(request.user, Capability.READ_ALL):
            raise PermissionDenied("exclusions are visible to staff, auditors and researchers")
        qs = self.get_object().exclusions.select_related("document").order_by("id")
        reason = request.query_params.get("reason")
        if reason:
            if reason not in VersionExclusion.Reason.values:
                raise DRFValidationError({"reason": f"one of {VersionExclusion.Reason.values}"})
            qs = qs.filter(reason=reason)
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(s.ExclusionOut(page, many=True).data)


# --- jobs -------------------------------------------------------------------------------------


class IngestJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceViewSet):
    serializer_class = s.IngestJobOut
    filterset_fields = ["source", "state"]
    read_capability = Capability.READ_INGEST
    write_capability = Capability.MANAGE_OWN_SOURCES

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.ingest_job_list(self.request.user)

    @extend_schema(request={"multipart/form-data": s.IngestJobIn}, responses={202: s.IngestJobOut})
    def create(self, request: Request) -> Response:
        data = self.valid(s.IngestJobIn)
        source: DataSource = data["source"]
        role = role_of(request.user)
        if role == Role.RIGHTS_HOLDER and source.owner_id != self.actor.rights_holder_id:
            raise PermissionDenied("you can ingest into your own sources only")
        options = {"source": source, "actor": self.actor, "fmt": data.get("format"),
                   "text_field": data["text_field"]}
        if data.get("file"):
            upload = data["file"]
            limit = setting("UPLOAD_MAX_BYTES")
            if upload.size > limit:
                raise DRFValidationError({"file": f"over the {limit}-byte upload limit"})
            job = ingest.ingest_job_create_from_upload(chunks=upload.chunks(), name=upload.name,
                                                       **options)
        else:
            if not can(request.user, Capability.CURATE):
                raise PermissionDenied("only staff may ingest from a server path")
            path = ingest.import_path_check(data["path"])
            job = ingest.ingest_job_create(path=path, original_name=path.name, **options)
        return self.out(job, status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: s.IngestJobOut})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        job: IngestJob = self.get_object()
        return self.out(ingest.ingest_job_retry(job=job, actor=self.actor),
                        status.HTTP_202_ACCEPTED)


class CurationJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceViewSet):
    serializer_class = s.CurationJobOut
    filterset_fields = ["dataset", "state"]
    write_capability = Capability.BUILD_DATASETS

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.curation_job_list(self.request.user)

    @extend_schema(request=s.CurationJobIn, responses={202: s.CurationJobOut})
    def create(self, request: Request) -> Response:
        data = self.valid(s.CurationJobIn)
        job = datasets.curation_job_create(dataset=data["dataset"], recipe=data["recipe"],
                                           actor=self.actor)
        return self.out(job, status.HTTP_202_ACCEPTED)


class LedgerViewSet(mixins.ListModelMixin, ServiceViewSet):
    serializer_class = s.LedgerEntryOut
    filterset_fields = ["event", "subject_type", "subject_id"]
    read_capability = Capability.AUDIT

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.ledger_list(self.request.user)

    @extend_schema(responses={200: dict})
    @action(detail=False, methods=["get"])
    def verify(self, request: Request) -> Response:
        """Every entry recomputed and every signed checkpoint matched, as `manage.py ledger
        verify` does."""
        audit = ledger_audit()
        return Response({"intact": audit.verified, "first_bad_seq": audit.first_bad_seq,
                         "entries": audit.entries, "checkpoints": audit.checkpoints,
                         "problems": audit.problems[:100]})
