"""Synthetic videos with hard camera cuts: one synthetic dance filmed by two cameras.

The same scene (dancer, background, music) as `synthesize_one`, but the picture switches
between camera framings (a zoom about the frame's centre and an offset) at given times,
without a transition: what a multi-camera edit of a dance does. The ground-truth sidecar
gains `cuts` (the time of each new shot's first frame) and `framings`, and its keypoints
are those of the framing on screen. Extraction must find the cuts (momu_data.shots) and
never cut a clip across one.

    from momu_data.synth.cuts import synthesize_with_cuts
    mp4 = synthesize_with_cuts(0, 12.0, Path("videos"), cuts=(4.0, 8.0))
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from momu_data.synth import DEFAULT_FPS, make_clip, render_frames, write_clip

# (zoom, dx, dy): dx, dy in fractions of the frame's width and height. Shots alternate
# between the two: a wide shot and a closer one, off centre.
FRAMINGS = ((1.0, 0.0, 0.0), (1.35, 0.08, 0.06))


def framing_matrix(zoom: float, dx: float, dy: float, width: int, height: int) -> np.ndarray:
    """2x3 affine map of pixel coordinates for a framing: zoom about the frame's centre,
    then shift by (dx * width, dy * height)."""
    cx, cy = width / 2, height / 2
    return np.array([[zoom, 0.0, cx - zoom * cx + dx * width], [0.0, zoom, cy - zoom * cy + dy * height]])


def reframe(img: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The frame as the camera of `matrix` sees it (edges repeated where it looks past the scene)."""
    import cv2

    h, w = img.shape[:2]
    return cv2.warpAffine(img, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def shot_of(times, cuts) -> np.ndarray:
    """Index of the shot each time lies in (0 before the first cut)."""
    return np.searchsorted(np.sort(np.asarray(cuts, dtype=np.float64)), np.asarray(times), side="right")


def synthesize_with_cuts(
    index: int,
    seconds: float,
    out,
    cuts=(4.0, 8.0),
    seed: int = 0,
    framings=FRAMINGS,
    fps: float | None = None,
    name: str | None = None,
) -> Path:
    """Write out/<name>.mp4 (default synth_cuts_{index:03d}) with its .gt.json: video `index`
    of `seed` (as synthesize_one makes it), switching framing at each time in `cuts` (shot
    k is filmed with framings[k % len(framings)]). Returns the mp4 path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clip = make_clip(index, seconds, seed=seed, fps=fps or DEFAULT_FPS)
    cuts = sorted(float(c) for c in cuts)
    if any(not 0 < c < seconds for c in cuts):
        raise ValueError(f"cuts must lie inside the video (0, {seconds:g}) s, got {cuts}")
    w, h = clip.width, clip.height
    mats = [framing_matrix(*framings[k % len(framings)], w, h) for k in range(len(cuts) + 1)]
    times = clip.dance.times
    shot = shot_of(times, cuts)
    frames = (reframe(img, mats[shot[i]]) for i, img in enumerate(render_frames(clip)))
    stem = name or f"synth_cuts_{index:03d}"
    mp4, gt_path = out / f"{stem}.mp4", out / f"{stem}.gt.json"
    gt = clip.ground_truth()
    kp = np.asarray(clip.dance.keypoints, dtype=np.float64)  # [N, 14, 2]
    m = np.stack([mats[k] for k in shot])  # [N, 2, 3]
    kp = np.einsum("nij,nkj->nki", m[:, :, :2], kp) + m[:, None, :, 2]
    first = [float(times[np.searchsorted(times, c)]) for c in cuts]
    gt.update(
        keypoints=np.round(kp, 3).tolist(),
        cuts=[round(c, 6) for c in first],
        framings=[list(map(float, framings[k % len(framings)])) for k in range(len(cuts) + 1)],
    )
    write_clip(mp4, gt_path, frames, clip.song, clip.fps, w, h, gt)
    return mp4
