"""The API's pages. Its own module: DRF imports it from the settings, before any view."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter
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

    OTHER_STYLES = ("page_size", "page", "per_page", "cursor")

    def get_limit(self, request: Request) -> int | None:
        other = [name for name in self.OTHER_STYLES if name in request.query_params]
        if other:  # another API's paging, which would otherwise be ignored without a word
            raise ValidationError({other[0]: f"not a parameter here: pages are chosen with "
                                              f"{self.limit_query_param} (at most "
                                              f"{self.max_limit}) and {self.offset_query_param}"})
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


class Ordering(OrderingFilter):
    """`?ordering=` over the fields a view allows (`ordering_fields`), by default its id and
    timestamps: DRF's default, every serializer field, let a client order by a many-to-many
    field (every row repeated once per related row, across pages). The primary key always
    breaks ties, so pages never overlap or skip rows."""

    DEFAULT = ("id", "created_at", "updated_at")

    def get_default_valid_fields(self, queryset: Any, view: Any,
                                 context: Mapping[str, Any] | None = None
                                 ) -> list[tuple[str, str]]:
        concrete = {f.name for f in queryset.model._meta.concrete_fields}
        return [(name, name) for name in self.DEFAULT if name in concrete]

    def remove_invalid_fields(self, queryset: Any, fields: Iterable[str], view: Any,
                              request: Request) -> list[str]:
        valid = [name for name, _ in self.get_valid_fields(queryset, view,
                                                           {"request": request})]
        asked = [f for f in fields if f]
        unknown = [f for f in asked if f.lstrip("-") not in valid]
        if unknown:
            raise ValidationError({self.ordering_param: f"cannot order by {', '.join(unknown)}; "
                                                        f"one of {', '.join(valid)}, or - "
                                                        f"before one for descending"})
        return asked

    def get_ordering(self, request: Request, queryset: Any, view: Any) -> Any:
        ordering = super().get_ordering(request, queryset, view)
        if ordering and not {"pk", "-pk", "id", "-id"} & set(ordering):
            ordering = [*ordering, "pk"]
        return ordering
