"""Dance with Melody (Tang et al., ACM MM 2018): 3D motion capture + music -> 2D PoseTracks.

One dance is a folder (e.g. ``DANCE_W_1``) with
  skeletons.json  {length L, center (L, 3), skeletons (L, 23, 3)}: world = center + skeleton,
                  centimetres, y up, x and z horizontal, 25 frames/s
  config.json     {start_position, end_position}: skeleton frame t plays at music time
                  (start_position + t) / 25 s
  audio.mp3       the music
The letter after ``DANCE_`` is the dance type: C cha-cha, R rumba, T tango, W waltz.

Joints (no official list; inferred from bone lengths and posture, see the dataset's NOTES):
0, 1 head points; 2 spine/root; 3-6 left shoulder, elbow, mid-forearm, wrist; 7-11 left hip,
knee, ankle, heel, toe; 12-15 right shoulder, elbow, mid-forearm, wrist; 16-20 right hip,
knee, ankle, heel, toe; 21, 22 hand-direction points.

Views (2D, u right, v down, in centimetres; no image frame, so width/height are None):
- ``fixed``: a fixed camera, (u, v) = (x, -y) (depth z dropped). The dancers turn freely,
  so they are often side-on or seen from behind.
- ``frontal``: each frame is rotated about the vertical axis through the dancer's root so
  that the shoulder-and-hip axis (right minus left) points to image left, i.e. the view of a
  camera the dancer faces: the person's right appears on the image's left, as in a video of
  a dancer facing the camera (and as the 14-keypoint convention of the video pipeline has
  it). Turning is removed; travel and bounce stay. The toes point along
  cross(right - left, up) in this data, so after the rotation they face the camera.

Timing: frame t is at ``a0 + (start_position + s * t) / 25`` seconds on the audio's clock,
with a0 the time of the first decoded audio sample (mp3 files start at 0.025 s: the
encoder delay) and s the time scale (1 by default). The dataset's author set
start_position by hand and the motion's periodicity runs ~1-2 % faster than the music in
several dances, so ``time_scale="fit"`` estimates s per dance (``fit_time_scale``);
``time_offset`` moves a dance by a given number of seconds: times become
``a0 + (start_position + s * t) / 25 - offset``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from momu_data.features import directogram, kinematic_flux
from momu_data.media import MediaError, load_audio
from momu_data.optional import import_optional
from momu_data.pose.importers.common import make_track
from momu_data.pose.interpolate import resample
from momu_data.pose.track import PoseTrack
from momu_data.skeleton import map_keypoints
from momu_data.timebase import FPS as MEL_FPS
from momu_data.timebase import HOP

FPS = 25.0
VIEWS = ("fixed", "frontal")
STYLES = {"C": "cha-cha", "R": "rumba", "T": "tango", "W": "waltz"}
AUDIO_NAMES = ("audio.mp3", "audio.wav", "audio.flac", "audio.ogg", "audio.m4a")
# Our 14 joints from the 23 mocap joints; a tuple is "mean of these". The data has no nose:
# the mid-point of the two head points (~20 cm above the neck) stands in for it.
DWM23_TO_14 = ((0, 1), (3, 12), 12, 13, 15, 3, 4, 6, 16, 17, 18, 7, 8, 9)
L_SHOULDER, L_HIP, R_SHOULDER, R_HIP = 3, 7, 12, 16
NUM_JOINTS = 23

# Time-scale search: the measured drift is 1-2 %, so +-4 % in 0.1 % steps covers it with
# margin. A fit is trusted when it stands out MIN_FIT_Z standard deviations above the
# chance level (see fit_time_scale), is at least MIN_FIT_CORR and not on the edge of the range;
# otherwise the scale stays 1.
SCALE_RANGE = (0.96, 1.04)
SCALE_STEP = 0.001
MIN_FIT_CORR = 0.05
MIN_FIT_Z = 4.0
NULL_STRETCHES = (0.76, 0.79, 0.82, 0.85, 0.88, 0.91, 1.09, 1.12, 1.15, 1.18, 1.21, 1.24)
FIT_MAX_LAG_S = 12.0  # autocorrelation lags compared: long lags make a 1 % stretch visible
FIT_MIN_LAG_S = 0.25  # below a quarter second the autocorrelation only shows smoothness
_DANCE_RE = re.compile(r"DANCE_([A-Z])_?(\d+)", re.IGNORECASE)


@dataclass
class Dance:
    """One dance as stored: root trajectory [L, 3], root-relative joints [L, 23, 3] (cm, y up)."""

    name: str
    center: np.ndarray
    skeleton: np.ndarray
    start_position: int
    end_position: int

    @property
    def world(self) -> np.ndarray:
        return self.center[:, None, :] + self.skeleton

    def __len__(self) -> int:
        return len(self.center)


def is_dance_folder(path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / "skeletons.json").is_file() and (p / "config.json").is_file()


def find_dances(paths) -> list[Path]:
    """Dance folders (with skeletons.json and config.json) in paths, searched recursively.
    A skeletons.json file given directly stands for its folder."""
    found: set[Path] = set()
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"no such file or folder: {p}")
        if p.is_file():
            if p.name != "skeletons.json":
                raise ValueError(f"dance_with_melody: {p} is neither a dance folder nor a skeletons.json")
            found.add(Path(os.path.abspath(p.parent)))
            continue
        # os.walk with followlinks: a dataset folder of symlinked dances is common; the
        # seen set keeps a link cycle from walking forever.
        seen: set[str] = set()
        for root, dirs, files in os.walk(p, followlinks=True):
            real = os.path.realpath(root)
            if real in seen:
                dirs[:] = []
                continue
            seen.add(real)
            if "skeletons.json" in files and is_dance_folder(root):
                # Absolute but not resolved: ids and manifest paths keep the user's layout.
                found.add(Path(os.path.abspath(root)))
    return sorted(found)


def dance_labels(name: str) -> dict:
    """ "DANCE_W_12" -> {"style": "waltz", "dance": "W_12"}; {} for other names."""
    m = _DANCE_RE.search(str(name))
    if not m:
        return {}
    kind = m.group(1).upper()
    return {"style": STYLES.get(kind, kind), "dance": f"{kind}_{m.group(2)}"}


def find_audio(folder) -> Path | None:
    """The music beside the skeletons: audio.mp3 (or another audio.* file)."""
    for n in AUDIO_NAMES:
        if (Path(folder) / n).is_file():
            return Path(folder) / n
    return None


def read_dance(folder) -> Dance:
    """Read and check a dance folder; raises MediaError for unusable files."""
    folder = Path(folder)
    try:
        doc = json.loads((folder / "skeletons.json").read_text())
        cfg = json.loads((folder / "config.json").read_text())
    except FileNotFoundError as e:
        raise MediaError(f"dance_with_melody: missing {Path(e.filename).name} in {folder}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MediaError(f"dance_with_melody: unreadable JSON in {folder}: {e}") from None
    try:
        center = np.asarray(doc["center"], dtype=np.float64)
        skel = np.asarray(doc["skeletons"], dtype=np.float64)
        start, end = int(cfg["start_position"]), int(cfg["end_position"])
    except (KeyError, TypeError, ValueError) as e:
        raise MediaError(
            f"dance_with_melody: malformed skeletons/config in {folder}: {type(e).__name__}: {e}"
        ) from None
    if skel.ndim != 3 or skel.shape[1:] != (NUM_JOINTS, 3) or center.shape != (len(skel), 3):
        raise MediaError(
            f"dance_with_melody: skeletons {skel.shape} / center {center.shape}, expected (L, 23, 3) / (L, 3)"
        )
    if len(skel) < 2:
        raise MediaError(f"dance_with_melody: {len(skel)} frame(s) in {folder}")
    if not (np.isfinite(skel).all() and np.isfinite(center).all()):
        raise MediaError(f"dance_with_melody: non-finite coordinates in {folder}")
    if start < 0:
        raise MediaError(f"dance_with_melody: negative start_position {start} in {folder}")
    return Dance(folder.name, center, skel, start, end)


def facing_rotation(skeleton: np.ndarray) -> np.ndarray:
    """Per-frame angle [L] (radians, about +y) that turns the horizontal right-minus-left
    shoulder+hip axis to -x. A frame whose axis is degenerate (near-vertical body axis,
    shoulders and hips stacked in depth) keeps the previous frame's angle."""
    across = (skeleton[:, R_SHOULDER] - skeleton[:, L_SHOULDER]) + (skeleton[:, R_HIP] - skeleton[:, L_HIP])
    ang = np.arctan2(across[:, 2], across[:, 0])  # angle in the x-z plane
    ok = np.hypot(across[:, 0], across[:, 2]) > 1e-3
    if not ok.any():
        return np.zeros(len(skeleton))
    idx = np.where(ok, np.arange(len(ang)), 0)
    np.maximum.accumulate(idx, out=idx)
    first = int(np.argmax(ok))
    idx[:first] = first
    return np.pi - ang[idx]


