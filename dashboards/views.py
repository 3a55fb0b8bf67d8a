"""Read-only pages. The full dashboards and transparency site grow here; this is the front door."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from dashboards import selectors


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboards/home.html", selectors.home_context(request.user))


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse(selectors.health())
