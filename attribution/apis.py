"""/api/v1/outputs/: completions of registered checkpoints, produced on the gpu queue."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.request import Request
from rest_framework.response import Response

from attribution import selectors
from attribution import serializers as s
from attribution.services.outputs import model_output_create
from provenance.apis.base import ServiceViewSet
from provenance.permissions import STAFF, Role


class ModelOutputViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceViewSet):
    serializer_class = s.ModelOutputOut
    filterset_fields = ["checkpoint", "state"]
    read_roles = STAFF | {Role.AUDITOR, Role.RESEARCHER}
    write_roles = STAFF | {Role.RESEARCHER}

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.model_output_list(self.request.user)

    @extend_schema(request=s.ModelOutputIn, responses={202: s.ModelOutputOut})
    def create(self, request: Request) -> Response:
        data = self.valid(s.ModelOutputIn)
        output = model_output_create(checkpoint=data["checkpoint"], prompt=data["prompt"],
                                     params=data.get("params"), actor=self.actor)
        return self.out(output, status.HTTP_202_ACCEPTED)
