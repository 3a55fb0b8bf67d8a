"""The byte-level BPE tokenizer Trailmark trains, and token blocks cut from texts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from provenance.engine.lm.layout import EOS, PAD
from provenance.engine.lm_config import TrainConfig
from provenance.engine.watermark import ALPHABET


def special_tokens(config: TrainConfig) -> list[str]:
    return [*config.extra_special_tokens, *(ALPHABET if config.watermarks else ())]


def train_tokenizer(texts: Sequence[str], config: TrainConfig, out_dir: Path) -> Any:
    """A byte-level BPE tokenizer, saved in transformers' format in out_dir."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    specials = [EOS, PAD, *special_tokens(config)]
    bpe.train_from_iterator(texts, vocab_size=config.vocab_size, min_frequency=2,
                            special_tokens=specials, show_progress=False)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS, bos_token=EOS,
                                        unk_token=EOS, pad_token=PAD)
    if special_tokens(config):
        tokenizer.add_special_tokens({"additional_special_tokens": special_tokens(config)})
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    return tokenizer


def windows(ids: Sequence[Any], width: int) -> list[list[Any]]:
    """A token sequence cut into rows of at most `width` tokens that overlap by one token: a
    row's first token is the previous row's last, context only, so every token after the
    first is a target exactly once. A sequence that fits is one row."""
    if len(ids) <= width:
        return [list(ids)]
    return [list(ids[start:start + width]) for start in range(0, len(ids) - 1, width - 1)]


def token_blocks(tokenizer: Any, texts: Sequence[str], seq_len: int,
                 pack: bool = True) -> torch.Tensor:
    """(n, seq_len + 1) rows: a row's first seq_len tokens are the model's input and its last
    seq_len the targets (one shift). Packed: the texts concatenated, each followed by EOS, cut
    into blocks that overlap by one token, so that every token but the very first is a target
    exactly once (the tail padded with PAD, which the loss skips). Unpacked: each text read
    from a fresh start (EOS) in rows of its own, as many as it needs (`windows`: a long text
    is never cut short), right-padded with PAD."""
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    width = seq_len + 1
    encodings = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    if not pack:
        reads = [row for encoding in encodings for row in windows([eos, *encoding, eos], width)]
        rows = torch.full((max(1, len(reads)), width), pad, dtype=torch.long)
        for n, read in enumerate(reads):
            rows[n, :len(read)] = torch.tensor(read)
        return rows
    ids: list[int] = []
    for encoding in encodings:
        ids.extend(encoding)
        ids.append(eos)
    n = max(1, math.ceil((len(ids) - 1) / seq_len))
    ids = (ids + [pad] * width)[: n * seq_len + 1]
    return torch.tensor(ids, dtype=torch.long).unfold(0, width, seq_len).contiguous()
