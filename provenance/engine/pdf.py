"""Plain-text PDF documents (fpdf2, pure Python) for reports people file and print: one page
after another of paragraphs in Helvetica."""

from __future__ import annotations

from typing import Any

from fpdf import FPDF


def latin1(value: Any) -> str:
    """The core PDF fonts cover Latin-1 only; anything else is shown as "?" rather than
    failing."""
    return str(value).encode("latin-1", "replace").decode("latin-1")


class TextDocument(FPDF):
    """A document opened on its first page; `paragraph` writes one, `spacing` mm apart."""

    def __init__(self, spacing: float = 0.0) -> None:
        super().__init__()
        self.spacing = spacing
        self.set_auto_page_break(auto=True, margin=15)
        self.add_page()

    def paragraph(self, text: str, size: int = 10, bold: bool = False) -> None:
        self.set_font("Helvetica", "B" if bold else "", size)
        self.multi_cell(self.w - self.l_margin - self.r_margin, size * 0.5, latin1(text))
        if self.spacing:
            self.ln(self.spacing)