def project(dance: Dance, view: str) -> np.ndarray:
    """All 23 joints in 2D [L, 23, 2] (u right, v down, cm) for a view in VIEWS."""
    if view == "fixed":
        w = dance.world
        return np.stack([w[..., 0], -w[..., 1]], axis=-1)
    if view == "frontal":
        th = facing_rotation(dance.skeleton)[:, None]
        s = dance.skeleton
        # Rotation about y taking the x-z angle a to a + th; only the new x is needed.
        x = np.cos(th) * s[..., 0] - np.sin(th) * s[..., 2]
        return np.stack([dance.center[:, None, 0] + x, -(dance.center[:, None, 1] + s[..., 1])], axis=-1)
    raise ValueError(f"dance_with_melody: unknown view {view!r}; expected one of {', '.join(VIEWS)}")


def parse_views(views) -> list[str]:
    """ "fixed", "frontal", "both", "fixed,frontal" or a list -> a list of view names."""
    if isinstance(views, str):
        items = list(VIEWS) if views in ("both", "all") else [v.strip() for v in views.split(",") if v.strip()]
    else:
        items = list(views)
    bad = [v for v in items if v not in VIEWS]
    if not items or bad:
        raise ValueError(f"dance_with_melody: views must be fixed, frontal or both, got {views!r}")
    return list(dict.fromkeys(items))


