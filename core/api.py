"""What every API view shares: the error handler, the service-calling base view, and the schema's
error answers (every error body is an object: `detail` for a general refusal, one entry per
field for invalid input)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import (
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError
from rest_framework import serializers, status, viewsets
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import InvalidTransition, LedgerTampered, QuotaExceeded


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Service errors become 4xx answers that name the field; nothing here becomes a 5xx."""
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response({"detail": f"request body too large: at most {limit} bytes outside "
                                   "file uploads"}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, (TooManyFieldsSent, TooManyFilesSent)):
        return Response({"detail": str(exc) or "too many fields or files in one request"},
                        status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        exc = DRFValidationError(detail=detail)
    elif isinstance(exc, InvalidTransition):
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    elif isinstance(exc, ProtectedError):
        return Response({"detail": "other records depend on this one"},
                        status=status.HTTP_409_CONFLICT)
    elif isinstance(exc, IntegrityError) and "trailmark:" in str(exc):
        # A database guard (immutable version, append-only table) refused the write.
        message = str(exc).split("trailmark:", 1)[1].splitlines()[0].strip()
        return Response({"detail": message}, status=status.HTTP_409_CONFLICT)
    elif isinstance(exc, QuotaExceeded):
        response = Response({"detail": str(exc)}, status=status.HTTP_429_TOO_MANY_REQUESTS)
        response["Retry-After"] = str(exc.retry_after)
        return response
    elif isinstance(exc, LedgerTampered):
        return Response({"detail": f"the ledger cannot be signed: {exc}. Nothing more is "
                                   "signed until an auditor has looked (manage.py ledger "
                                   "verify)."}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
    return drf_exception_handler(exc, context)


class ServiceViewSet(viewsets.GenericViewSet):
    """Base: input serializers are validated here; the write goes through a service."""

    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    @property
    def actor(self) -> Any:
        """The signed-in user (AUTH_USER_MODEL). Writes reach here only for signed-in users:
        CapabilityPermission refuses anonymous ones."""
        user = self.request.user
        assert user.is_authenticated
        return user

    def valid(self, serializer_class: type[serializers.Serializer], **kwargs: Any) -> dict:
        serializer = serializer_class(data=self.request.data,
                                      context={"request": self.request}, **kwargs)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def out(self, instance: Any, code: int = status.HTTP_200_OK, cls: Any = None) -> Response:
        serializer = (cls or self.get_serializer_class())(instance,
                                                           context=self.get_serializer_context())
        return Response(serializer.data, status=code)


ERROR = {
    "type": "object",
    "description": "`detail` says why the request was refused; for invalid input, each field "
                   "(or `non_field_errors`) maps to what is wrong with it.",
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": True,
}
ANSWERS = {
    "400": "invalid input: the body names each field (or query parameter) that is wrong",
    "403": "not signed in, or your role or holder may not do this (incl. a missing CSRF token)",
    "404": "no such object, or not one you may see",
    "405": "this method is not allowed here",
    "409": "the object's state does not allow this now",
    "413": "the request body is larger than the server accepts",
    "415": "the body's media type is not accepted here",
    "429": "too many requests: wait for the seconds in Retry-After",
    "503": "the database is unavailable: nothing was saved; retry after Retry-After seconds",
}


def document_errors(result: dict[str, Any], generator: Any, request: Any,
                    public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the error answers on every operation."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR
    for item in result.get("paths", {}).values():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            for code, description in ANSWERS.items():
                responses.setdefault(code, {
                    "description": description,
                    "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Error"}}}})
    return result
