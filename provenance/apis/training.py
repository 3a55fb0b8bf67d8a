"""/api/v1/ endpoints for training runs and model checkpoints."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ServiceViewSet
from core.permissions import Capability
from provenance import selectors
from provenance import serializers as s
from provenance.services import canaries, ingest, training, watermarks


class TrainingRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceViewSet):
    serializer_class = s.TrainingRunOut
    filterset_fields = ["version", "state"]
    read_capability = Capability.READ_ALL
    write_capability = Capability.TRAIN

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.training_run_list(self.request.user)

    @extend_schema(request=s.TrainingRunIn, responses={202: s.TrainingRunOut})
    def create(self, request: Request) -> Response:
        data = self.valid(s.TrainingRunIn)
        run = training.training_run_create(version=data["version"], actor=self.actor,
                                           config=data.get("config"))
        return self.out(run, status.HTTP_202_ACCEPTED)

    @extend_schema(parameters=[OpenApiParameter("version", int, required=True)],
                   responses={200: s.TrainingPlanOut(many=True)})
    @action(detail=False, methods=["get"])
    def plans(self, request: Request) -> Response:
        """Before starting: each preset's configuration, packing and expected time on this
        version (2 CPU cores; a GPU is faster)."""
        raw = request.query_params.get("version", "")
        version = selectors.version_list(request.user).filter(
            pk=int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else 0).first()
        if version is None:
            raise DRFValidationError({"version": "give the id of a version you can see"})
        rows = []
        for preset in training.PRESETS:
            config, plan = training.training_plan(version, {"preset": preset})
            rows.append({"preset": preset, "config": config, "pack": plan["pack"],
                         "expected": plan["expected"],
                         "summary": training.plan_sentence(plan)})
        return Response(s.TrainingPlanOut(rows, many=True).data)

    @extend_schema(request=None, responses=s.TrainingRunOut)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        return self.out(training.training_run_cancel(run=self.get_object(), actor=self.actor))


class CheckpointViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceViewSet):
    serializer_class = s.CheckpointOut
    filterset_fields = ["version", "kind", "parent"]
    read_capability = Capability.READ_ALL
    write_capability = Capability.CURATE

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.checkpoint_list(self.request.user)

    @extend_schema(request=s.CheckpointRegisterIn, responses={201: s.CheckpointOut})
    def create(self, request: Request) -> Response:
        """Register a local Hugging Face causal-LM folder (bring your own model)."""
        data = self.valid(s.CheckpointRegisterIn)
        path = ingest.import_path_check(data["path"])
        checkpoint = training.checkpoint_register_local(
            path=path, version=data["version"], name=data["name"], actor=self.actor,
            parent=data.get("parent"))
        return self.out(checkpoint, status.HTTP_201_CREATED)


class CanaryTestRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceViewSet):
    serializer_class = s.CanaryTestRunOut
    filterset_fields = ["checkpoint", "state"]
    read_capability = Capability.READ_ALL
    write_capability = Capability.TRAIN

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.canary_test_run_list(self.request.user)

    @extend_schema(request=s.CanaryTestRunIn, responses={202: s.CanaryTestRunOut})
    def create(self, request: Request) -> Response:
        data = self.valid(s.CanaryTestRunIn)
        run = canaries.canary_test_run_create(
            checkpoint=data["checkpoint"], actor=self.actor, sources=data.get("sources"),
            null_size=data["null_size"], alpha=data["alpha"])
        return self.out(run, status.HTTP_202_ACCEPTED)


class WatermarkDetectView(APIView):
    """Find and decode source watermarks in a text; names only the sources you may see."""

    write_capability = Capability.SIGN_IN  # a read, sent as POST because texts can be long

    @extend_schema(request=s.WatermarkDetectIn, responses={200: dict})
    def post(self, request: Request) -> Response:
        data = s.WatermarkDetectIn(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(watermarks.watermark_detect(text=data.validated_data["text"],
                                                    user=request.user,
                                                    top_k=data.validated_data["top_k"]))
