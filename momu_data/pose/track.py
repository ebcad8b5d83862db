"""PoseTrack: 2D keypoints of one person over time, as every pose source delivers them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class PoseTrack:
    """Raw keypoints on the source's own clock, before cleaning and resampling.

    xy: [N, 14, 2] float32 pixel coordinates (x right, y down), NaN where not detected.
    conf: [N, 14] float32 per-joint confidence in [0, 1] (0 where not detected).
    times: [N] float64 seconds, strictly increasing.
    person: [N] bool, a person was detected in the frame.
    width, height: frame size in pixels (None when the source does not say).
    """

    xy: np.ndarray
    conf: np.ndarray
    times: np.ndarray
    person: np.ndarray
    width: int | None = None
    height: int | None = None
    source: str = "mediapipe"
    view: str = ""  # camera / view name for multi-view sources (AIST++)
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.times)
        if self.xy.shape != (n, 14, 2) or self.conf.shape != (n, 14) or self.person.shape != (n,):
            raise ValueError(
                f"PoseTrack shapes disagree: xy {self.xy.shape}, conf {self.conf.shape}, "
                f"person {self.person.shape}, times ({n},)"
            )
        if n > 1 and not np.all(np.diff(self.times) > 0):
            raise ValueError("PoseTrack times must be strictly increasing")

    def __len__(self) -> int:
        return len(self.times)
