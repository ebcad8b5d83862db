"""Per-video extraction: media -> pose track -> cleaned motion on the mel time base ->
rhythm features -> clip list, written to `DATA/items/` as one finished unit.

Each job writes its arrays (`<id>.npz`, `<id>.flac`) first and its record (`<job>.json`)
last, all atomically; the record is the "done" marker, so a rerun skips finished jobs and
redoes anything a killed run left behind. A failure becomes a record with a one-line
reason instead of an exception, so one bad video never ends a run.
"""

from __future__ import annotations

import hashlib
import json
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from momu_data import features
from momu_data import timebase as A
from momu_data.clips import assess_clip, cut_clips
from momu_data.features import amplitude_from_flux, beats_from_envelope, directogram, kinematic_flux
from momu_data.io import atomic_path, sha256_file, write_json
from momu_data.media import MediaError, load_audio, probe_video
from momu_data.pose.importers import load_keypoints
from momu_data.pose.interpolate import fill_missing, missing_mask, nearest_index, normalisation, resample
from momu_data.pose.mediapipe_pose import estimate_video
from momu_data.pose.track import PoseTrack

SCHEMA = 1
POSE_SOURCES = ("mediapipe", "openpose", "coco", "aistpp", "dance_with_melody")


@dataclass
class ExtractConfig:
    """Settings that change the extracted data (hashed: a change redoes the work)."""

    pose_source: str = "mediapipe"
    max_side: int = 640  # frames are downscaled to this before the pose model
    model_complexity: int = 1
    conf_threshold: float = 0.5  # joints below this confidence count as missing
    clip_seconds: float = 10.0
    hop_seconds: float | None = None  # default: clip_seconds (no overlap)
    min_clip_seconds: float | None = None  # default: half a clip; shorter remainders dropped
    max_interp_frac: float = 0.3  # reject a clip with more interpolated joints than this
    max_no_person_frac: float = 0.2  # reject a clip with more person-less frames than this
    bins: int = 8  # directogram angle bins (K)
    fps: float | None = None  # frame rate for keypoint files that have no timestamps
    cameras: str = "all"  # AIST++ views: "all" or comma-separated indices
    # Keyword options of the keypoint importer (dance_with_melody: views, time_scale).
    source_options: dict = field(default_factory=dict)

    def digest(self) -> str:
        d = asdict(self)
        if not d["source_options"]:
            del d["source_options"]  # absent when unused, so earlier extractions stay valid
        blob = json.dumps({"schema": SCHEMA, **d}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]

    @property
    def min_seconds(self) -> float:
        return self.clip_seconds / 2 if self.min_clip_seconds is None else self.min_clip_seconds


@dataclass
class Job:
    id: str
    source: str  # a video, or a keypoint file/folder for the other pose sources
    audio: str | None = None  # None: the source's own audio
    dataset: str = ""
    labels: dict = field(default_factory=dict)  # genre / music / dancer / style ids


def record_path(out: Path, job_id: str) -> Path:
    return Path(out) / "items" / f"{job_id}.json"


def is_done(out: Path, job: Job, cfg: ExtractConfig, retry_failed: bool = False) -> bool:
    p = record_path(out, job.id)
    if not p.exists():
        return False
    try:
        rec = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    if rec.get("settings") != cfg.digest():
        return False
    return not (retry_failed and rec.get("status") == "failed")


def run_job(job: Job, cfg: ExtractConfig, out) -> dict:
    """Process one job and write its outputs; never raises for bad input."""
    out = Path(out)
    t_start = time.perf_counter()
    base = {
        "id": job.id,
        "path": str(job.source),
        "audio_path": job.audio,
        "dataset": job.dataset,
        "labels": job.labels,
        "pose_source": cfg.pose_source,
        "settings": cfg.digest(),
        "schema": SCHEMA,
    }
    try:
        views = _extract(job, cfg, out)
        rec = {**base, "status": "ok", "reason": "", "views": views}
    except MediaError as e:
        rec = {**base, "status": "failed", "reason": str(e), "views": []}
    except Exception as e:  # a bug or an unexpected library error: record it, keep going
        tb = traceback.format_exc(limit=3).strip().splitlines()[-1]
        rec = {**base, "status": "failed", "reason": f"error: {type(e).__name__}: {e} ({tb})", "views": []}
    rec["seconds"] = round(time.perf_counter() - t_start, 3)
    write_json(record_path(out, job.id), rec)
    return rec


