"""Cut a video's frame-aligned features into clips, and judge each clip's pose quality."""

from __future__ import annotations

import numpy as np

from momu_data.timebase import FPS


def cut_clips(
    num_frames: int, clip_seconds: float, hop_seconds: float | None = None, min_seconds: float | None = None
) -> list[tuple[int, int]]:
    """Clip boundaries [start, end) in mel frames.

    Clips of clip_seconds start every hop_seconds (default: clip_seconds, no overlap). The
    remainder at the end becomes a shorter last clip when it lasts at least min_seconds
    (default: half a clip), and is dropped otherwise; clips never extend past the video.
    """
    hop_seconds = clip_seconds if hop_seconds is None else hop_seconds
    min_seconds = clip_seconds / 2 if min_seconds is None else min_seconds
    if clip_seconds <= 0 or hop_seconds <= 0:
        raise ValueError("clip and hop lengths must be positive")
    L = int(round(clip_seconds * FPS))
    H = max(1, int(round(hop_seconds * FPS)))
    m = int(round(min_seconds * FPS))
    out = []
    for s in range(0, num_frames, H):
        e = min(s + L, num_frames)
        if e - s >= max(m, 1):
            out.append((s, e))
        if e == num_frames:
            break
    return out


def assess_clip(
    interpolated: np.ndarray, person: np.ndarray, max_interp_frac: float, max_no_person_frac: float
) -> dict:
    """Quality stats of one clip and whether it is kept.

    interpolated: [T, 14] bool, joints filled in; person: [T] bool, a person was detected.
    """
    interp_frac = float(interpolated.mean()) if interpolated.size else 1.0
    no_person_frac = float((~person).mean()) if person.size else 1.0
    reason = ""
    if no_person_frac > max_no_person_frac:
        reason = f"no person in {no_person_frac:.0%} of frames (limit {max_no_person_frac:.0%})"
    elif interp_frac > max_interp_frac:
        reason = f"{interp_frac:.0%} of joints interpolated (limit {max_interp_frac:.0%})"
    return {
        "interp_frac": interp_frac,
        "no_person_frac": no_person_frac,
        "status": "rejected" if reason else "ok",
        "reason": reason,
    }
