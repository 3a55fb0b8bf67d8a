"""Cross-cutting request handling."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

log = logging.getLogger(__name__)
RETRY_AFTER_S = 5


class DatabaseUnavailable:
    """A lost database connection answers 503 with a clear message instead of a 500.

    Every write is one transaction, so a connection that drops mid-request leaves nothing
    behind: the answer can say so, and the client can simply retry. Django reconnects on the
    next request (CONN_HEALTH_CHECKS)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not isinstance(exc, (OperationalError, InterfaceError)):
            return None
        log.warning("database unavailable during %s %s: %s", request.method, request.path, exc)
        message = "the database is unavailable: nothing was saved; try again in a few seconds"
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse({"detail": message}, status=503)
        else:
            response = HttpResponse("<!doctype html><title>Unavailable</title><h1>Service "
                                    f"unavailable</h1><p>{message.capitalize()}.</p>",
                                    status=503)
        response["Retry-After"] = str(RETRY_AFTER_S)
        return response
