"""Importers for keypoints that users already have (OpenPose, AlphaPose/COCO, AIST++, and
the Dance with Melody 3D motion capture, projected to 2D).

Each importer returns ``list[PoseTrack]`` (one per person-view) in the paper's 14-joint
layout: raw pixel coordinates, NaN xy and confidence 0 where a joint or the whole person
is missing, a per-frame person mask and times in seconds, exactly as the video pose
extractor delivers them, so cleaning and resampling downstream need no special case.

This module dispatches by source; the loaders live in one module per source and share the
helpers of ``common``.
"""

from __future__ import annotations

import os
from pathlib import Path

from momu_data.media import MediaError
from momu_data.pose.importers.aistpp import load_aistpp
from momu_data.pose.importers.coco import load_coco
from momu_data.pose.importers.common import OPENPOSE_FILE_RE
from momu_data.pose.importers.dance_with_melody import find_dances, load_dance_with_melody
from momu_data.pose.importers.openpose import load_openpose
from momu_data.pose.track import PoseTrack

# MediaError is re-exported: it is what callers catch for unusable keypoint files.
__all__ = ["SOURCES", "MediaError", "find_keypoint_items", "load_keypoints"]

SOURCES = ("openpose", "coco", "aistpp", "dance_with_melody")


def load_keypoints(source: str, path, **kw) -> list[PoseTrack]:
    """Load keypoints of one item with the importer for ``source`` (see SOURCES).

    openpose: path is a folder of per-frame JSON files, kw as ``load_openpose`` (fps
    required); coco: path is a results JSON, kw as ``load_coco`` (fps required);
    aistpp: path is a keypoints2d pickle, kw as ``load_aistpp``; dance_with_melody: path
    is a dance folder (skeletons.json, config.json, audio.mp3), kw as ``load_dance_with_melody``.
    """
    if source == "openpose":
        return load_openpose(path, **kw)
    if source == "coco":
        return load_coco(path, **kw)
    if source == "aistpp":
        return load_aistpp(path, **kw)
    if source == "dance_with_melody":
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