def _load_tracks(job: Job, cfg: ExtractConfig) -> list[PoseTrack]:
    if cfg.pose_source == "mediapipe":
        return [estimate_video(job.source, max_side=cfg.max_side, model_complexity=cfg.model_complexity)]
    kw: dict = {}
    if cfg.pose_source in ("openpose", "coco"):
        info = _probe_or_none(job.audio)  # a paired video gives the keypoints' rate and frame size
        kw["fps"] = cfg.fps or (info.fps if info else None) or 30.0
        if info:
            kw["width"], kw["height"] = info.width, info.height
    elif cfg.pose_source == "aistpp":
        kw["cameras"] = (
            "all"
            if cfg.cameras == "all"
            else [c if c.startswith("c") else int(c) for c in str(cfg.cameras).split(",")]
        )
    elif cfg.pose_source == "dance_with_melody":
        kw["audio"] = job.audio  # the pose clock is the music's: its first-sample time offsets it
    kw.update(cfg.source_options)
    return load_keypoints(cfg.pose_source, job.source, **kw)


def _probe_or_none(path):
    """Stream facts of a media file, or None when there is none or it has no video."""
    try:
        return probe_video(path) if path else None
    except MediaError:
        return None


def _extract(job: Job, cfg: ExtractConfig, out: Path) -> list[dict]:
    audio_src = job.audio or job.source
    if cfg.pose_source != "mediapipe" and not job.audio:
        raise MediaError("no audio given for keypoint input (use --audio)")
    y, a_start = load_audio(audio_src)  # fail early on a missing audio stream, before the pose model
    sha = sha256_file(job.source) if Path(job.source).is_file() else ""
    tracks = _load_tracks(job, cfg)
    views = []
    for tr in tracks:
        vid = job.id if len(tracks) == 1 and not tr.view else f"{job.id}_{tr.view}"
        feats, info = build_features(tr, y, a_start, cfg)
        with atomic_path(out / "items" / f"{vid}.npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **feats)
        import soundfile as sf

        with atomic_path(out / "items" / f"{vid}.flac") as tmp:
            sf.write(tmp, np.clip(info.pop("audio"), -1, 1), A.SR, format="FLAC", subtype="PCM_16")
        clips = []
        for k, (s, e) in enumerate(
            cut_clips(feats["pose"].shape[0], cfg.clip_seconds, cfg.hop_seconds, cfg.min_seconds)
        ):
            q = assess_clip(feats["interp"][s:e], feats["person"][s:e], cfg.max_interp_frac, cfg.max_no_person_frac)
            clips.append({"key": f"{vid}-{k:04d}", "start": s, "end": e, **q})
        views.append(
            {
                "id": vid,
                "view": tr.view,
                "sha256": sha,
                **info,
                "clips": clips,
                **{k: v for k, v in tr.meta.items() if isinstance(v, (str, int, float))},
            }
        )
    return views


def clean_track(track: PoseTrack, cfg: ExtractConfig):
    """Missing-joint mask, filled pixel coordinates and the per-video normalisation."""
    if not track.person.any():
        raise MediaError("no person found")
    miss = missing_mask(track, cfg.conf_threshold)
    try:
        xy = fill_missing(track.xy, miss, track.times)
        centre, scale = normalisation(xy, track.person)
    except ValueError as e:
        raise MediaError(f"no usable person: {e}") from None
    return miss, xy, centre, scale


def frame_step(times: np.ndarray) -> float:
    return float(np.median(np.diff(times))) if len(times) > 1 else 1.0 / 30


def resample_track(track: PoseTrack, cfg: ExtractConfig, t_mel: np.ndarray) -> dict:
    """Cleaned, normalised motion on the given mel frame times, plus its masks."""
    miss, xy, centre, scale = clean_track(track, cfg)
    pose = resample((xy - centre) / scale, track.times, t_mel)
    near = nearest_index(track.times, t_mel)
    interp = miss[near]
    return {
        "pose": pose,
        "interp": interp,
        "person": track.person[near],
        "conf": np.where(interp, 0.0, track.conf[near]).astype(np.float32),
        "centre": centre,
        "scale": scale,
        "miss": miss,
    }


def motion_from_video(path, cfg: ExtractConfig | None = None) -> tuple[np.ndarray, dict]:
    """Pose [T, 14, 2] at 62.5 frames/s of a video on its own (no audio needed), as the
    extraction pipeline computes it; for dance-to-music generation."""
    cfg = cfg or ExtractConfig()
    track = estimate_video(path, max_side=cfg.max_side, model_complexity=cfg.model_complexity)
    t0, t1 = float(track.times[0]), float(track.times[-1]) + frame_step(track.times)
    t_mel = t0 + np.arange(int(np.floor((t1 - t0) * A.FPS))) / A.FPS
    m = resample_track(track, cfg, t_mel)
    return m["pose"], {
        "t0": t0,
        "centre": m["centre"].tolist(),
        "scale": m["scale"],
        "width": track.width,
        "height": track.height,
    }


def build_features(track: PoseTrack, y: np.ndarray, a_start: float, cfg: ExtractConfig):
    """Align a pose track with its audio and compute every frame-aligned feature.

    The common time span is where both audio and video exist; mel frame t of that span is
    centred at t0 + t * 256 / 16000 s, and the motion is resampled to exactly those times
    (the paper aligns motion and music frames one to one).
    """
    if not track.person.any():
        raise MediaError("no person found")
    times = track.times
    dt = frame_step(times)
    t0 = max(float(times[0]), a_start)
    t1 = min(float(times[-1]) + dt, a_start + len(y) / A.SR)
    if t1 - t0 < cfg.min_seconds:
        raise MediaError(
            f"too short: {max(t1 - t0, 0):.2f} s of overlapping audio and video (minimum {cfg.min_seconds:g} s)"
        )
    i0 = int(round((t0 - a_start) * A.SR))
    seg = y[i0 : i0 + int((t1 - t0) * A.SR)]
    mel = features.log_mel(seg)
    T = mel.shape[1]
    t_mel = t0 + np.arange(T) * A.HOP / A.SR
    m = resample_track(track, cfg, t_mel)
    pose, miss = m["pose"], m["miss"]
    dgram = directogram(pose, cfg.bins)
    flux = kinematic_flux(dgram).astype(np.float32)
    feats = {
        "pose": pose,
        "conf": m["conf"],
        "interp": m["interp"],
        "person": m["person"],
        "mel": mel,
        "dirgram": dgram,
        "flux": flux,
        "kin_beats": beats_from_envelope(amplitude_from_flux(flux)).astype(np.float64),
        "onsets": features.onsets(seg).astype(np.float64),
    }
    info = {
        "audio": seg,
        "width": track.width,
        "height": track.height,
        "centre": m["centre"].tolist(),
        "scale": m["scale"],
        "t0": t0,
        "duration": T / A.FPS,
        "frames": T,
        "video_frames": int(len(times)),
        "video_fps": 1.0 / dt if dt > 0 else 0.0,
        "person_frac": float(track.person.mean()),
        "interp_frac": float(miss[track.person].mean()),
        "audio_trim_start": t0 - a_start,
        "video_trim_start": t0 - float(times[0]),
    }
    return feats, info


def load_item(out, item_id: str) -> dict:
    """Arrays of one extracted item (no pickle: allow_pickle=False)."""
    with np.load(Path(out) / "items" / f"{item_id}.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
