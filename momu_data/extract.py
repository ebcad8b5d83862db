"""Per-video extraction: media -> pose track -> cleaned motion on the mel time base ->
rhythm features -> clip list, written to `DATA/items/` as one finished unit.

Each job writes its arrays (`<id>.npz`, `<id>.flac`) first and its record (`<job>.json`)
last, all atomically; the record is the "done" marker, so a rerun skips finished jobs and
redoes anything a killed run left behind. A record names its input by path, size, mtime
and sha256 (`fingerprint`): a job is finished only when the record's settings and input
content match. A failure of the input becomes a record with a one-line reason instead of
an exception, so one bad video never ends a run; a failure of the machine (disk full,
permission denied, read-only or failing disk) is not the input's: it stops the run with
`EnvironmentFailure` and records nothing, so a plain rerun redoes the job. A long video's
pose track is checkpointed in `DATA/work/<id>/` as it goes (see estimate_video), so a
killed run continues mid-video.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import os
import shutil
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from momu_data import features
from momu_data import timebase as A
from momu_data.clips import assess_clip, shot_clips
from momu_data.features import amplitude_from_flux, beats_from_envelope, clip_beats, directogram, kinematic_flux
from momu_data.io import ENVIRONMENT_ERRNOS, environment_error, sha256_file, write_bytes, write_json
from momu_data.media import MediaError, load_audio, probe_video
from momu_data.optional import MissingPackage
from momu_data.pose.importers import load_keypoints
from momu_data.pose.interpolate import fill_missing, missing_mask, nearest_index, normalisation, resample
from momu_data.pose.mediapipe_pose import SEGMENT_SECONDS, estimate_video
from momu_data.pose.multi import estimate_dancers
from momu_data.pose.track import PoseTrack
from momu_data.shots import shot_spans

# 2: clips never span a camera cut (momu_data.shots) and store their own beat labels,
# computed on the clip alone (features.clip_beats); schema 1 data is extracted again.
SCHEMA = 2
# The reason of a video without sound when no --audio file was paired with it.
NO_AUDIO = "no audio stream (pair one with --audio DIR: a file of the same stem)"
log = logging.getLogger(__name__)
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
    # mediapipe: the pose track is estimated, and checkpointed, in segments of this much video.
    segment_seconds: float = SEGMENT_SECONDS
    # mediapipe: "main" (one person, the legacy Pose), "all" or "N": every dancer tracked, each
    # identity its own item <id>__dancer<k> (momu_data.pose.multi).
    dancers: str = "main"

    def digest(self) -> str:
        d = asdict(self)
        if not d["source_options"]:
            del d["source_options"]  # absent when unused, so earlier extractions stay valid
        if d["segment_seconds"] == SEGMENT_SECONDS:
            del d["segment_seconds"]  # likewise: the default keeps earlier digests
        if d["dancers"] == "main":
            del d["dancers"]  # likewise
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


class EnvironmentFailure(Exception):
    """The machine, not the input, stopped the run: a full disk, permission denied, a
    read-only file system or an I/O error. The message is one line naming the path and what
    to do; nothing is recorded as the input's failure, so a plain rerun redoes the work."""

    HINTS = {
        errno.ENOSPC: "free some space there (or extract into another --out), then rerun",
        errno.EDQUOT: "free some space within your quota (or extract into another --out), then rerun",
        errno.EACCES: "make it readable/writable for you (or use another --out), then rerun",
        errno.EPERM: "make it readable/writable for you (or use another --out), then rerun",
        errno.EROFS: "the file system is read-only: extract into a writable --out",
        errno.EIO: "the disk reports an input/output error: check it (dmesg, fsck), then rerun",
    }

    @classmethod
    def of(cls, e: OSError, context: str = "") -> EnvironmentFailure:
        what = e.strerror or os.strerror(e.errno or 0)
        where = f": {e.filename}" if e.filename else ""
        hint = cls.HINTS.get(e.errno, "fix it, then rerun")
        return cls(f"{what}{where}{f' ({context})' if context else ''}: {hint}; finished items are kept")


def failed_by_environment(reason: str) -> bool:
    """Whether a recorded failure reason is an environment error (recorded by runs before
    EnvironmentFailure existed): such a job is redone rather than kept as failed."""
    return any(os.strerror(n) in reason for n in ENVIRONMENT_ERRNOS)


def record_path(out: Path, job_id: str) -> Path:
    return Path(out) / "items" / f"{job_id}.json"


def work_dir(out: Path, job_id: str) -> Path:
    """Where a job keeps partial work (the pose checkpoint) until its record is written."""
    return Path(out) / "work" / job_id


