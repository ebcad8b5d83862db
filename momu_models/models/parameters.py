"""Model sizes, shared by the models' tests, the benchmarks and the docs' tables."""

from __future__ import annotations

import torch.nn as nn


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (works on meta-device models too)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
