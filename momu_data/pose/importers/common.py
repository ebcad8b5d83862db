"""Helpers shared by the keypoint importers: argument checks, file-name numbers, and the
conversion of source-layout keypoints into a 14-joint PoseTrack with one notion of a
missing joint (NaN xy and confidence 0 together)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from momu_data.pose.track import PoseTrack
from momu_data.skeleton import map_keypoints

# A per-frame OpenPose file: "<anything><number>_keypoints.json".
OPENPOSE_FILE_RE = re.compile(r"(\d+)_keypoints\.json$")


def check_fps(fps) -> float:
    """fps as a positive finite float, or a ValueError (a caller mistake, not bad media)."""
    try:
        f = float(fps)
    except (TypeError, ValueError):
        raise ValueError(f"fps must be a positive number, got {fps!r}") from None
    if not (math.isfinite(f) and f > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    return f


def trailing_number(text: str) -> int | None:
    """The last run of digits in a file name's stem ("frame_000012.png" -> 12), or None."""
    stem = Path(str(text)).name
    stem = re.sub(r"\.[A-Za-z][A-Za-z0-9]*$", "", stem)  # one extension, never digits-only
    m = re.search(r"(\d+)\D*$", stem)
    return int(m.group(1)) if m else None


def clean_raw(xy, conf) -> tuple[np.ndarray, np.ndarray]:
    """Source-layout [..., S, 2] / [..., S] with missing joints as NaN xy and confidence 0.

    A joint is missing when its confidence is not > 0 (OpenPose and COCO write (0, 0, 0)
    for undetected joints) or its coordinates are not finite. Confidences are clipped to
    [0, 1]: some detectors return heat-map peaks slightly above 1 (AIST++ reaches 1.02).
    """
    xy = np.array(xy, dtype=np.float32)
    conf = np.array(conf, dtype=np.float32)
    bad = ~(conf > 0) | ~np.isfinite(xy).all(axis=-1)
    conf[bad] = 0.0
    xy[bad] = np.nan
    return xy, np.clip(conf, 0.0, 1.0)


def map_clean(xy, conf, mapping) -> tuple[np.ndarray, np.ndarray]:
    """clean_raw, then map to the 14 joints with missing joints kept consistent.

    map_keypoints gives a composite joint (the neck from two shoulders) NaN xy when a part
    is missing and the minimum confidence, i.e. 0; both are re-asserted here so that
    "missing" always means NaN xy and confidence 0 together.
    """
    xy, conf = clean_raw(xy, conf)
    xy14, c14 = map_keypoints(xy, conf, mapping)
    missing = ~(c14 > 0) | np.isnan(xy14).any(axis=-1)
    xy14[missing] = np.nan
    c14[missing] = 0.0
    return xy14, c14


def make_track(raw_xy, raw_conf, mapping, times, **kw) -> PoseTrack:
    """A PoseTrack from source-layout arrays [N, S, 2] / [N, S] (frames without a person
    carry confidence 0 everywhere). The person mask is "at least one of the 14 joints
    detected", so a detection of only feet or face counts as no person."""
    xy14, c14 = map_clean(raw_xy, raw_conf, mapping)
    person = (c14 > 0).any(axis=-1)
    return PoseTrack(xy=xy14, conf=c14, times=np.asarray(times, dtype=np.float64), person=person, **kw)
