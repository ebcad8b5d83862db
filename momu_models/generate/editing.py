"""Temporal editing: which frames of a dance or a music to keep, and how kept frames are put back.

The models in-paint in latent space (diffusion/sampling.py, `known` latents on any frame mask);
this module is the array side around that, free of models:

- `parse_range` ("A:B" seconds), `kept_frames` (the output frames an input keeps: all of it, the
  `keep` ranges, or all but the `regenerate` ranges), `read_keyframes` (the keyframe JSON),
  `keyframe_frame` (a time -> the nearest frame at 62.5 frames/s), `latent_frames` (a frame mask
  -> the latent frames wholly inside it), `seams` (where a mask switches);
- `paste`: after decoding, the kept frames get the input's exact values and the difference
  between input and decoded output at the nearest kept frame fades out linearly over `ramp`
  frames beyond it (a displacement blend), so the output neither jumps nor lags at a seam;
- `crossfade_waveform`: the input's own audio on kept frames, crossfaded over `ramp` frames
  inside them into the vocoded audio.

Every error is a ValueError with a one-line message (naming the file where there is one).
Details and measurements: docs/editing.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from momu_data import timebase as A
from momu_data.skeleton import NUM_JOINTS

_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"


@dataclass
class Keyframe:
    time: float  # seconds from the start of the output
    pose: np.ndarray  # [14, 2] in the units of momu-generate's .npy (torso units, hips at 0)


def parse_range(spec: str) -> tuple[float, float | None]:
    """'A:B' seconds -> (A, B); 'A:' runs to the end of the input (B None), ':B' starts at 0.
    A trailing 's' on either number is allowed ('2s:4.5s')."""
    m = re.fullmatch(rf"\s*(?:{_NUMBER}s?)?\s*:\s*(?:{_NUMBER}s?)?\s*", str(spec))
    if not m or (m.group(1) is None and m.group(2) is None):
        raise ValueError(f"cannot parse time range {spec!r}; use A:B in seconds (e.g. 2:4.5, 3:, :1.5)")
    a = float(m.group(1)) if m.group(1) is not None else 0.0
    b = float(m.group(2)) if m.group(2) is not None else None
    if b is not None and b <= a:
        raise ValueError(f"time range {spec!r} is empty: its end must come after its start")
    return a, b


def keyframe_frame(seconds: float, fps: float = A.FPS) -> int:
    """The frame nearest to a time, halves up (as parse_length rounds seconds)."""
    return int(np.floor(seconds * fps + 0.5))


def kept_frames(
    n_out: int,
    n_in: int,
    keep: list[tuple[float, float | None]] | None = None,
    regenerate: list[tuple[float, float | None]] | None = None,
    name: str = "the input",
    fps: float = A.FPS,
) -> np.ndarray:
    """bool [n_out]: the output frames an input of n_in frames keeps. Neither keep nor
    regenerate: all of the input (a prefix when it is shorter than the output); keep: the union
    of those ranges; regenerate: all of the input but those ranges. Ranges are seconds, an open
    end meaning the input's end; they must lie within the input and the output."""
    if keep and regenerate:
        raise ValueError("give ranges to keep or ranges to regenerate, not both")
    n = min(n_in, n_out)
    if not keep and not regenerate:
        out = np.zeros(n_out, bool)
        out[:n] = True
        return out
    out = np.zeros(n_out, bool) if keep else np.arange(n_out) < n
    for a, b in keep or regenerate:
        i = keyframe_frame(a, fps)
        j = n_in if b is None else keyframe_frame(b, fps)
        end = f"{b:g} s" if b is not None else "its end"
        if j > n_in:
            raise ValueError(f"range {a:g}-{end} goes past the end of {name} ({n_in / fps:.2f} s)")
        if j > n_out:
            raise ValueError(f"range {a:g}-{end} goes past the end of the output ({n_out / fps:.2f} s)")
        if j <= i:
            raise ValueError(f"range {a:g}-{end} holds no frame of {name}")
        out[i:j] = bool(keep)
    return out


