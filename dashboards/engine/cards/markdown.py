"""Untrusted text in the Markdown cards. A source's name comes from its rights-holder and a
dataset's title from a researcher; in a table cell or a heading, a newline, `|`, `#`, `[...](...)`
or raw HTML (`<img onerror=...>`) would reshape the certified card. Names become one line of
inert text; the researchers' prose keeps its Markdown but loses raw HTML and script links."""

from __future__ import annotations

import html
import re
import unicodedata

# What makes Markdown structure inside a line: emphasis, code, links and images, table cells,
# strike-through, headings, and the backslash itself. (<, > and & are HTML-escaped first.)
_STRUCTURE = re.compile(r"([\\`*_\[\]|~#])")
_SCRIPT_SCHEME = re.compile(r"(?i)\b(javascript|vbscript|data)\s*:")


def _visible(text: str) -> str:
    return "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp")
                   or c in "\n\t")


def inline(text: object) -> str:
    """One line of literal text, safe in a paragraph, a table cell or a heading."""
    flat = " ".join(_visible(str(text)).split())
    return _STRUCTURE.sub(r"\\\1", html.escape(flat, quote=False))


def prose(text: str) -> str:
    """A researcher's Markdown with raw HTML escaped and no script link left (a destination
    with a space in it is no link)."""
    return _SCRIPT_SCHEME.sub(r"\1 :", html.escape(_visible(text), quote=False))


def fence(text: str) -> str:
    """A code fence longer than any run of backticks in `text`, so the text cannot close it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)
