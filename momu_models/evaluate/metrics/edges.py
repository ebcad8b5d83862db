"""Does generated motion move at its edges and window seams as it moves elsewhere?

A diagnostic for boundary effects (issue 12: zero-padded VAE convolutions once moved the first
and last frames of every generated dance ~10x faster than the body): the mean joint speed of
the first and last 0.1 s, and of the 0.1 s around given seam frames, as a multiple of the
median speed. Over several samples, `speed_profile` averages each sample's speed divided by its
own median: content averages out, an effect at the same frames in every sample stays.
"""

from __future__ import annotations

import numpy as np

EDGE_WINDOW = 6  # frames: 0.1 s at 62.5 frames/s


def joint_speed(pose: np.ndarray) -> np.ndarray:
    """Mean joint speed per frame step [T - 1] (pose units per frame) of a pose [T, J, 2]."""
    return np.linalg.norm(np.diff(np.asarray(pose, dtype=np.float64), axis=0), axis=-1).mean(axis=-1)


def speed_profile(poses) -> np.ndarray:
    """Each pose sequence's joint speed divided by its own median, averaged over sequences."""
    return np.mean([joint_speed(p) / np.median(joint_speed(p)) for p in poses], axis=0)


def edge_speed_ratios(speed: np.ndarray, seams=(), window: int = EDGE_WINDOW) -> dict:
    """{"first", "last", "seam@<frame>"...}: mean speed over the first / last `window` frames
    and the `window` frames centred on each seam, over the median speed (1.0: like the rest)."""
    speed = np.asarray(speed, dtype=np.float64)
    med = float(np.median(speed))
    out = {"first": speed[:window].mean() / med, "last": speed[-window:].mean() / med}
    for b in seams:
        out[f"seam@{b}"] = speed[max(0, b - window // 2) : b + window // 2].mean() / med
    return {k: float(v) for k, v in out.items()}
