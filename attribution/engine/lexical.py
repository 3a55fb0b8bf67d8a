"""BM25 over a version's documents: the cheap lexical baseline every attribution report shows
beside influence and spans, so that an auditor sees when influence says something word overlap
does not. bm25s (Lucene's BM25 variant, k1 = 1.5, b = 0.75), words of two or more letters,
lower-cased, English stop words dropped, no stemming. numpy only: no torch, no Django."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

IDS = "document_ids.npy"
META = "trailmark.json"
FORMAT = 1


def bm25_tokens(texts: Sequence[str]) -> list[list[str]]:
    """The words BM25 indexes and queries (bm25s's tokenizer, English stop words out)."""
    import bm25s

    return bm25s.tokenize(list(texts), stopwords="en", return_ids=False,  # type: ignore[return-value]
                          show_progress=False)


@dataclass
class Lexical:
    retriever: Any
    ids: np.ndarray  # (n,) document ids, in index order

    @classmethod
    def build(cls, texts: Sequence[str], ids: Sequence[int]) -> Lexical:
        import bm25s

        if len(texts) != len(ids):
            raise ValueError("one id per text")
        retriever = bm25s.BM25()
        retriever.index(bm25_tokens(texts) if texts else [[""]], show_progress=False)
        return cls(retriever, np.asarray(ids, dtype=np.int64))

    def save(self, folder: Path) -> None:
        """Written under a temporary name, then renamed: a killed writer leaves no half index
        (a concurrent writer of the same index loses the rename and keeps the other's)."""
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        self.retriever.save(str(tmp), show_progress=False)
        np.save(tmp / IDS, self.ids)
        (tmp / META).write_text(json.dumps({"format": FORMAT, "documents": len(self.ids)}))
        try:
            tmp.rename(folder)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def open(cls, folder: Path) -> Lexical | None:
        """The index saved in folder, or None if there is none (or of another format)."""
        import bm25s

        try:
            meta = json.loads((folder / META).read_text())
        except (OSError, ValueError):
            return None
        if meta.get("format") != FORMAT:
            return None
        return cls(bm25s.BM25.load(str(folder), show_progress=False), np.load(folder / IDS))

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """(document id, BM25 score) of the k best documents with a score above 0."""
        tokens = bm25_tokens([query])
        if not len(self.ids) or not tokens[0]:
            return []
        found, scores = self.retriever.retrieve(tokens, k=min(k, len(self.ids)),
                                                show_progress=False)
        return [(int(self.ids[i]), float(s)) for i, s in zip(found[0], scores[0], strict=True)
                if s > 0]
