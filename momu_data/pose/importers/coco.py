"""AlphaPose-style COCO keypoint results JSON -> PoseTrack.

The results format is a list of detections {"image_id", "keypoints": [x, y, score] * K,
"score", optional "category_id" / "idx" / "box"}, as AlphaPose (and COCO result files)
write it. image_id is the frame: an int, or an image name whose last number is the frame
("12.jpg", "frame_000012.png"). Images without a detection have no entry at all.

K = 17 is COCO-17. Halpe-26, Halpe-136 and COCO-WholeBody-133 results start with the same
17 body joints in the same order, so their first 17 joints are used as COCO-17.

One track per file: with several detections in an image, the one with the highest
detection "score" is kept (AlphaPose's person score; the mean keypoint score when an
entry has none).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from momu_data.media import MediaError
from momu_data.pose.importers.common import check_fps, make_track, trailing_number
from momu_data.pose.track import PoseTrack
from momu_data.skeleton import COCO17_TO_14

_KEYPOINT_COUNTS = (17, 26, 133, 136)  # COCO-17, Halpe-26, COCO-WholeBody, Halpe-136


def image_index(image_id) -> int | None:
    """The frame number of an image_id (int, "12.jpg", "frame_000012.png"), or None."""
    if isinstance(image_id, bool):
        return None
    if isinstance(image_id, int):
        return image_id
    if isinstance(image_id, float) and math.isfinite(image_id) and image_id == int(image_id):
        return int(image_id)
    if isinstance(image_id, str):
        return trailing_number(image_id)
    return None


def _entry_keypoints(e: dict, i: int) -> np.ndarray:
    kp = e.get("keypoints")
    where = f"entry {i} (image {e.get('image_id')!r})"
    if not isinstance(kp, list):
        raise MediaError(f"coco: {where} has no keypoints list")
    if len(kp) % 3 or len(kp) // 3 not in _KEYPOINT_COUNTS:
        raise MediaError(f"coco: {where} has {len(kp)} values, expected 51 (COCO-17)")
    try:
        arr = np.asarray(kp, dtype=np.float64).reshape(-1, 3)
    except (TypeError, ValueError):
        raise MediaError(f"coco: {where} has non-numeric keypoints") from None
    return arr[:17]


def _score(e: dict, kp: np.ndarray) -> float:
    s = e.get("score")
    if isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s):
        return float(s)
    c = kp[:, 2]
    c = c[np.isfinite(c)]
    return float(c.mean()) if c.size else -math.inf


def load_coco(
    path,
    fps: float,
    width: int | None = None,
    height: int | None = None,
    num_frames: int | None = None,
    *,
    start_index: int = 0,
) -> list[PoseTrack]:
    """Load an AlphaPose/COCO results JSON of one video as one PoseTrack.

    The track covers frame numbers start_index .. the last image with an entry, or
    num_frames frames when given (images past the last entry are frames without a
    person; an entry beyond num_frames is an error). times = (frame - start_index) / fps.
    start_index is the number of the video's first frame in the image names (1 for
    frames extracted by ffmpeg's default "%06d.png" numbering).
    """
    fps = check_fps(fps)
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MediaError(f"coco: {path.name} is not readable JSON: {e}") from None
    if isinstance(data, dict) and "annotations" in data:
        # Ground-truth COCO files index images by database id, not by frame number.
        raise MediaError("coco: a COCO annotation file (images/annotations), expected a results list")
    if not isinstance(data, list):
        raise MediaError(f"coco: expected a list of detections, got {type(data).__name__}")

    best: dict[int, tuple[float, np.ndarray]] = {}
    counts: dict[int, int] = {}
    for i, e in enumerate(data):
        if not isinstance(e, dict):
            raise MediaError(f"coco: entry {i} is not an object")
        if e.get("category_id", 1) != 1:
            continue  # not a person
        idx = image_index(e.get("image_id"))
        if idx is None:
            raise MediaError(f"coco: entry {i} has an image_id without a frame number: {e.get('image_id')!r}")
        if idx < start_index:
            raise MediaError(f"coco: image {idx} is before start_index {start_index}")
        kp = _entry_keypoints(e, i)
        s = _score(e, kp)
        counts[idx] = counts.get(idx, 0) + 1
        if idx not in best or s > best[idx][0]:
            best[idx] = (s, kp)
    if not best:
        raise MediaError("coco: no keypoints found (no person detections)")

    last = max(best)
    n = last - start_index + 1
    if num_frames is not None:
        if last >= start_index + num_frames:
            raise MediaError(f"coco: image {last} is beyond num_frames={num_frames}")
        n = int(num_frames)
    raw = np.zeros((n, 17, 3), dtype=np.float32)
    for idx, (_, kp) in best.items():
        raw[idx - start_index] = kp
    track = make_track(
        raw[..., :2],
        raw[..., 2],
        COCO17_TO_14,
        np.arange(n) / fps,
        width=width,
        height=height,
        source="coco",
        meta={
            "format": "COCO-17",
            "start_index": start_index,
            "images": len(best),
            "multi_person_frames": sum(c > 1 for c in counts.values()),
        },
        require="coco",
    )
    return [track]
