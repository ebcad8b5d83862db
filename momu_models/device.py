"""Which torch device a command runs on."""

from __future__ import annotations

import torch


def resolve_device(device: str) -> str:
    """ "auto" -> cuda when torch sees a GPU, else cpu; a named device is checked."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but torch sees no CUDA device")
    return device
