"""What every part agrees on: the special tokens, the files in a model folder, the device."""

from __future__ import annotations

import os

import torch

# Nothing here reaches for a hub, and no tokenizer thread pool fights the workers' processes.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

EOS = "<|endoftext|>"
WATERMARK_HEADS = "watermark_heads.pt"
SNAPSHOTS = "snapshots"
PAD = "<|pad|>"


def device_for(prefer: str | None = None) -> torch.device:
    if prefer:
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
