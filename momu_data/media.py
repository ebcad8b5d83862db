"""Media decoding with PyAV: video frames with timestamps, streamed, and 16 kHz mono audio.

Frames are yielded one at a time (never the whole video in memory) with their
presentation time, so variable frame rate needs no special case. Rotation metadata
(portrait phone video) is applied so that frames are upright, as a player shows them.

PyAV is imported on first use. Without it (a models-only machine that could not fetch it),
load_audio and audio_sample_rate still read the files libsndfile reads (WAV, FLAC, OGG),
through soundfile and librosa's default resampler (soxr_hq), and anything else names the
package to install (momu_data.optional).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from momu_data.io import environment_error
from momu_data.optional import MissingPackage, import_optional, missing_message
from momu_data.parallel import thread_budget
from momu_data.timebase import SR

VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm")
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".wma")
# What load_audio reads without PyAV (soundfile; libsndfile's formats we rely on).
SOUNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga")
PURPOSE = "reading audio and video files"


class MediaError(Exception):
    """A media file cannot be used; the message is the one-line reason for the manifest."""


@dataclass
class VideoInfo:
    width: int  # upright (after rotation)
    height: int
    rotation: int  # degrees counter-clockwise applied to decoded frames
    fps: float  # average rate, for progress estimates only
    duration: float  # seconds, best estimate from the container (0 if unknown)
    codec: str
    est_frames: int  # estimate; containers may report 0


def _open(path):
    av = import_optional("av", purpose=f"reading {Path(path).name}")
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError) as e:  # unreadable, not a media file, missing
        if environment_error(e):
            raise  # permission denied, I/O error: the machine's fault, not the file's (see extract)
        raise MediaError(f"unreadable: {type(e).__name__}: {e}") from None


def _rotation_of(stream, first_frame) -> int:
    rot = getattr(first_frame, "rotation", 0) or 0
    return int(round(rot / 90.0)) * 90 % 360


def probe_video(path) -> VideoInfo:
    """Stream facts, reading only the first frame (for its rotation)."""
    av = import_optional("av", purpose=PURPOSE)
    with _open(path) as c:
        if not c.streams.video:
            raise MediaError("no video stream")
        vs = c.streams.video[0]
        rot = 0
        try:
            for frame in c.decode(vs):
                rot = _rotation_of(vs, frame)
                break
            else:
                raise MediaError("no decodable video frame")
        except av.error.FFmpegError as e:
            raise MediaError(f"truncated or corrupt video: {e}") from None
        fps = float(vs.average_rate or vs.guessed_rate or 0) or 30.0
        dur = 0.0
        if vs.duration is not None and vs.time_base is not None:
            dur = float(vs.duration * vs.time_base)
        elif c.duration is not None:
            dur = c.duration / 1e6
        w, h = vs.codec_context.width, vs.codec_context.height
        if rot in (90, 270):
            w, h = h, w
        est = vs.frames or int(math.ceil(dur * fps))
        return VideoInfo(w, h, rot, fps, dur, vs.codec_context.name, est)


def iter_frames(path, max_side: int | None = None, start: float = 0.0) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (time_s, rgb uint8 [H, W, 3]) for each decoded frame, upright.

    max_side downsizes in FFmpeg's scaler before conversion (cheaper than converting the
    full frame); the caller rescales coordinates by the returned image size. A decoding
    error mid-stream raises MediaError after the frames that did decode. start > 0: only
    the frames at or after start seconds, found by seeking to the keyframe before it (the
    same frames, decoded from the same keyframe, as reading from the beginning gives);
    where seeking cannot be trusted (no timestamps, landing after start) every frame is
    decoded and the earlier ones skipped.
    """
    yield from _iter_frames(path, max_side, start, seek=start > 0)


