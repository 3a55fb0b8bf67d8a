"""The OpenAPI schema documents the error answers too, so a client (and the fuzzer) can rely on
them: every error body is an object, `detail` for a general refusal, one entry per field for
invalid input."""

from __future__ import annotations

from typing import Any

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
