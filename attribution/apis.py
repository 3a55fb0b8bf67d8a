"""/api/v1/outputs/, /api/v1/gradient-indexes/, /api/v1/attribution-runs/: completions of registered
checkpoints, their attribution and its reports; the work runs on the gpu queue."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from attribution import selectors
from attribution import serializers as s
from attribution.models import AttributionReport
from attribution.services.influence import gradient_index_create, gradient_index_rebuild
from attribution.services.outputs import model_output_create
from attribution.services.runs import attribution_run_create
from core.api import ServiceViewSet
from core.permissions import Capability


class ModelOutputViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceViewSet):
    serializer_class = s.ModelOutputOut
    filterset_fields = ["checkpoint", "state"]
    read_capability = Capability.READ_ALL
    write_capability = Capability.GENERATE

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.model_output_list(self.request.user)

    @extend_schema(request=s.ModelOutputIn, responses={202: s.ModelOutputOut})
    def create(self, request: Request) -> Response:
        data = self.valid(s.ModelOutputIn)
        output = model_output_create(checkpoint=data["checkpoint"], prompt=data["prompt"],
                                     params=data.get("params"), actor=self.actor)
        return self.out(output, status.HTTP_202_ACCEPTED)


class GradientIndexViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceViewSet):
    """Gradient indexes: one per checkpoint, built on the gpu queue by a chord of shards."""

    serializer_class = s.GradientIndexOut
    filterset_fields = ["checkpoint", "state"]
    read_capability = Capability.READ_ALL
    write_capability = Capability.CURATE

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.gradient_index_list(self.request.user)

    @extend_schema(request=s.GradientIndexIn, responses={202: s.GradientIndexOut})
    def create(self, request: Request) -> Response:
        data = self.valid(s.GradientIndexIn)
        index = gradient_index_create(checkpoint=data["checkpoint"], spec=data.get("spec"),
                                      actor=self.actor)
        return self.out(index, status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: s.GradientIndexOut})
    @action(detail=True, methods=["post"])
    def rebuild(self, request: Request, pk: str) -> Response:
        return self.out(gradient_index_rebuild(index=self.get_object(), actor=self.actor),
                        status.HTTP_202_ACCEPTED)


class AttributionRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceViewSet):
    """Attribution of a model output by every method, on the gpu queue, with live progress; the
    report (JSON or PDF) once it has finished. Auditors may start runs: a run reads the data and
    writes only its own results."""

    serializer_class = s.AttributionRunOut
    filterset_fields = ["output", "state"]
    read_capability = Capability.READ_ALL
    write_capability = Capability.START_ATTRIBUTION

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.attribution_run_list(self.request.user)

    @extend_schema(request=s.AttributionRunIn, responses={202: s.AttributionRunOut})
    def create(self, request: Request) -> Response:
        data = self.valid(s.AttributionRunIn)
        run = attribution_run_create(output=data["output"], methods=data.get("methods"),
                                     params=data.get("params"), actor=self.actor)
        return self.out(run, status.HTTP_202_ACCEPTED)

    def _report(self) -> AttributionReport:
        report = AttributionReport.objects.filter(run=self.get_object()).select_related(
            "ledger_entry").first()
        if report is None:
            raise NotFound("this run has no report yet")
        return report

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def report(self, request: Request, pk: str) -> Response:
        report = self._report()
        return Response({"sha256": report.sha256, "ledger_seq": report.ledger_entry.seq
                         if report.ledger_entry else None, "body": report.body})

    @extend_schema(responses={(200, "application/pdf"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"], url_path="report-pdf")
    def report_pdf(self, request: Request, pk: str) -> HttpResponse:
        from attribution.pdf import render_pdf

        report = self._report()
        response = HttpResponse(render_pdf(report.body, report.sha256),
                                content_type="application/pdf")
        response["Content-Disposition"] = \
            f'attachment; filename="attribution-report-{report.run_id}.pdf"'
        return response
