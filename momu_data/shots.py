"""Camera cuts (shot boundaries) in a video, found on the frames the pose model already
decodes, so that no clip spans two camera framings.

A clip across a cut is not one dance: the body jumps in position and size from one frame to
the next, which the kinematic amplitude reads as the largest "beat" of the clip, and the
pose track's interpolation would draw a fast, false movement between the two framings.

The detector is PySceneDetect's AdaptiveDetector, reimplemented (the `scenedetect` wheel
requires `opencv-python`, a second OpenCV wheel next to mediapipe's `opencv-contrib-python`,
and the two overwrite each other's cv2): every frame is shrunk to THUMB_WIDTH pixels wide
and converted to HSV; a frame's content score is the mean absolute difference of its hue,
saturation and value from the previous frame's (0-255, PySceneDetect's `content_val`). A
frame starts a new shot when its score is at least ADAPTIVE_RATIO times the mean score of
the WINDOW frames on either side (dancing and camera motion raise all of them alike; a cut
raises one frame) and at least MIN_CONTENT (a still scene's noise and slow lighting changes
are not cuts), and it is MIN_SHOT_SECONDS or more after the previous cut (a flash is not a
shot). Scores need the next WINDOW frames, so cuts are decided once a video's scores are all
known (detect_cuts); the scores themselves are computed as the frames are decoded
(frame_signature, content_score).
"""

from __future__ import annotations

import numpy as np

from momu_data.optional import import_optional

THUMB_WIDTH = 64  # frames are compared as thumbnails this wide
HSV_BINS = (16, 4, 4)  # hue, saturation, value bins of the joint histogram
LUMA_BINS = 32
ADAPTIVE_RATIO = 3.0  # AdaptiveDetector's adaptive_threshold
WINDOW = 2  # AdaptiveDetector's window_width (frames on each side)
MIN_CONTENT = 8.0  # percent of the picture; measured in docs/data.md ("Camera cuts")
MIN_SHOT_SECONDS = 0.5  # AdaptiveDetector's min_scene_len (15 frames) at 30 frames/s


def frame_signature(rgb: np.ndarray) -> np.ndarray:
    """A frame's colour histograms, float32 [HSV_BINS product + LUMA_BINS]: the joint
    hue-saturation-value histogram and the value histogram of its THUMB_WIDTH-wide
    thumbnail (area-averaged), each summing to 1."""
    cv2 = import_optional("cv2", purpose="finding camera cuts", install="'momu[data]'")

    h, w = rgb.shape[:2]
    tw = min(THUMB_WIDTH, w)
    th = max(1, int(round(h * tw / w)))
    small = cv2.resize(np.ascontiguousarray(rgb), (tw, th), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV_FULL)
    joint = cv2.calcHist([hsv], [0, 1, 2], None, list(HSV_BINS), [0, 256, 0, 256, 0, 256]).ravel()
    luma = cv2.calcHist([hsv], [2], None, [LUMA_BINS], [0, 256]).ravel()
    return np.concatenate([joint / joint.sum(), luma / luma.sum()]).astype(np.float32)


def content_score(prev: np.ndarray | None, sig: np.ndarray) -> float:
    """How much of the picture changed colour from the previous frame, in percent (0-100):
    the mean of the two histograms' total variation distances. 0 for the first frame (prev
    None)."""
    if prev is None:
        return 0.0
    return float(25.0 * np.abs(sig.astype(np.float64) - prev).sum())


def detect_cuts(
    times,
    scores,
    ratio: float = ADAPTIVE_RATIO,
    window: int = WINDOW,
    min_content: float = MIN_CONTENT,
    min_shot_seconds: float = MIN_SHOT_SECONDS,
) -> np.ndarray:
    """Indices of the frames that start a new shot (sorted; never 0), from each frame's
    content score (its difference from the frame before) and time (s)."""
    t = np.asarray(times, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    if t.shape != s.shape:
        raise ValueError(f"times {t.shape} and scores {s.shape} differ in length")
    cuts: list[int] = []
    last = t[0] if t.size else 0.0
    for i in range(1, s.size):
        if s[i] < min_content:
            continue
        nb = np.r_[s[max(1, i - window) : i], s[i + 1 : i + 1 + window]]
        if nb.size and s[i] < ratio * max(float(nb.mean()), 1e-9):
            continue
        if t[i] - last < min_shot_seconds:
            continue
        cuts.append(i)
        last = t[i]
    return np.asarray(cuts, dtype=np.int64)


def shot_spans(num_frames: int, starts) -> list[tuple[int, int]]:
    """[start, end) of each shot of num_frames frames, from the frames that start a new shot."""
    edges = [0, *sorted(int(c) for c in starts if 0 < int(c) < num_frames), num_frames]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]
