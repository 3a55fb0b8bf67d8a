"""Cross-cutting request handling."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse, UnreadablePostError

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


class BodyLimit:
    """A request body over its limit is refused on its declared Content-Length, before a byte of
    it is read: a 3 GB upload, trickled or not, is answered 413 at once instead of occupying a
    worker while Django streams it to disk. Multipart bodies may be as large as an upload
    (TRAILMARK_UPLOAD_MAX_BYTES, plus room for the other fields); any other body as large as
    Django keeps in memory (DATA_UPLOAD_MAX_MEMORY_SIZE). A body that stops arriving (the
    server's read deadline, config.gunicorn_worker) answers 400."""

    MULTIPART_ROOM = 1 << 20

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def limit(self, request: HttpRequest) -> int:
        from django.conf import settings

        if request.content_type == "multipart/form-data":
            return int(settings.TRAILMARK["UPLOAD_MAX_BYTES"]) + self.MULTIPART_ROOM
        return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _refuse(request, 400, "Content-Length is not a whole number")
        limit = self.limit(request)
        if declared > limit:
            return _refuse(request, 413, f"request body too large: {declared} bytes declared, "
                                         f"at most {limit} accepted here; nothing was read")
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if isinstance(exc, UnreadablePostError):
            return _refuse(request, 400, "the request body stopped arriving or arrived too "
                                         "slowly; nothing was saved")
        return None


def _refuse(request: HttpRequest, status: int, message: str) -> HttpResponse:
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": message}, status=status)
    else:
        response = HttpResponse(message + "\n", status=status, content_type="text/plain")
    return response  # gunicorn drains at most a few seconds of an unread body, then closes