def audio_start(path) -> float:
    """Time of the first decoded audio sample on the container's clock (0.025 s for LAME mp3s)."""
    av = import_optional("av", purpose="importing Dance with Melody")

    try:
        with av.open(str(path)) as c:
            if not c.streams.audio:
                raise MediaError("no audio stream")
            for frame in c.decode(c.streams.audio[0]):
                return float(frame.time) if frame.time is not None else 0.0
    except av.error.FFmpegError as e:
        raise MediaError(f"unreadable audio: {e}") from None
    raise MediaError("audio stream has no decodable samples")


def _flux(xy: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Kinematic flux (eq. 2, unnormalised) of a 2D motion [L, J, 2] on the mel time base,
    starting at times[0]."""
    t = times[0] + np.arange(int((times[-1] - times[0]) * MEL_FPS) + 1) / MEL_FPS
    return kinematic_flux(directogram(resample(xy.astype(np.float32), times, t)))


def _standardise(x: np.ndarray) -> np.ndarray:
    """Remove a 2 s moving average (loudness and activity changes, not beats) and scale to
    unit variance."""
    from scipy.ndimage import uniform_filter1d

    x = np.asarray(x, dtype=np.float64)
    x = x - uniform_filter1d(x, int(2 * MEL_FPS))
    return x / (x.std() + 1e-12)


def _acf(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Unbiased autocorrelation [max_lag] of a standardised envelope."""
    x = _standardise(x)
    n = len(x)
    max_lag = min(max_lag, n - 1)
    f = np.fft.rfft(x, 2 * n)
    r = np.fft.irfft(f * np.conj(f))[:max_lag]
    return r / np.arange(n, n - max_lag, -1)


@dataclass(frozen=True)
class ScaleFit:
    """A fitted time scale: times = a0 + (start_position + scale * t) / 25."""

    scale: float  # the scale to use (1.0 when the fit was not trusted)
    best: float  # the best scale on the grid
    corr: float  # periodicity match at `best`
    corr_at_1: float  # ... and at scale 1
    z: float  # how far `best` stands above chance (see fit_time_scale)
    accepted: bool


def _envelopes(dance: Dance, y: np.ndarray, a0: float, sr: int, scale: float = 1.0):
    """Music onset strength and the motion's kinematic flux of both views over the span the
    motion covers, on the mel time base."""
    import librosa

    times = a0 + (dance.start_position + scale * np.arange(len(dance))) / FPS
    fluxes = [_flux(map_to_14(project(dance, v)), times) for v in VIEWS]
    env = librosa.onset.onset_strength(y=np.asarray(y, dtype=np.float32), sr=sr, hop_length=HOP)
    i0 = int(round(times[0] * MEL_FPS))
    n = max(0, min(len(fluxes[0]), len(env) - i0))
    return env[i0 : i0 + n], [f[:n] for f in fluxes]


def _scale_corr(a_music: np.ndarray, a_motion: np.ndarray, grid: np.ndarray, stretch: float = 1.0) -> np.ndarray:
    """Correlation of the music's autocorrelation (optionally as if played `stretch` times
    slower) with the motion's stretched by each scale in grid, over the fitted lags."""
    lags = np.arange(int(FIT_MAX_LAG_S * MEL_FPS)) / MEL_FPS
    lo = int(FIT_MIN_LAG_S * MEL_FPS)
    music = np.interp(lags[lo:] * stretch, np.arange(len(a_music)) / MEL_FPS, a_music)
    motion_lags = np.arange(len(a_motion)) / MEL_FPS
    return np.array([np.corrcoef(np.interp(lags[lo:] / g, motion_lags, a_motion), music)[0, 1] for g in grid])


def _z(value: float, null) -> float:
    null = np.asarray(null, dtype=np.float64)
    return float((value - null.mean()) / (null.std(ddof=1) + 1e-12))


def fit_time_scale(dance: Dance, y: np.ndarray, a0: float = 0.0, sr: int = 16000) -> ScaleFit:
    """Fit the dance's time scale s to the music's beats.

    The music's periodicity is the autocorrelation of its onset-strength envelope (the
    envelope the paper's onsets are picked from), the motion's that of its kinematic flux
    (eq. 2), averaged over the fixed and the frontal view so the scale is a property of the
    dance, not of a view. Stretching the motion's clock by s stretches its autocorrelation
    by s; s is the grid value in SCALE_RANGE where the two autocorrelations, compared over
    lags FIT_MIN_LAG_S..FIT_MAX_LAG_S, correlate best. Long lags make a 1 % stretch a shift
    of several frames, which is what the fit sees; the autocorrelation ignores the phase, so
    a wrong start_position does not bias it. The stretch pivots on the first frame.

    Two periodic envelopes always match somewhat at some scale, so the fit is accepted only
    when its correlation stands out (z >= MIN_FIT_Z) against the same fit to the music's
    envelope played 9-24 % slower or faster (NULL_STRETCHES: the tempo relation destroyed,
    the texture kept), is at least MIN_FIT_CORR and not on the edge of the range; otherwise
    the scale stays 1. This is conservative for music with strong bar-level periodicity
    (waltz), whose stretched copies still match well.
    """
    env, fluxes = _envelopes(dance, y, a0, sr)
    if len(env) < 4 * FIT_MAX_LAG_S * MEL_FPS:  # too short to see a 1 % stretch
        return ScaleFit(1.0, 1.0, float("nan"), float("nan"), float("nan"), False)
    max_lag = int(FIT_MAX_LAG_S * MEL_FPS)
    a_music = _acf(env, int(max_lag * max(NULL_STRETCHES)) + 2)
    a_motion = np.mean([_acf(f, int(max_lag / SCALE_RANGE[0]) + 2) for f in fluxes], axis=0)
    grid = np.round(np.arange(SCALE_RANGE[0], SCALE_RANGE[1] + SCALE_STEP / 2, SCALE_STEP), 6)
    corr = _scale_corr(a_music, a_motion, grid)
    k = int(np.nanargmax(corr))
    z = _z(corr[k], [np.nanmax(_scale_corr(a_music, a_motion, grid, st)) for st in NULL_STRETCHES])
    ok = bool(corr[k] >= MIN_FIT_CORR and z >= MIN_FIT_Z and 0 < k < len(grid) - 1)
    return ScaleFit(
        float(grid[k]) if ok else 1.0,
        float(grid[k]),
        float(corr[k]),
        float(corr[int(np.argmin(np.abs(grid - 1.0)))]),
        z,
        ok,
    )


def map_to_14(xy23: np.ndarray) -> np.ndarray:
    """[L, 23, 2] -> [L, 14, 2] in the paper's joint order."""
    xy, _ = map_keypoints(xy23, np.ones(xy23.shape[:-1], np.float32), DWM23_TO_14)
    return xy


def load_dance_with_melody(path, views="fixed", time_scale="none", time_offset="none", audio=None) -> list[PoseTrack]:
    """Load one dance folder as one PoseTrack per requested view (see the module docstring).

    views: "fixed", "frontal", "both" or a list. time_scale: "none" (1), "fit"
    (fit_time_scale against the music) or a number; time_offset: "none" (0) or seconds (the
    motion is moved earlier by it: a manual correction of start_position). audio: the music
    file the times refer to (default: audio.* in the folder); its first-sample time offsets
    the pose clock. Tracks carry meta style
    (dance type), dance, music (the dance's own song) and the clock, which end up in the
    manifests.
    """
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    names = parse_views(views)
    scale_opt, offset_opt = _clock_option("time_scale", time_scale), _clock_option("time_offset", time_offset)
    dance = read_dance(folder)
    audio = Path(audio) if audio else find_audio(folder)
    if audio is None:
        raise MediaError(f"dance_with_melody: no audio.* beside {folder}/skeletons.json")
    a0 = audio_start(audio)
    meta: dict = {
        **dance_labels(dance.name),
        "music": dance.name,
        "start_position": dance.start_position,
        "end_position": dance.end_position,
    }
    if scale_opt == "fit":
        y, a0 = load_audio(audio)
        fit = fit_time_scale(dance, y, a0)
        meta.update(
            {
                "time_scale_best": fit.best,
                "time_scale_corr": round(fit.corr, 4),
                "time_scale_z": round(fit.z, 2),
                "time_scale_accepted": int(fit.accepted),
            }
        )
        scale = fit.scale
    else:
        scale = float(scale_opt)
    offset = float(offset_opt)
    if not 0.5 <= scale <= 2.0:
        raise ValueError(f"dance_with_melody: time_scale {scale} is not a plausible stretch (0.5-2)")
    meta["time_scale"], meta["time_offset"] = scale, offset
    times = a0 + (dance.start_position + scale * np.arange(len(dance))) / FPS - offset
    tracks = []
    for v in names:
        xy23 = project(dance, v)
        conf = np.ones(xy23.shape[:-1], np.float32)  # motion capture: every joint is measured
        tracks.append(
            make_track(
                xy23,
                conf,
                DWM23_TO_14,
                times,
                width=None,
                height=None,
                source="dance_with_melody",
                view=v,
                meta=dict(meta),
            )
        )
    return tracks


def _clock_option(name: str, value):
    """ "fit" (time_scale only), or a number ("none" / empty = the identity: scale 1, offset 0)."""
    if value == "fit" and name == "time_scale":
        return "fit"
    if value in ("none", None, ""):
        return 1.0 if name == "time_scale" else 0.0
    try:
        return float(value)
    except (TypeError, ValueError):
        choices = "none, fit or a number" if name == "time_scale" else "none or a number"
        raise ValueError(f"dance_with_melody: {name} must be {choices}, got {value!r}") from None