def latent_frames(frames: np.ndarray, factor: int) -> np.ndarray:
    """bool [ceil(T / factor)]: latent frames whose `factor` frames are all marked in frames [T]
    (a latent frame spans frames [k factor, (k + 1) factor); the last may hold fewer)."""
    frames = np.asarray(frames, bool)
    L = -(-len(frames) // factor)
    padded = np.ones(L * factor, bool)
    padded[: len(frames)] = frames
    return padded.reshape(L, factor).all(axis=1)


def seams(frames: np.ndarray) -> list[int]:
    """Frames where a mask [T] switches: the first frame of each marked run after the start and
    the first frame after each run before the end (a keyframe at p: p and p + 1)."""
    frames = np.asarray(frames, bool)
    return [int(i) for i in np.flatnonzero(frames[1:] != frames[:-1]) + 1]


def read_keyframes(path) -> list[Keyframe]:
    """The keyframe file: {"keyframes": [{"time": seconds, "pose": [[x, y] x 14]}, ...]}, poses in
    the joint order of momu_data.skeleton.JOINTS and the units of momu-generate's .npy."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable JSON file ({e})") from None
    items = doc.get("keyframes") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        raise ValueError(f'{path}: expected {{"keyframes": [{{"time": seconds, "pose": [[x, y] x 14]}}, ...]}}')
    out = []
    for k, item in enumerate(items):
        where = f"{path}: keyframe {k}"
        if not isinstance(item, dict) or set(item) - {"time", "pose"} or not {"time", "pose"} <= set(item):
            raise ValueError(f'{where}: expected {{"time": seconds, "pose": [[x, y] x 14]}}')
        t = item["time"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not np.isfinite(t) or t < 0:
            raise ValueError(f"{where}: time must be a number of seconds >= 0, got {t!r}")
        try:
            pose = np.asarray(item["pose"], dtype=np.float32)
        except (TypeError, ValueError):
            pose = np.zeros(0)
        if pose.shape != (NUM_JOINTS, 2) or not np.isfinite(pose).all():
            raise ValueError(f"{where}: pose must be {NUM_JOINTS} finite [x, y] pairs")
        out.append(Keyframe(float(t), pose))
    return out


def load_keypoints(path) -> np.ndarray:
    """pose [T, 14, 2] at 62.5 frames/s from a .npy (as momu-generate writes it; a sidecar
    <stem>.json with another "fps" is refused) or a .npz extraction item (DATA/items/<id>.npz,
    its "pose"). Read without pickle."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"no such file: {path}")
    try:
        z = np.load(path, allow_pickle=False)
        if isinstance(z, np.lib.npyio.NpzFile):
            with z:
                pose = z["pose"] if "pose" in z.files else None
        else:
            pose = z
    except (OSError, ValueError, EOFError) as e:
        raise ValueError(f"{path}: not a readable numpy file ({e})") from None
    if pose is None:
        raise ValueError(f"{path}: no 'pose' array (an extraction item DATA/items/<id>.npz holds one)")
    side = path.with_suffix(".json")
    if path.suffix == ".npy" and side.exists():
        try:
            fps = json.loads(side.read_text()).get("fps", A.FPS)
        except (OSError, ValueError, AttributeError):
            fps = A.FPS
        if fps != A.FPS:
            raise ValueError(f"{path}: its {side.name} says {fps} frames/s; keypoints must be at {A.FPS}")
    pose = np.asarray(pose, dtype=np.float32)
    if pose.ndim != 3 or pose.shape[1:] != (NUM_JOINTS, 2) or len(pose) < 1:
        raise ValueError(f"{path}: expected keypoints [T, {NUM_JOINTS}, 2], got shape {pose.shape}")
    if not np.isfinite(pose).all():
        raise ValueError(f"{path}: keypoints hold NaN or infinite values")
    return pose


def _nearest(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every frame: the nearest marked frame and the distance to it (in frames)."""
    idx = np.flatnonzero(frames)
    t = np.arange(len(frames))
    pos = np.searchsorted(idx, t)  # the first marked frame at or after t
    right, left = idx[np.minimum(pos, len(idx) - 1)], idx[np.maximum(pos - 1, 0)]
    near = np.where(np.abs(t - left) <= np.abs(right - t), left, right)
    return near, np.abs(t - near)


def paste(generated: np.ndarray, target: np.ndarray, frames: np.ndarray, ramp: int, axis: int = 0) -> np.ndarray:
    """`generated` with `target` put back on the marked frames (time along `axis` of both).

    Displacement blend: out = generated + w (target - generated)[nearest marked frame], w = 1 on
    marked frames and 1 - d / (ramp + 1) at d frames from the nearest one (0 beyond ramp). The
    kept frames are the target's exactly; past a seam the output moves as the generated motion
    does, shifted by a difference that fades out, so its speed changes by at most
    |difference| / (ramp + 1) per frame."""
    frames = np.asarray(frames, bool)
    if not frames.any():
        return generated.copy()
    g = np.moveaxis(np.asarray(generated), axis, 0)
    tg = np.moveaxis(np.asarray(target), axis, 0)
    near, d = _nearest(frames)
    w = np.clip(1.0 - d / (ramp + 1.0), 0.0, 1.0).reshape((-1,) + (1,) * (g.ndim - 1))
    out = g + w * (tg - g)[near]
    out[frames] = tg[frames]
    return np.moveaxis(out.astype(g.dtype), 0, axis)


def crossfade_waveform(vocoded: np.ndarray, source: np.ndarray, frames: np.ndarray, ramp: int, hop: int = A.HOP):
    """The source audio on kept frames, faded into the vocoded audio over the `ramp` frames
    inside each kept run's edge (the vocoded audio exists everywhere, the source only where
    kept). vocoded [n]; source [<= n] (zeros beyond it); frames [T] with T * hop >= n."""
    frames = np.asarray(frames, bool)
    n = len(vocoded)
    if not frames.any():
        return vocoded.copy()
    src = np.zeros(n, np.float32)
    src[: min(n, len(source))] = source[:n]
    d_out = _nearest(~frames)[1] if (~frames).any() else np.full(len(frames), ramp + 1)
    w = np.clip(d_out / (ramp + 1.0), 0.0, 1.0)  # 0 off the kept frames, 1 deeper than ramp inside
    ws = np.interp(np.arange(n) / hop, np.arange(len(frames)), w)
    return (ws * src + (1 - ws) * vocoded).astype(np.float32)
