"""Helpers shared by the keypoint importers: argument checks, file-name numbers, and the
conversion of source-layout keypoints into a 14-joint PoseTrack with one notion of a
missing joint (NaN xy and confidence 0 together): not scored, not finite, or out of range
(outside the frame, or far outside the track's own extent without one: interpolate.out_of_range)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from momu_data.media import MediaError
from momu_data.pose.interpolate import out_of_range
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


def make_track(
    raw_xy, raw_conf, mapping, times, *, width=None, height=None, meta=None, require: str = "", **kw
) -> PoseTrack:
    """A PoseTrack from source-layout arrays [N, S, 2] / [N, S] (frames without a person
    carry confidence 0 everywhere). Joints out of range (interpolate.out_of_range: outside
    the width x height frame, or far outside the track's own extent when the frame size is
    unknown) are missing like undetected ones; meta["out_of_range"] counts them. The person
    mask is "at least one of the 14 joints detected", so a detection of only feet or face
    counts as no person. require: the source's name, to raise a MediaError saying why when
    no frame has a person."""
    xy14, c14 = map_clean(raw_xy, raw_conf, mapping)
    far = out_of_range(xy14, width, height) & (c14 > 0)
    xy14[far] = np.nan
    c14[far] = 0.0
    person = (c14 > 0).any(axis=-1)
    if require and not person.any():
        reason = why_empty(raw_xy, raw_conf, int(far.sum()), width, height)
        raise MediaError(f"{require}: no keypoints found ({reason})")
    meta = {**(meta or {}), "out_of_range": int(far.sum())}
    return PoseTrack(
        xy=xy14,
        conf=c14,
        times=np.asarray(times, dtype=np.float64),
        person=person,
        width=width,
        height=height,
        meta=meta,
        **kw,
    )


def why_empty(raw_xy, raw_conf, far: int, width=None, height=None) -> str:
    """Why no joint of a track is usable, from its source-layout arrays and the number of
    joints found out of range: the reason a user can check in the file."""
    xy = np.asarray(raw_xy, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        scored = np.asarray(raw_conf, dtype=np.float64) > 0
    if not scored.any():
        return "all keypoint scores are 0"
    n = int(scored.sum())
    nonfinite = int((scored & ~np.isfinite(xy).all(axis=-1)).sum())
    where = f"the {width}x{height} frame" if width and height else "the track's own extent (interpolate.out_of_range)"
    parts = [f"{nonfinite} of {n} scored keypoints have NaN or infinite coordinates"] if nonfinite else []
    if far:
        parts.append(f"{far} body joints lie outside {where}")
    if nonfinite == n:
        parts = [f"all {n} scored keypoints have NaN or infinite coordinates"]
    return "; ".join(parts) or "no body joint is scored"
