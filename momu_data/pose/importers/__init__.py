"""Importers for keypoints that users already have (OpenPose, AlphaPose/COCO, AIST++, and
the Dance with Melody 3D motion capture, projected to 2D).

Each importer returns ``list[PoseTrack]`` (one per person-view) in the paper's 14-joint
layout: raw pixel coordinates, NaN xy and confidence 0 where a joint or the whole person
is missing, a per-frame person mask and times in seconds, exactly as the video pose
extractor delivers them, so cleaning and resampling downstream need no special case.

The loaders are imported lazily by ``load_keypoints`` so that the shared helpers below can
be imported by the loader modules without a circular import.
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np

from momu_data.skeleton import map_keypoints
from momu_data.pose.track import PoseTrack
from momu_data.media import MediaError

# MediaError is re-exported: it is what callers catch for unusable keypoint files.
__all__ = ["SOURCES", "MediaError", "find_keypoint_items", "load_keypoints"]

SOURCES = ("openpose", "coco", "aistpp", "dance_with_melody")

# A per-frame OpenPose file: "<anything><number>_keypoints.json".
OPENPOSE_FILE_RE = re.compile(r"(\d+)_keypoints\.json$")


def load_keypoints(source: str, path, **kw) -> list[PoseTrack]:
    """Load keypoints of one item with the importer for ``source`` (see SOURCES).

    openpose: path is a folder of per-frame JSON files, kw as ``load_openpose`` (fps
    required); coco: path is a results JSON, kw as ``load_coco`` (fps required);
    aistpp: path is a keypoints2d pickle, kw as ``load_aistpp``; dance_with_melody: path
    is a dance folder (skeletons.json, config.json, audio.mp3), kw as ``load_dance_with_melody``.
    """
    if source == "openpose":
        from momu_data.pose.importers.openpose import load_openpose

        return load_openpose(path, **kw)
    if source == "coco":
        from momu_data.pose.importers.coco import load_coco

        return load_coco(path, **kw)
    if source == "aistpp":
        from momu_data.pose.importers.aistpp import load_aistpp

        return load_aistpp(path, **kw)
    if source == "dance_with_melody":
        from momu_data.pose.importers.dance_with_melody import load_dance_with_melody

        return load_dance_with_melody(path, **kw)
    raise ValueError(f"unknown keypoint source {source!r}; expected one of {', '.join(SOURCES)}")


def find_keypoint_items(source: str, paths) -> list[Path]:
    """Expand files and folders into the items ``load_keypoints(source, item)`` accepts.

    openpose: every folder (searched recursively) that directly contains *_keypoints.json
    files, one item per folder (= one video); coco: *.json files (OpenPose per-frame files
    excluded); aistpp: *.pkl files; dance_with_melody: folders holding skeletons.json and
    config.json. Returns sorted, de-duplicated absolute paths.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown keypoint source {source!r}; expected one of {', '.join(SOURCES)}")
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if source == "dance_with_melody":
        from momu_data.pose.importers.dance_with_melody import find_dances

        return find_dances(paths)
    found: set[Path] = set()
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"no such file or folder: {p}")
        if source == "openpose":
            if p.is_dir():
                found.update(f.parent.resolve() for f in p.rglob("*_keypoints.json") if f.is_file())
            elif OPENPOSE_FILE_RE.search(p.name):
                found.add(p.resolve().parent)
            else:
                raise ValueError(f"openpose: {p} is neither a folder nor a *_keypoints.json file")
            continue
        suffix = ".json" if source == "coco" else ".pkl"
        files = sorted(p.rglob("*")) if p.is_dir() else [p]
        for f in files:
            if not f.is_file() or f.suffix.lower() != suffix:
                if not p.is_dir():
                    raise ValueError(f"{source}: {p} is not a {suffix} file")
                continue
            if source == "coco" and OPENPOSE_FILE_RE.search(f.name):
                continue  # per-frame OpenPose output living beside the results, not COCO
            found.add(f.resolve())
    return sorted(found)


# ---------------------------------------------------------------------------------------
# Helpers shared by the loaders.

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
