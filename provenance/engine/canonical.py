"""Canonical JSON (RFC 8785, JCS) and the hashes taken over it."""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785


def canonical_json(value: Any) -> bytes:
    return rfc8785.dumps(value)


def canonical_hash(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


# JSON that Trailmark accepts is nested at most this deep: every document it takes (takedown
# works, recipes, options, records) needs a handful of levels, and deeper input only serves to
# exhaust the recursion of the parser, the canonicaliser or the serializers after it.
MAX_JSON_DEPTH = 32


def json_depth(value: Any) -> int:
    """Nesting depth of parsed JSON (a scalar is 0, [] and {} are 1), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in item)
    return deepest


def json_has_nul(value: Any) -> bool:
    """Whether a string or key anywhere in parsed JSON holds U+0000, which PostgreSQL stores in
    neither text nor jsonb."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
