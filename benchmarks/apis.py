"""/api/v1/benchmarks/: recipe benchmarks, their entries and runs; /api/v1/benchmark-runs/: a
run's trials, live progress and leaderboard."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from benchmarks import serializers as s
from benchmarks.models import Benchmark, BenchmarkRun
from benchmarks.services.runs import benchmark_run_cancel, benchmark_run_create
from benchmarks.services.setup import benchmark_create, entry_add
from core.api import ServiceViewSet
from core.permissions import Capability


class BenchmarkViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceViewSet):
    serializer_class = s.BenchmarkOut
    read_capability = Capability.READ_ALL
    write_capability = Capability.TRAIN
    queryset = Benchmark.objects.prefetch_related("entries__version__dataset")

    @extend_schema(request=s.BenchmarkIn, responses={201: s.BenchmarkOut})
    def create(self, request: Request) -> Response:
        """A benchmark: the model and token budget every entry trains with, the seeds, the
        evaluation version and the probe. A wrong option answers 400 naming it."""
        benchmark = benchmark_create(actor=self.actor, **self.valid(s.BenchmarkIn))
        return self.out(benchmark, status.HTTP_201_CREATED)

    @extend_schema(request=s.EntryIn, responses={201: s.EntryOut})
    @action(detail=True, methods=["post"])
    def entries(self, request: Request, pk: str | None = None) -> Response:
        """Enter a published version (refused if it holds an evaluation text)."""
        entry = entry_add(actor=self.actor, benchmark=self.get_object(), **self.valid(s.EntryIn))
        return self.out(entry, status.HTTP_201_CREATED, cls=s.EntryOut)

    @extend_schema(request=s.BenchmarkRunIn, responses={202: s.BenchmarkRunOut})
    @action(detail=True, methods=["post"])
    def runs(self, request: Request, pk: str | None = None) -> Response:
        """Run the whole benchmark: the contamination check, every entry with every seed on
        the gpu queue, then the leaderboard; watch it at /api/v1/benchmark-runs/{id}/."""
        run = benchmark_run_create(benchmark=self.get_object(), actor=self.actor)
        return self.out(run, status.HTTP_202_ACCEPTED, cls=s.BenchmarkRunOut)


class BenchmarkRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceViewSet):
    serializer_class = s.BenchmarkRunOut
    filterset_fields = ["benchmark", "state"]
    read_capability = Capability.READ_ALL
    write_capability = Capability.TRAIN
    queryset = BenchmarkRun.objects.prefetch_related("trials__entry")

    @extend_schema(request=None, responses=s.BenchmarkRunOut)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Stop the run: queued trials never start, trainings in progress stop at their next
        progress report, nothing is published (409 once it has ended)."""
        run = benchmark_run_cancel(run=self.get_object(), actor=self.actor)
        return self.out(self.get_queryset().get(pk=run.pk), cls=s.BenchmarkRunOut)
