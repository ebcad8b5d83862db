"""OpenPose per-frame JSON (BODY_25, or the older COCO-18 model) -> PoseTrack.

OpenPose writes one "<name>_<frame number>_keypoints.json" per frame with
``people[i].pose_keypoints_2d`` = x, y, c for each body joint in pixels, and (0, 0, 0)
for a joint it did not detect. BODY_25 (75 values) maps by index with MidHip dropped
(skeleton.BODY25_TO_14); the COCO-18 model (54 values) already has our 14 joints first, in
our order, followed by eyes and ears.

One track per folder: with several people in a frame, the one with the largest summed
confidence over the 14 joints is kept (the most completely and surely detected body,
usually the dancer in the foreground). With ``follow=True`` the person nearest to the
previous frame's choice is kept instead when one is close enough, so a passer-by that is
momentarily better detected does not take over the track.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from momu_data.media import MediaError
from momu_data.pose.importers.common import OPENPOSE_FILE_RE, check_fps, make_track, map_clean
from momu_data.pose.track import PoseTrack
from momu_data.skeleton import BODY25_TO_14

COCO18_TO_14 = tuple(range(14))
_LAYOUTS = {75: ("BODY_25", 25, BODY25_TO_14), 54: ("COCO-18", 18, COCO18_TO_14)}

# follow=True keeps the previous person when its mean joint distance is below this
# fraction of the previous pose's bounding-box diagonal (a body moves far less per frame).
FOLLOW_MAX_DIST = 0.5


def _read_frame(path: Path, index: int) -> list[np.ndarray]:
    """The people of one frame as [values] float arrays (length 75 or 54)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MediaError(f"openpose: frame {index} ({path.name}) is not readable JSON: {e}") from None
    people = data.get("people") if isinstance(data, dict) else None
    if not isinstance(people, list):
        raise MediaError(f"openpose: frame {index} ({path.name}) has no 'people' list")
    out = []
    for i, p in enumerate(people):
        # "pose_keypoints" is the key of OpenPose before 1.2.
        kp = p.get("pose_keypoints_2d", p.get("pose_keypoints")) if isinstance(p, dict) else None
        if not isinstance(kp, list):
            raise MediaError(f"openpose: frame {index} person {i} has no pose_keypoints_2d list")
        if not kp:
            continue  # body estimation disabled (face/hand-only runs): no body for this person
        if len(kp) not in _LAYOUTS:
            raise MediaError(f"openpose: frame {index} has {len(kp)} values, expected 75 (BODY_25) or 54 (COCO-18)")
        try:
            out.append(np.asarray(kp, dtype=np.float64))
        except (TypeError, ValueError):
            raise MediaError(f"openpose: frame {index} person {i} has non-numeric keypoints") from None
    return out


def _choose(xy14: np.ndarray, c14: np.ndarray, prev: np.ndarray | None, follow: bool) -> int:
    """Index of the person to keep among [P, 14, 2] / [P, 14] candidates."""
    best = int(np.argmax(c14.sum(axis=-1)))
    if not follow or prev is None:
        return best
    # Mean distance over joints seen both now and in the previous choice; a candidate
    # sharing no joint with it cannot be compared (inf).
    d = np.linalg.norm(xy14 - prev[None], axis=-1)  # [P, 14], NaN where either is missing
    seen = np.isfinite(d)
    count = seen.sum(axis=-1)
    mean_d = np.where(count > 0, np.where(seen, d, 0.0).sum(axis=-1) / np.maximum(count, 1), np.inf)
    lo, hi = np.nanmin(prev, axis=0), np.nanmax(prev, axis=0)
    diag = float(np.linalg.norm(hi - lo))
    near = int(np.argmin(mean_d))
    return near if mean_d[near] <= FOLLOW_MAX_DIST * max(diag, 1.0) else best


def load_openpose(
    folder,
    fps: float,
    width: int | None = None,
    height: int | None = None,
    *,
    start_index: int = 0,
    num_frames: int | None = None,
    follow: bool = False,
) -> list[PoseTrack]:
    """Load a folder of OpenPose ``*_keypoints.json`` files as one PoseTrack.

    Frames are ordered by the trailing number in the file name (numerically, so unpadded
    names sort right). The track covers frame numbers start_index .. last file (or
    start_index + num_frames - 1); numbers without a file, and frames with nobody, are
    frames without a person. times = (frame number - start_index) / fps, so with the
    default start_index 0 a frame's time is its index in the video divided by fps.
    """
    fps = check_fps(fps)
    folder = Path(folder)
    if not folder.is_dir():
        raise MediaError(f"openpose: not a folder: {folder}")
    files: dict[int, Path] = {}
    for f in folder.iterdir():
        m = OPENPOSE_FILE_RE.search(f.name)
        if not m or not f.is_file():
            continue
        idx = int(m.group(1))
        if idx in files:  # e.g. the output of two videos in one folder
            raise MediaError(f"openpose: frame {idx} appears twice ({files[idx].name}, {f.name})")
        files[idx] = f
    if not files:
        raise MediaError("openpose: no keypoints found (no *_keypoints.json files)")
    first, last = min(files), max(files)
    if first < start_index:
        raise MediaError(f"openpose: frame {first} is before start_index {start_index}")
    n = last - start_index + 1
    if num_frames is not None:
        if last >= start_index + num_frames:
            raise MediaError(f"openpose: frame {last} is beyond num_frames={num_frames}")
        n = int(num_frames)

    layout = None
    raw_xy = np.full((n, 25, 2), np.nan, dtype=np.float32)
    raw_c = np.zeros((n, 25), dtype=np.float32)
    prev = None
    multi = 0
    for idx in sorted(files):
        people = _read_frame(files[idx], idx)
        if not people:
            continue
        lengths = {len(p) for p in people}
        if layout is None:
            layout = len(people[0])
        if lengths != {layout}:
            raise MediaError(f"openpose: frame {idx} mixes body models ({sorted(lengths | {layout})} values)")
        _, joints, mapping = _LAYOUTS[layout]
        kp = np.stack(people).reshape(len(people), joints, 3)
        xy14, c14 = map_clean(kp[..., :2], kp[..., 2], mapping)
        valid = (c14 > 0).any(axis=-1)
        if not valid.any():
            continue
        multi += int(valid.sum() > 1)
        k = _choose(xy14, c14, prev, follow)
        prev = xy14[k]
        raw_xy[idx - start_index, :joints] = kp[k, :, :2]
        raw_c[idx - start_index, :joints] = kp[k, :, 2]

    if layout is None:
        raise MediaError(f"openpose: no keypoints found (no person in {len(files)} frames)")
    name, joints, mapping = _LAYOUTS[layout]
    track = make_track(
        raw_xy[:, :joints],
        raw_c[:, :joints],
        mapping,
        np.arange(n) / fps,
        width=width,
        height=height,
        source="openpose",
        meta={"format": name, "start_index": start_index, "files": len(files), "multi_person_frames": multi},
        require="openpose",
    )
    return [track]
