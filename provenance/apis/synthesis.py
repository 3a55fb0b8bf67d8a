"""/api/v1/synthesis-jobs/: a registered checkpoint writes documents into a synthetic source of
their own, on the gpu queue; each document keeps the record (prompt, seed) that regenerates it."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import ServiceViewSet
from core.permissions import Capability
from provenance.models import SynthesisJob
from provenance.serializers.synthesis import SynthesisJobIn, SynthesisJobOut
from provenance.services.synthesis import synthesis_job_create


class SynthesisJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceViewSet):
    serializer_class = SynthesisJobOut
    filterset_fields = ["checkpoint", "state"]
    read_capability = Capability.READ_ALL
    write_capability = Capability.GENERATE
    queryset = SynthesisJob.objects.all()

    @extend_schema(request=SynthesisJobIn, responses={202: SynthesisJobOut})
    def create(self, request: Request) -> Response:
        """Make the synthetic source (acquisition synthetic, its generator the checkpoint) and
        queue the job that fills it."""
        job = synthesis_job_create(actor=self.actor, **self.valid(SynthesisJobIn))
        return self.out(job, status.HTTP_202_ACCEPTED)
