"""The benchmark pages: the list, one benchmark's leaderboard (and its Run button, which goes
through the same service as POST /api/v1/benchmarks/{id}/runs/), and one run's live trials."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from core.permissions import Capability, require
from dashboards import selectors
from provenance.models import User


@login_required
def benchmarks(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboards/benchmarks.html",
                  selectors.benchmarks_context(request.user))


@login_required
def benchmark_detail(request: HttpRequest, benchmark_id: int) -> HttpResponse:
    run_id = request.GET.get("run", "")
    context = selectors.benchmark_context(request.user, benchmark_id,
                                          int(run_id) if run_id.isdigit() else None)
    if context is None:
        raise Http404("no such benchmark")
    if request.method != "POST":
        return render(request, "dashboards/benchmark.html", context)
    from benchmarks.services.runs import benchmark_run_create

    actor = request.user
    assert isinstance(actor, User)  # login_required
    require(actor, Capability.TRAIN, "your role cannot run benchmarks")
    try:
        run = benchmark_run_create(benchmark=context["benchmark"], actor=actor)
    except ValidationError as exc:
        context["form_error"] = "; ".join(exc.messages)
        return render(request, "dashboards/benchmark.html", context, status=400)
    return redirect(f"/benchmarks/runs/{run.pk}/")


@login_required
def benchmark_run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    """One run, live; its Cancel button (for those who train) goes through the same service as
    POST /api/v1/benchmark-runs/{id}/cancel/."""
    context = selectors.benchmark_run_context(request.user, run_id)
    if context is None:
        raise Http404("no such benchmark run")
    if request.method != "POST":
        return render(request, "dashboards/benchmark_run.html", context)
    from benchmarks.services.runs import benchmark_run_cancel
    from core.errors import InvalidTransition

    actor = request.user
    assert isinstance(actor, User)  # login_required
    require(actor, Capability.TRAIN, "your role cannot cancel benchmark runs")
    try:
        benchmark_run_cancel(run=context["run"], actor=actor)
    except InvalidTransition as exc:
        context["form_error"] = str(exc)
        return render(request, "dashboards/benchmark_run.html", context, status=409)
    return redirect(f"/benchmarks/runs/{run_id}/")