def _iter_frames(path, max_side, start: float, seek: bool):
    av = import_optional("av", purpose=PURPOSE)
    with _open(path) as c:
        if not c.streams.video:
            raise MediaError("no video stream")
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        threads = thread_budget()  # a pool worker's share of the cores; None: FFmpeg's default (all)
        if threads is not None:
            vs.codec_context.thread_count = threads
        to_rgb = _RgbConverter(av, threads)
        if seek and vs.time_base:
            c.seek(int(start / vs.time_base), stream=vs, backward=True, any_frame=False)
        rot = None
        t_prev = -math.inf
        try:
            for frame in c.decode(vs):
                if seek and t_prev == -math.inf and (frame.time is None or frame.time > start):
                    # Without timestamps, or past the frames wanted: decode from the start instead.
                    yield from _iter_frames(path, max_side, start, seek=False)
                    return
                if rot is None:
                    rot = _rotation_of(vs, frame)
                t = frame.time
                if t is None:  # no pts: continue the previous frame's clock
                    rate = float(vs.average_rate or 30)
                    t = (t_prev + 1.0 / rate) if t_prev > -math.inf else 0.0
                t = float(t)
                if t <= t_prev:  # out-of-order or duplicated timestamps: drop
                    continue
                t_prev = t
                if t < start:
                    continue
                w, h = frame.width, frame.height
                if max_side and max(w, h) > max_side:
                    s = max_side / max(w, h)
                    w, h = max(2, int(round(w * s / 2)) * 2), max(2, int(round(h * s / 2)) * 2)
                img = to_rgb(frame, w, h)
                if rot:
                    img = np.ascontiguousarray(np.rot90(img, k=rot // 90))
                yield t, img
        except av.error.FFmpegError as e:
            raise MediaError(f"truncated or corrupt video: {e}") from None


class _RgbConverter:
    """rgb24 arrays of a video's frames (scaled to width x height) through one swscale context.
    frame.to_ndarray(format=...) builds a new context for every frame, and since PyAV 17 also
    starts and ends that context's scaler threads every frame; the pixels are the same.
    threads: the scaler's threads (None: one per core; PyAV before 17 has no such option)."""

    def __init__(self, av, threads: int | None):
        self._reformatter = av.video.reformatter.VideoReformatter()
        self._threads = {"threads": threads or 0}

    def __call__(self, frame, width: int, height: int) -> np.ndarray:
        try:
            out = self._reformatter.reformat(frame, width, height, "rgb24", **self._threads)
        except TypeError:
            if not self._threads:
                raise
            self._threads = {}  # PyAV < 17: single-threaded scaling, no option to set
            out = self._reformatter.reformat(frame, width, height, "rgb24")
        return out.to_ndarray()


def load_audio(path, sr: int = SR, mono: bool = True) -> tuple[np.ndarray, float]:
    """Decode the first audio stream, resample to sr, downmix to mono by channel mean.

    Returns (samples float32 [n] (or [C, n] if not mono), start_time_s of the first sample
    on the container's clock, so the caller can align audio with video timestamps). Without
    PyAV, a WAV, FLAC or OGG file is read with soundfile instead (start 0).
    """
    try:
        av = import_optional("av", purpose=PURPOSE)
    except MissingPackage:
        return _load_audio_soundfile(path, sr, mono), 0.0
    with _open(path) as c:
        if not c.streams.audio:
            raise MediaError("no audio stream")
        st = c.streams.audio[0]
        resampler = None
        chunks: list[np.ndarray] = []
        start = None

        def keep(frames):
            # Downmix each decoded chunk at once: the whole multichannel signal is never held,
            # so memory is the mono output (3.8 MB per minute) and one copy while joining.
            for out in frames:
                a = out.to_ndarray()
                chunks.append(a.mean(axis=0, dtype=np.float32) if mono else a.astype(np.float32, copy=False))

        try:
            for frame in c.decode(st):
                if start is None:
                    start = float(frame.time) if frame.time is not None else 0.0
                if resampler is None:
                    # Keep the channel layout: we downmix by plain mean ourselves, which
                    # FFmpeg's default rematrixing (with -3 dB centre gains) does not do.
                    resampler = av.AudioResampler(format="fltp", layout=frame.layout.name, rate=sr)
                keep(resampler.resample(frame))
            if resampler is not None:
                keep(resampler.resample(None))
        except av.error.FFmpegError as e:
            raise MediaError(f"truncated or corrupt audio: {e}") from None
        if not chunks:
            raise MediaError("audio stream has no decodable samples")
        return np.concatenate(chunks, axis=-1), (start or 0.0)


def audio_sample_rate(path) -> int:
    """The sample rate of the first audio stream, as decoded (load_audio at it only converts
    the samples to float: no resampling)."""
    try:
        import_optional("av", purpose=PURPOSE)
    except MissingPackage:
        return int(_soundfile_info(path).samplerate)
    with _open(path) as c:
        if not c.streams.audio:
            raise MediaError("no audio stream")
        rate = c.streams.audio[0].codec_context.sample_rate
    if not rate:
        raise MediaError("audio stream has no sample rate")
    return int(rate)


def _soundfile_info(path):
    """soundfile's info of a file load_audio may read without PyAV; MissingPackage (PyAV) for any
    other file, MediaError for one libsndfile cannot read."""
    import soundfile as sf

    path = Path(path)
    if path.suffix.lower() not in SOUNDFILE_EXTENSIONS:
        raise MissingPackage(missing_message(f"reading {path.name} (without PyAV only WAV, FLAC and OGG)", ["av"]))
    try:
        return sf.info(str(path))
    except sf.LibsndfileError as e:
        raise MediaError(f"unreadable: {e}") from None
    except OSError as e:
        if environment_error(e):
            raise
        raise MediaError(f"unreadable: {type(e).__name__}: {e}") from None


def _load_audio_soundfile(path, sr: int, mono: bool) -> np.ndarray:
    """load_audio without PyAV: libsndfile decodes, channels averaged (mono), resampled to sr
    with librosa's default (soxr_hq)."""
    import librosa
    import soundfile as sf

    native = int(_soundfile_info(path).samplerate)
    try:
        y, _ = sf.read(str(path), dtype="float32", always_2d=True)  # [n, C]
    except sf.LibsndfileError as e:
        raise MediaError(f"truncated or corrupt audio: {e}") from None
    if y.size == 0:
        raise MediaError("audio stream has no decodable samples")
    y = y.mean(axis=1, dtype=np.float32)[:, None] if mono else y
    if native != sr:
        y = librosa.resample(y, orig_sr=native, target_sr=sr, res_type="soxr_hq", axis=0)
    return np.ascontiguousarray(y[:, 0] if mono else y.T, dtype=np.float32)


def find_videos(paths) -> list[tuple[Path, Path]]:
    """Expand files and folders (recursively) into (video, root) pairs, sorted.

    root is the folder the video was found under (its parent for a file argument); the
    video's id is its path relative to root, so ids stay stable across machines. Both are
    absolute but keep symbolic links as named (a folder of links to videos stored elsewhere
    gives the links' names); a file reached twice (the same file, or a link and its target)
    is listed once, first as found.
    """
    found: dict[Path, tuple[Path, Path]] = {}
    for p in map(Path, paths):
        if p.is_dir():
            root = Path(os.path.abspath(p))
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS:
                    found.setdefault(f.resolve(), (Path(os.path.abspath(f)), root))
        elif p.is_file():
            f = Path(os.path.abspath(p))
            found.setdefault(p.resolve(), (f, f.parent))
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    return sorted(found.values())


def item_id(path: Path, root: Path) -> str:
    """A dot-free, filesystem-safe id from a path relative to root (webdataset splits keys on
    dots); symbolic links are not followed (a link's id is its own name)."""
    rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(root))
    s = "__".join(rel.with_suffix("").parts)
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in s)


class AudioMuxer:
    """Feed mono float32 audio into an (AAC) stream of an open PyAV container up to a sample
    position, in 1024-sample frames, so audio is interleaved with the video as it advances
    and the muxer needs no large buffers; `close()` flushes the encoder."""

    def __init__(self, container, stream, audio: np.ndarray, sr: int, chunk: int = 1024):
        self.c, self.stream, self.audio, self.sr, self.chunk = container, stream, audio, sr, chunk
        self.pos = 0

    def feed(self, until: int) -> None:
        from fractions import Fraction

        av = import_optional("av", purpose="writing the mp4")
        until = min(int(until), self.audio.size)
        while self.pos < until:
            n = min(self.chunk, until - self.pos)
            af = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(self.audio[None, self.pos : self.pos + n]), format="fltp", layout="mono"
            )
            af.sample_rate = self.sr
            af.pts = self.pos
            af.time_base = Fraction(1, self.sr)
            for pkt in self.stream.encode(af):
                self.c.mux(pkt)
            self.pos += n

    def close(self) -> None:
        for pkt in self.stream.encode(None):
            self.c.mux(pkt)
