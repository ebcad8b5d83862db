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


def shot_clips(
    num_frames: int,
    shot_starts,
    clip_seconds: float,
    hop_seconds: float | None = None,
    min_seconds: float | None = None,
    cut_times=None,
) -> list[dict]:
    """Clips that never span a camera cut: cut_clips within each shot.

    shot_starts: the mel frames that start a new shot (after a cut). Returns one dict per
    clip, in time order: {"start", "end", "shot"} and, for the piece before a cut that is
    too short to be a clip (under min_seconds), "reason" (such a piece is recorded as a
    rejected clip; a clip that would span a cut ends at it instead when it is long enough).
    cut_times: the cuts' times in seconds, for the reasons (default: from the frames).
    """
    min_seconds = clip_seconds / 2 if min_seconds is None else min_seconds
    hop_seconds = clip_seconds if hop_seconds is None else hop_seconds
    starts = sorted({int(c) for c in shot_starts if 0 < int(c) < num_frames})
    edges = [0, *starts, num_frames]
    times = list(cut_times) if cut_times is not None else [c / FPS for c in starts]
    L, H = int(round(clip_seconds * FPS)), max(1, int(round(hop_seconds * FPS)))
    out: list[dict] = []
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        spans = cut_clips(b - a, clip_seconds, hop_seconds, min_seconds)
        out += [{"start": a + s, "end": a + e, "shot": k} for s, e in spans]
        if k == len(edges) - 2:
            break  # the video's own end: a short remainder is dropped there, as without cuts
        # The first clip of the grid that reaches past the cut: kept (ending at the cut) when
        # long enough, which cut_clips did; else recorded as dropped.
        s = next((s for s in range(0, b - a, H) if s + L > b - a), None)
        if s is not None and (b - a) - s < max(int(round(min_seconds * FPS)), 1):
            out.append(
                {
                    "start": a + s,
                    "end": b,
                    "shot": k,
                    "reason": f"cut short by a camera cut at {times[k]:.2f} s: {(b - a - s) / FPS:.2f} s left"
                    f" (minimum {min_seconds:g} s)",
                }
            )
    return out
