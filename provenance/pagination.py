"""The API's pages. Its own module: DRF imports it from the settings, before any view."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request


class Pages(LimitOffsetPagination):
    """limit/offset pages that refuse a value they cannot use instead of ignoring it."""

    max_limit = 1000

    @staticmethod
    def _integer(request: Request, name: str, low: int, high: int | None) -> int | None:
        raw = request.query_params.get(name)
        if raw is None:
            return None
        try:
            value = int(raw)
        except ValueError:
            value = low - 1
        if value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
            raise ValidationError({name: f"must be an integer {bound}, not {raw!r}"})
        return value

    def get_limit(self, request: Request) -> int | None:
        limit = self._integer(request, self.limit_query_param, 1, self.max_limit)
        return self.default_limit if limit is None else limit

    def get_offset(self, request: Request) -> int:
        return self._integer(request, self.offset_query_param, 0, None) or 0

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            bounds = ({"minimum": 1, "maximum": self.max_limit}
                      if parameter["name"] == self.limit_query_param else {"minimum": 0})
            parameter["schema"] = {**parameter["schema"], **bounds}
        return parameters
