"""JSON bodies with a depth limit: DRF's parser let a deeply nested body raise RecursionError
(a 500, even anonymously on the token endpoint); here it is a 400 that names the limit. A NUL
character in any string is a 400 too: PostgreSQL stores it in neither text nor jsonb."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from provenance.engine.canonical import MAX_JSON_DEPTH, json_depth, json_has_nul

TOO_DEEP = f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels (the limit)"


class BoundedJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None,
              parser_context: Mapping[str, Any] | None = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(TOO_DEEP) from None
        if json_depth(data) > MAX_JSON_DEPTH:
            raise ParseError(TOO_DEEP)
        if json_has_nul(data):  # would reach PostgreSQL as an error (a 500) in text or jsonb
            raise ParseError("JSON parse error - a string holds U+0000 (NUL), which is not "
                             "accepted anywhere")
        return data