def read_record(out: Path, job_id: str) -> dict | None:
    try:
        rec = json.loads(record_path(out, job_id).read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as e:
        if environment_error(e):
            raise
        return None  # damaged: the job is redone
    return rec if isinstance(rec, dict) else None


def fingerprint(path, known: dict | None = None) -> dict:
    """{"path", "size", "mtime_ns", "sha256"} of an input file, or of a folder input's
    files (recursively; "files" is their number, the sha256 covers each relative name and
    content). With `known`, an earlier fingerprint of the same path whose size and mtime
    still match, its sha256 is taken over instead of reading the input again."""
    p = Path(path).resolve()
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file())
        stats = [f.stat() for f in files]
        quick = {
            "path": str(p),
            "size": sum(st.st_size for st in stats),
            "mtime_ns": max((st.st_mtime_ns for st in stats), default=0),
            "files": len(files),
        }
    else:
        st = p.stat()
        quick = {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if known and known.get("sha256") and all(known.get(k) == v for k, v in quick.items()):
        return {**quick, "sha256": known["sha256"]}
    if p.is_dir():
        h = hashlib.sha256()
        for f in files:
            h.update(f"{f.relative_to(p).as_posix()}\0{sha256_file(f)}\n".encode())
        sha = h.hexdigest()
    else:
        sha = sha256_file(p)
    return {**quick, "sha256": sha}


def _same_file(known: dict | None, path) -> bool:
    if path is None or known is None:
        return path is None and known is None
    try:
        return fingerprint(path, known)["sha256"] == known.get("sha256")
    except FileNotFoundError:
        return False  # gone: the job is redone, and fails with its reason


def same_source(rec: dict, job: Job) -> bool:
    """Whether a record was made from this job's input: the same content (sha256), wherever
    it lies now (a dataset folder that moved is still extracted). A record from before
    fingerprints is matched by its path, or by the sha256 its views hold."""
    ident = rec.get("identity")
    if ident:
        return _same_file(ident.get("source"), job.source)
    if rec.get("path") == str(job.source):
        return True
    shas = {v.get("sha256") for v in rec.get("views") or []} - {"", None}
    return bool(shas) and Path(job.source).is_file() and shas == {sha256_file(job.source)}


def conflict(out: Path, job: Job) -> str | None:
    """A one-line reason when `out` already holds another input under this job's id (a
    different path with different content), else None: such a job is refused, never taken
    for finished and never written over the other input's item."""
    rec = read_record(out, job.id)
    if rec is None or same_source(rec, job):
        return None
    ident = rec.get("identity") or {}
    old = (ident.get("source") or {}).get("path") or rec.get("path", "?")
    if old == str(Path(job.source).resolve()):
        return None  # the same input, changed since: redone
    return (
        f"{job.source} and {old} (already in {record_path(out, job.id)}) are different inputs with the same"
        f" id {job.id!r}: rename one, or extract into another --out"
    )


def is_done(out: Path, job: Job, cfg: ExtractConfig, retry_failed: bool = False) -> bool:
    """Whether `out` holds this job's finished record: the same settings, the same input
    content and audio, and not a failure to redo (retry_failed; or one of the machine's)."""
    rec = read_record(out, job.id)
    if rec is None or rec.get("settings") != cfg.digest():
        return False
    if rec.get("status") == "failed" and (retry_failed or failed_by_environment(rec.get("reason", ""))):
        return False
    if not same_source(rec, job):
        return False
    ident = rec.get("identity")
    if ident is None:
        return rec.get("audio_path") == job.audio
    return _same_file(ident.get("audio"), job.audio)


def run_job(job: Job, cfg: ExtractConfig, out) -> dict:
    """Process one job and write its outputs; never raises for bad input. Raises
    EnvironmentFailure (and writes no record) when the machine fails it.

    BLAS runs on one thread during the job: a matrix product's float32 sums depend on how
    many threads share it (the mel spectrogram differed in its last bit between this process
    and a pool worker, whose BLAS joblib limits), and the results must not depend on --jobs
    or on the machine's cores."""
    from threadpoolctl import threadpool_limits

    out = Path(out)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            return _run_job(job, cfg, out)
    except EnvironmentFailure:
        raise
    except MissingPackage as e:  # this install cannot extract (a models-only one): stop, record nothing
        raise EnvironmentFailure(str(e)) from None
    except Exception as e:
        env = environment_error(e)
        if env is None:
            raise
        raise EnvironmentFailure.of(env, f"extracting {job.source} into {out}") from None


def _run_job(job: Job, cfg: ExtractConfig, out: Path) -> dict:
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
    work = work_dir(out, job.id)
    try:
        ident = {"source": fingerprint(job.source), "audio": fingerprint(job.audio) if job.audio else None}
        base["identity"] = ident
        views = _extract(job, cfg, out, ident, work)
        rec = {**base, "status": "ok", "reason": "", "views": views}
    except MediaError as e:
        rec = {**base, "status": "failed", "reason": str(e), "views": []}
    except Exception as e:  # a bug or an unexpected library error: record it, keep going
        if isinstance(e, MissingPackage) or environment_error(e):
            raise  # not the input's fault: no record, the job stays to do
        tb = traceback.format_exc(limit=3).strip().splitlines()[-1]
        rec = {**base, "status": "failed", "reason": f"error: {type(e).__name__}: {e} ({tb})", "views": []}
    rec["seconds"] = round(time.perf_counter() - t_start, 3)
    write_json(record_path(out, job.id), rec)
    shutil.rmtree(work, ignore_errors=True)
    return rec


def _load_tracks(job: Job, cfg: ExtractConfig, ident: dict | None = None, work: Path | None = None) -> list[PoseTrack]:
    if cfg.pose_source == "mediapipe":
        ckpt = {}
        if work is not None and ident is not None:
            # The checkpoint holds for this video's content with these settings only.
            ckpt = {"checkpoint": work / "pose.npz", "checkpoint_key": f"{ident['source']['sha256']}:{cfg.digest()}"}
        if cfg.dancers != "main":
            return estimate_dancers(
                job.source,
                cfg.dancers,
                max_side=cfg.max_side,
                min_seconds=cfg.min_seconds,
                segment_seconds=cfg.segment_seconds,
                **ckpt,
            )
        track = estimate_video(
            job.source,
            max_side=cfg.max_side,
            model_complexity=cfg.model_complexity,
            segment_seconds=cfg.segment_seconds,
            **ckpt,
        )
        return [track]
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


def _extract(job: Job, cfg: ExtractConfig, out: Path, ident: dict | None = None, work: Path | None = None):
    audio_src = job.audio or job.source
    if cfg.pose_source != "mediapipe" and not job.audio:
        raise MediaError("no audio given for keypoint input (use --audio)")
    try:
        y, a_start = load_audio(audio_src)  # fail early on a missing audio stream, before the pose model
    except MediaError as e:
        if job.audio is None and str(e) == "no audio stream":
            raise MediaError(NO_AUDIO) from None
        raise
    sha = ident["source"]["sha256"] if ident and Path(job.source).is_file() else ""
    tracks = _load_tracks(job, cfg, ident, work)
    multi = cfg.pose_source == "mediapipe" and cfg.dancers != "main"
    if multi and not tracks:
        raise MediaError(f"no dancer tracked for {cfg.min_seconds:g} s or more (--dancers {cfg.dancers})")
    views = []
    for tr in tracks:
        vid = job.id if len(tracks) == 1 and not tr.view else f"{job.id}_{tr.view}"
        if multi:
            vid = dancer_item_id(job.id, tr.meta["dancer_index"])
            try:
                feats, info = build_features(tr, y, a_start, cfg)
            except MediaError as e:  # one dancer's track (too short with the audio): the others stay
                log.warning("%s: %s left out: %s", job.source, vid, e)
                continue
        else:
            feats, info = build_features(tr, y, a_start, cfg)
        audio = write_item_arrays(out / "items" / vid, feats, info.pop("audio"))
        clips = clip_records(vid, feats, audio, info, cfg)
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
    if multi and not views:
        raise MediaError(f"no dancer tracked for {cfg.min_seconds:g} s of overlapping audio and video")
    return views


def dancer_item_id(job_id: str, k: int) -> str:
    """The item of dancer k of a video extracted with --dancers all|N: `<video>__dancer<k>`."""
    return f"{job_id}__dancer{k}"


def write_item_arrays(stem: Path, feats: dict, audio: np.ndarray) -> np.ndarray:
    """<stem>.npz (the features) and <stem>.flac (16 kHz PCM-16 audio), each built in memory
    and written atomically (io.write_bytes: a full disk fails with a plain OSError). Returns
    the audio as stored (PCM-16, read back as float32: what the shards cut clips from)."""
    import soundfile as sf

    buf = io.BytesIO()
    np.savez(buf, **feats)
    write_bytes(stem.with_name(stem.name + ".npz"), buf.getbuffer())
    buf = io.BytesIO()
    sf.write(buf, np.clip(audio, -1, 1), A.SR, format="FLAC", subtype="PCM_16")
    write_bytes(stem.with_name(stem.name + ".flac"), buf.getbuffer())
    buf.seek(0)
    return sf.read(buf, dtype="float32")[0]


def clip_records(vid: str, feats: dict, audio: np.ndarray, info: dict, cfg: ExtractConfig) -> list[dict]:
    """The clips of one view: spans that never cross a camera cut (clips.shot_clips), their
    quality, and for each kept clip its beat labels computed on the clip alone
    (features.clip_beats on its pose and on its audio as stored): equal to what `momu-eval`
    computes on the clip's shard sample."""
    T = feats["pose"].shape[0]
    spans = shot_clips(
        T, info.get("shot_starts", []), cfg.clip_seconds, cfg.hop_seconds, cfg.min_seconds, info.get("cuts")
    )
    clips = []
    for k, c in enumerate(spans):
        s, e = c["start"], c["end"]
        q = assess_clip(feats["interp"][s:e], feats["person"][s:e], cfg.max_interp_frac, cfg.max_no_person_frac)
        if c.get("reason"):
            q.update(status="rejected", reason=c["reason"])
        rec = {"key": f"{vid}-{k:04d}", "start": s, "end": e, "shot": c["shot"], **q}
        if q["status"] == "ok":
            b = clip_beats(feats["pose"][s:e], audio[s * A.HOP : e * A.HOP])
            rec["beats"] = {name: v.tolist() for name, v in b.items()}
        clips.append(rec)
    return clips


def clean_track(track: PoseTrack, cfg: ExtractConfig, cuts=()):
    """Missing-joint mask, filled pixel coordinates and the per-video normalisation. With
    camera cuts (times of the new shots' first frames) joints are filled within each shot,
    never from the other side of a cut; a shot without a usable person keeps the whole
    track's filling (its clips are rejected for having no person)."""
    if not track.person.any():
        raise MediaError("no person found")
    miss = missing_mask(track, cfg.conf_threshold)
    try:
        xy = fill_missing(track.xy, miss, track.times)
        spans = shot_spans(len(track.times), shot_starts(track.times, cuts))
        for a, b in spans if len(spans) > 1 else ():
            try:
                xy[a:b] = fill_missing(track.xy[a:b], miss[a:b], track.times[a:b])
            except ValueError:
                pass
        centre, scale = normalisation(xy, track.person)
    except ValueError as e:
        raise MediaError(f"no usable person: {e}") from None
    return miss, xy, centre, scale


def shot_starts(times: np.ndarray, cuts) -> np.ndarray:
    """Index of the first of `times` at or after each cut time (the frames that start a shot)."""
    return np.searchsorted(np.asarray(times), np.asarray(cuts, dtype=np.float64) - 1e-9).astype(np.int64)


def frame_step(times: np.ndarray) -> float:
    return float(np.median(np.diff(times))) if len(times) > 1 else 1.0 / 30


def resample_track(track: PoseTrack, cfg: ExtractConfig, t_mel: np.ndarray, cuts=()) -> dict:
    """Cleaned, normalised motion on the given mel frame times, plus its masks. With camera
    cuts each shot is resampled on its own: the mel frames from a cut on take the new shot's
    frames, those before it hold the old shot's last one (never a movement between the two)."""
    miss, xy, centre, scale = clean_track(track, cfg, cuts)
    norm, times = (xy - centre) / scale, track.times
    spans = shot_spans(len(times), shot_starts(times, cuts))
    mel_edges = [*shot_starts(t_mel, [times[a] for a, _ in spans[1:]]), len(t_mel)]
    pose = np.zeros((len(t_mel), *xy.shape[1:]), np.float32)
    near = np.zeros(len(t_mel), np.int64)
    for (a, b), ma, mb in zip(spans, [0, *mel_edges[:-1]], mel_edges):
        if mb > ma:
            pose[ma:mb] = resample(norm[a:b], times[a:b], t_mel[ma:mb])
            near[ma:mb] = a + nearest_index(times[a:b], t_mel[ma:mb])
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
    track = estimate_video(
        path, max_side=cfg.max_side, model_complexity=cfg.model_complexity, segment_seconds=cfg.segment_seconds
    )
    t0, t1 = float(track.times[0]), float(track.times[-1]) + frame_step(track.times)
    t_mel = t0 + np.arange(int(np.floor((t1 - t0) * A.FPS))) / A.FPS
    m = resample_track(track, cfg, t_mel, track.meta.get("cuts") or [])  # no movement across a camera cut
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
    # Camera cuts (mediapipe tracks: momu_data.shots) inside the span, as mel frames.
    cuts = [c for c in track.meta.get("cuts") or [] if t0 < c < t1]
    m = resample_track(track, cfg, t_mel, cuts)
    starts = shot_starts(t_mel, cuts)
    keep = (starts > 0) & (starts < T)
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
        "cuts": [float(c) for c in np.asarray(cuts, dtype=np.float64)[keep]],
        "shot_starts": starts[keep].tolist(),
    }
    return feats, info


def load_item(out, item_id: str) -> dict:
    """Arrays of one extracted item (no pickle: allow_pickle=False)."""
    with np.load(Path(out) / "items" / f"{item_id}.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
