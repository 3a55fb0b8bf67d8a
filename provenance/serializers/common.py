"""What the serializers share: one-line text fields and ids the requester may see."""

from __future__ import annotations

import unicodedata
from typing import Any

from rest_framework import serializers


def one_line(value: str) -> None:
    """Names and titles are one line of text: they go into Markdown tables and headings, HTML
    and the cards, where a newline, a tab or an invisible control character reshapes the
    document. (The renderers escape Markdown and HTML as well.)"""
    bad = next((c for c in value if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")), None)
    if bad is not None:
        raise serializers.ValidationError(
            f"control or format character U+{ord(bad):04X} at position {value.index(bad) + 1}: "
            "a name is one line of visible text")


def requester(serializer: serializers.Field) -> Any:
    request = serializer.context.get("request")
    return getattr(request, "user", None)


class VisibleId(serializers.PrimaryKeyRelatedField):
    """The id of an object the asker can see (`selector(user)`): an id that is not theirs is
    answered exactly like one that does not exist ("Invalid pk"), so that a create endpoint
    does not tell whether another holder's object exists."""

    def __init__(self, selector: Any, **kwargs: Any) -> None:
        self.selector = selector
        super().__init__(**kwargs)

    def get_queryset(self) -> Any:
        user = requester(self)
        return super().get_queryset() if user is None else self.selector(user)
