"""Read-only pages. The full dashboards and transparency site grow here."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from dashboards import selectors


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboards/home.html", selectors.home_context(request.user))


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse(selectors.health())


@login_required
def runs(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboards/runs.html", selectors.models_context(request.user))


@login_required
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = selectors.training_run(request.user, run_id)
    if run is None:
        raise Http404("no such training run")
    return render(request, "dashboards/run.html",
                  {"run": run, "config_json": json.dumps(run.config, indent=2)})


@login_required
def checkpoint_detail(request: HttpRequest, checkpoint_id: int) -> HttpResponse:
    context = selectors.checkpoint_context(request.user, checkpoint_id)
    if context is None:
        raise Http404("no such checkpoint")
    return render(request, "dashboards/checkpoint.html", context)


@login_required
def watermark_check(request: HttpRequest) -> HttpResponse:
    from provenance.services.watermarks import TRUST, watermark_detect

    text = request.POST.get("text", "")[:1_000_000] if request.method == "POST" else ""
    result = watermark_detect(text=text, user=request.user) if text else None
    return render(request, "dashboards/watermarks.html",
                  {"text": text, "result": result, "trust": TRUST})
