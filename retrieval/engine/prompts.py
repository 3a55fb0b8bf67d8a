"""The prompt an answer is generated from: passages (or demonstrations), then the question.
Passages are cut to share the checkpoint's context fairly, so that every ablation of them fits.
No torch: the tokenizer is any Hugging Face tokenizer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

LABELS = {"passages": "Passage", "demonstrations": "Example"}


def prompt(question: str, texts: Sequence[str], mode: str = "passages") -> str:
    """Each kept text on its own paragraph, labelled, then the question and "Answer:". An
    ablation passes the kept texts only: the others leave no trace in the prompt."""
    label = LABELS[mode]
    parts = [f"{label}: {text}" for text in texts]
    return "\n\n".join([*parts, f"Question: {question}\nAnswer:"])


def fit(tokenizer: Any, question: str, texts: Sequence[str], mode: str, context: int,
        new_tokens: int) -> tuple[list[str], list[bool], int]:
    """The texts cut to fit, one equal share of the room each: `context` tokens less the
    answer's `new_tokens` and the prompt without passages. Returns the texts, which were cut,
    and how many new tokens are left for the answer (fewer when the question alone is long)."""
    bare = len(tokenizer(prompt(question, [], mode), add_special_tokens=False)["input_ids"])
    new_tokens = max(1, min(new_tokens, context - bare - 1))
    label = len(tokenizer(f"{LABELS[mode]}: \n\n", add_special_tokens=False)["input_ids"])
    room = context - new_tokens - bare
    each = room // len(texts) - label if texts else 0
    out, cut = [], []
    for text in texts:
        fast = bool(getattr(tokenizer, "is_fast", False))
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=fast)
        ids = encoded["input_ids"]
        if len(ids) <= each:
            out.append(text)
            cut.append(False)
            continue
        if each <= 0:
            out.append("")
        else:  # the text itself, cut where its token `each` ends, back to a word's end
            piece = text[:encoded["offset_mapping"][each - 1][1]] if fast else \
                tokenizer.decode(ids[:each])
            whole = piece[-1:].isspace() or text[len(piece):][:1].isspace()
            words = piece.rsplit(None, 1)
            out.append(piece.rstrip() if whole or len(words) < 2 else words[0])
        cut.append(True)
    return out, cut, new_tokens
