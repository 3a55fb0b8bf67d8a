"""/api/v1/ endpoints for datasets, versions, ingest and curation jobs, and the ledger."""

from __future__ import annotations

from collections.abc import Iterable

from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.utils import OpenApiParameter, extend_schema
from knox.auth import TokenAuthentication
from rest_framework import mixins, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import ServiceViewSet
from core.conf import setting
from core.permissions import Capability, Role, can, role_of
from provenance import selectors
from provenance import serializers as s
from provenance.authentication import TokenBasicAuthentication
from provenance.ledger.proofs import ledger_audit
from provenance.models import (
    DatasetVersion,
    DataSource,
    IngestJob,
    VersionExclusion,
)
from provenance.services import datasets, exports, ingest

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
