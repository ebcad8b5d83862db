"""Render generated samples for people to look at and listen to.

- render_skeleton_video: a stick figure of a pose sequence with its music, as an mp4.
- render_side_by_side: dance-to-music: the source dance video next to its skeleton, with
  the generated music replacing the video's own sound.
- plot_beats: a PNG of the music onset envelope and the kinematic amplitude with their beats.

Poses are [T, 14, 2] in the toolkit's convention (momu_data.skeleton: torso units centred on
the hips, x right, y down) at `fps` frames per second, frame i at time i / fps. Audio is mono
float at `sr`, sample 0 at time 0 with pose frame 0.

The figure is fitted once to the extent of the whole clip (one scale and offset for every
frame), so travel across the floor and jumps show as movement in the frame instead of being
cancelled by a per-frame fit.

mp4 files: H.264 (libx264, yuv420p, CRF 20, preset superfast: 1.1 s less than veryfast for a
30 s sample at twice the size, about 2 MB) and AAC mono at the audio's own
rate; video frame k at k / out_fps; the file lasts as long as the shorter of motion and audio
(±1 video frame, the video being whole frames). Every output is written to a temporary file
next to its destination and renamed into place, so a crash or a reader never sees half a file.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import numpy as np

from momu_data import features
from momu_data import timebase as _audio
from momu_data.media import AudioMuxer, iter_frames, probe_video
from momu_data.optional import import_optional
from momu_data.skeleton import BONES, JOINTS, NUM_JOINTS, J

# ---------------------------------------------------------------------------------------
# Style. Colours are RGB (frames are RGB end to end; cv2 does not care about the order).

BACKGROUND = (24, 24, 28)
TEXT = (200, 200, 205)
DIM = (90, 90, 98)
TORSO = (225, 225, 230)
# The person's right side warm, the left side cool, so mirrored motion is easy to spot.
LIMB_COLOURS = {
    "right_arm": (255, 96, 64),
    "left_arm": (64, 150, 255),
    "right_leg": (255, 190, 40),
    "left_leg": (70, 210, 130),
    "torso": TORSO,
}
# Beat markers (and plot_beats' lines) use the same two colours, music vs motion.
MUSIC_COLOUR = (80, 200, 255)
DANCE_COLOUR = (255, 90, 200)

FLASH_S = 0.12  # how long a beat marker stays lit: about 3 frames at 25 fps
SHIFT = 4  # fractional bits of cv2 coordinates: sub-pixel motion stays smooth
ONE = 1 << SHIFT
HEAD_RADIUS = 0.22  # torso units; the nose is taken as the centre of the head
MARGIN = 0.06  # fraction of the panel kept free around the fitted figure
# The mp4s need PyAV and OpenCV, imported on first use: plot_beats and everything else here
# work without them (`momu-generate --no-render` on a models-only install, docs/install.md).
RENDER_NEEDS = ("av", "cv2")
RENDER_PURPOSE = "rendering the video (skip it with --no-render)"

# Read once: mkstemp creates files 0600, and the renamed output should get the permissions
# an ordinary open() would have given it. (os.umask can only be read by setting it.)
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def _limb_of(child: int) -> str:
    name = JOINTS[child]
    for side in ("right", "left"):
        if name in (f"{side}_shoulder", f"{side}_elbow", f"{side}_wrist"):
            return f"{side}_arm"
        if name in (f"{side}_knee", f"{side}_ankle"):
            return f"{side}_leg"
    return "torso"  # nose-neck and neck-hip bones


# Drawing order: left limbs, trunk, right limbs, the same in every frame so that crossing
# limbs never flicker in front of each other. The hip line is not a bone of BONES, but
# without it the pelvis reads as two loose strokes.
_SEGMENTS = (
    [(a, b, _limb_of(b)) for a, b in BONES if _limb_of(b).startswith("left")]
    + [(a, b, "torso") for a, b in BONES if _limb_of(b) == "torso"]
    + [(J["right_hip"], J["left_hip"], "torso")]
    + [(a, b, _limb_of(b)) for a, b in BONES if _limb_of(b).startswith("right")]
)
_JOINT_COLOURS = {}
for _a, _b, _limb in _SEGMENTS:
    _JOINT_COLOURS.setdefault(_b, LIMB_COLOURS[_limb])
_JOINT_COLOURS.setdefault(J["neck"], TORSO)


# ---------------------------------------------------------------------------------------
# Input checks.


def _check_pose(pose) -> np.ndarray:
    pose = np.asarray(pose, dtype=np.float64)
    if pose.ndim != 3 or pose.shape[1:] != (NUM_JOINTS, 2):
        raise ValueError(f"expected a pose sequence [T, {NUM_JOINTS}, 2], got {list(pose.shape)}")
    if pose.shape[0] < 1:
        raise ValueError("pose sequence is empty")
    return pose


def _check_audio(audio) -> np.ndarray:
    y = np.asarray(audio, dtype=np.float32)
    if y.ndim == 2 and 1 in y.shape:  # [1, n] or [n, 1]: a mono signal with a channel axis
        y = y.reshape(-1)
    if y.ndim != 1:
        raise ValueError(f"expected mono audio [n], got {list(y.shape)}")
    if not np.isfinite(y).all():
        # A diverged vocoder gives NaNs; encoding them would produce a silent or clicking
        # file that looks like a rendering bug rather than a model bug.
        raise ValueError("audio contains NaN/inf samples")
    # AAC decoders clip at full scale anyway; clipping here keeps the encoder's input sane.
    return np.clip(y, -1.0, 1.0)


def _rate(fps) -> Fraction:
    """A frame rate as an exact fraction (29.97 -> 30000/1001) for the stream time base."""
    r = Fraction(fps).limit_denominator(1001)
    if r <= 0:
        raise ValueError(f"frame rate must be positive, got {fps}")
    return r


def _even(n: float) -> int:
    """yuv420p needs even frame sizes."""
    return max(2, int(round(n / 2.0)) * 2)


# ---------------------------------------------------------------------------------------
# Atomic output.


@contextmanager
def _atomic(path, suffix: str) -> Iterator[str]:
    """Yield a temporary path next to `path`; rename it over `path` on success, delete it on
    failure. The temporary keeps the real suffix so writers that go by extension still work."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


# ---------------------------------------------------------------------------------------
# Drawing.


class SkeletonPainter:
    """Draws frames of one pose sequence into a fixed-size panel.

    The scale and offset are fitted once to every finite joint of the whole clip (plus the
    head circle), so the figure's travel is visible. Joints that are NaN are not drawn, nor
    the bones that touch them.
    """

    def __init__(
        self, pose, fps: float, size: tuple[int, int], title: str | None = None, music_beats=None, dance_beats=None
    ):
        self.pose = _check_pose(pose)
        self.fps = float(fps)
        self.width, self.height = int(size[0]), int(size[1])
        self.music_beats = np.sort(np.asarray(music_beats if music_beats is not None else [], np.float64))
        self.dance_beats = np.sort(np.asarray(dance_beats if dance_beats is not None else [], np.float64))
        self.show_beats = music_beats is not None or dance_beats is not None
        short = min(self.width, self.height)
        self.font_scale = max(0.35, short / 960.0)
        self.text_h = int(round(28 * self.font_scale / 0.5))
        # Title and beat legend live in a strip at the top so that they never cover the figure.
        top = self.text_h + 4 if (title or self.show_beats) else 0
        self._fit(top)
        self.thickness = max(2, int(round(0.055 * self.scale)))
        self.joint_r = self.thickness * 0.75 + 1.0
        self.background = self._background(title, top)

    def _fit(self, top: int) -> None:
        p = self.pose.reshape(-1, 2)
        p = p[np.isfinite(p).all(axis=1)]
        if p.size == 0:  # nothing to draw: any sensible box will do
            lo, hi = np.array([-1.5, -2.0]), np.array([1.5, 2.5])
        else:
            lo, hi = p.min(axis=0), p.max(axis=0)
            # The head circle is drawn around the nose and may stick out of the joints' box.
            head = self.pose[:, J["nose"]]
            head = head[np.isfinite(head).all(axis=1)]
            if head.size:
                lo = np.minimum(lo, head.min(axis=0) - HEAD_RADIUS)
                hi = np.maximum(hi, head.max(axis=0) + HEAD_RADIUS)
        # A figure standing still still needs a finite scale: at least one torso unit across.
        span = np.maximum(hi - lo, 1.0)
        centre = (lo + hi) / 2.0
        m = MARGIN * min(self.width, self.height)
        avail_w, avail_h = self.width - 2 * m, self.height - top - 2 * m
        self.scale = float(min(avail_w / span[0], avail_h / span[1]))
        # Room for the stroke width so that extreme joints are not cut at the frame edge.
        self.scale *= 1.0 - 0.04
        self.offset = np.array([self.width / 2.0, top + m + avail_h / 2.0]) - centre * self.scale

    def _background(self, title, top) -> np.ndarray:
        img = np.empty((self.height, self.width, 3), np.uint8)
        img[:] = BACKGROUND
        cv2 = import_optional("cv2", purpose=RENDER_PURPOSE)
        font = cv2.FONT_HERSHEY_SIMPLEX
        fs, th = self.font_scale, max(1, int(round(self.font_scale * 2)))
        base = int(round(self.text_h * 0.72))
        if title:
            cv2.putText(img, str(title), (8, base), font, fs, TEXT, th, cv2.LINE_AA)
        if self.show_beats:
            # Legend: "music" and "dance" labels with unlit rings that light up on beats.
            r = max(4, int(round(self.text_h * 0.28)))
            x = self.width - 8
            self._markers = []
            for label, colour in (("dance", DANCE_COLOUR), ("music", MUSIC_COLOUR)):
                (tw, _), _ = cv2.getTextSize(label, font, fs * 0.85, th)
                x -= tw
                cv2.putText(img, label, (x, base), font, fs * 0.85, DIM, th, cv2.LINE_AA)
                x -= r + 6
                centre = (x, base - int(round(self.text_h * 0.25)))
                cv2.circle(img, centre, r, DIM, 1, cv2.LINE_AA)
                self._markers.append((centre, r, colour))
                x -= r + 14
            self._markers.reverse()  # (music, dance)
        return img

    def pose_at(self, t: float) -> np.ndarray:
        """Linearly interpolated pose [14, 2] at time t (held at the ends)."""
        T = self.pose.shape[0]
        x = min(max(t * self.fps, 0.0), T - 1.0)
        i = int(math.floor(x))
        w = x - i
        if w <= 1e-9 or i + 1 >= T:
            return self.pose[i]
        return (1.0 - w) * self.pose[i] + w * self.pose[i + 1]

    @staticmethod
    def _lit(beats: np.ndarray, t: float, flash: float) -> bool:
        k = int(np.searchsorted(beats, t, side="right")) - 1
        return k >= 0 and t - beats[k] < flash

    def frame(self, t: float, out: np.ndarray | None = None, frame_dt: float = 0.0) -> np.ndarray:
        """The panel at time t as RGB uint8 [H, W, 3] (into `out` when given)."""
        cv2 = import_optional("cv2", purpose=RENDER_PURPOSE)
        img = out if out is not None else np.empty_like(self.background)
        img[:] = self.background
        px = self.pose_at(t) * self.scale + self.offset
        ok = np.isfinite(px).all(axis=1)
        q = np.zeros((NUM_JOINTS, 2), np.int64)
        q[ok] = np.rint(px[ok] * ONE).astype(np.int64)
        pts = [tuple(map(int, v)) for v in q]
        th = self.thickness
        for a, b, limb in _SEGMENTS:
            if ok[a] and ok[b]:
                cv2.line(img, pts[a], pts[b], LIMB_COLOURS[limb], th, cv2.LINE_AA, SHIFT)
        nose = J["nose"]
        if ok[nose]:
            cv2.circle(
                img, pts[nose], int(round(HEAD_RADIUS * self.scale * ONE)), TORSO, max(2, th - 1), cv2.LINE_AA, SHIFT
            )
        jr = int(round(self.joint_r * ONE))
        for j in range(NUM_JOINTS):
            if ok[j] and j != nose:
                cv2.circle(img, pts[j], jr, _JOINT_COLOURS.get(j, TORSO), -1, cv2.LINE_AA, SHIFT)
        if self.show_beats:
            # Lit for FLASH_S after a beat, and at least one frame so no beat is skipped.
            flash = max(FLASH_S, frame_dt)
            for (centre, r, colour), beats in zip(self._markers, (self.music_beats, self.dance_beats)):
                if self._lit(beats, t, flash):
                    cv2.circle(img, centre, r, colour, -1, cv2.LINE_AA)
        return img


def _beats_for(pose: np.ndarray, fps: float, y: np.ndarray | None, sr: int):
    """(music onsets, kinematic beats) for the markers; kinematic beats need a finite pose
    (the directogram of a NaN is meaningless), so a pose with gaps gets no dance markers."""
    music = features.onsets(y, sr) if y is not None and y.size else np.zeros(0)
    if pose.shape[0] >= 2 and np.isfinite(pose).all():
        dance = features.kinematic_beats(pose, fps)
    else:
        dance = np.zeros(0)
    return music, dance


# ---------------------------------------------------------------------------------------
# Encoding.


def _encode_mp4(
    path: str,
    frames: Iterable[np.ndarray],
    width: int,
    height: int,
    rate: Fraction,
    audio: np.ndarray | None,
    sr: int,
    audio_end: float | None = None,
    crf: int = 20,
    preset: str = "superfast",
    threads: int = 0,
) -> int:
    """Encode RGB frames (frame k at k / rate) and mono audio to an mp4; return the frame count.

    Audio is fed as the video advances (up to the end of each frame), so the muxer
    interleaves without buffering the whole track. The audio is cut at `audio_end` seconds,
    or at the end of the last video frame when None, so both streams end together even when
    the number of frames is only known once `frames` is exhausted.
    """
    av, cv2 = import_optional(*RENDER_NEEDS, purpose=RENDER_PURPOSE)
    with av.open(path, "w", format="mp4", options={"movflags": "+faststart"}) as c:
        vs = c.add_stream("libx264", rate=rate, options={"preset": preset, "crf": str(crf)})
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.codec_context.thread_count = threads  # 0: let x264 choose from the core count
        as_ = None
        if audio is not None and audio.size:
            # The "fast" AAC coder is about twice as fast as the default two-loop search,
            # and at 64 kbit/s mono the difference is inaudible for previews.
            as_ = c.add_stream("aac", rate=sr, layout="mono", options={"aac_coder": "fast"})
            as_.bit_rate = 64000
        mux = AudioMuxer(c, as_, audio, sr) if as_ is not None else None

        n_frames = 0
        for k, img in enumerate(frames):
            # OpenCV's RGB->I420 is several times faster than swscale's rgb24 path here,
            # and both use BT.601 limited range, what players assume for untagged SD video.
            yuv = cv2.cvtColor(img, cv2.COLOR_RGB2YUV_I420)
            vf = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            vf.pts = k
            vf.time_base = 1 / rate
            for pkt in vs.encode(vf):
                c.mux(pkt)
            n_frames = k + 1
            if as_ is not None:
                t_end = n_frames / rate if audio_end is None else min(audio_end, n_frames / rate)
                mux.feed(int(round(float(t_end) * sr)))
        if n_frames == 0:
            raise ValueError("no video frames to encode")
        if as_ is not None:
            end = float(n_frames / rate) if audio_end is None else audio_end
            mux.feed(int(round(end * sr)))
        for pkt in vs.encode(None):
            c.mux(pkt)
        if mux is not None:
            mux.close()
    return n_frames


# ---------------------------------------------------------------------------------------
# Public API.


def render_skeleton_video(
    path,
    pose,
    audio=None,
    fps: float = _audio.FPS,
    sr: int = _audio.SR,
    size: tuple[int, int] = (480, 480),
    out_fps: float = 25,
    title: str | None = None,
    beats: bool = True,
    threads: int = 0,
    preset: str = "superfast",
) -> Path:
    """Write an mp4 of the skeleton of `pose` [T, 14, 2] (at `fps`) with `audio` [n] (at `sr`).

    The clip lasts min(T / fps, n / sr) (T / fps without audio), rounded to whole frames of
    `out_fps`; the motion is linearly interpolated to the output frame times. With `beats`,
    two markers at the top flash on music onsets (momu_data.features.onsets) and kinematic
    beats (momu_data.features.kinematic_beats), the events the beat metrics compare.
    `size` is (width, height), rounded to even numbers for yuv420p. Returns the path.
    """
    import_optional(*RENDER_NEEDS, purpose=RENDER_PURPOSE)  # before any work: fail fast
    pose = _check_pose(pose)
    y = _check_audio(audio) if audio is not None else None
    if y is not None and y.size == 0:
        y = None
    rate = _rate(out_fps)
    width, height = _even(size[0]), _even(size[1])
    duration = pose.shape[0] / float(fps)
    if y is not None:
        duration = min(duration, y.size / float(sr))
    n_frames = max(1, int(round(duration * rate)))
    music, dance = _beats_for(pose, fps, y, sr) if beats else (None, None)
    painter = SkeletonPainter(pose, fps, (width, height), title, music, dance)
    dt = float(1 / rate)
    buf = np.empty((height, width, 3), np.uint8)
    frames = (painter.frame(k * dt, buf, dt) for k in range(n_frames))
    with _atomic(path, ".mp4") as tmp:
        _encode_mp4(tmp, frames, width, height, rate, y, sr, audio_end=duration, preset=preset, threads=threads)
    return Path(path)


def render_side_by_side(
    path,
    video_path,
    pose,
    audio,
    fps: float = _audio.FPS,
    sr: int = _audio.SR,
    height: int = 480,
    out_fps: float | None = None,
    start: float = 0.0,
    title: str | None = None,
    beats: bool = True,
    threads: int = 0,
    preset: str = "superfast",
) -> Path:
    """Dance-to-music: the source video (left) next to the skeleton of `pose` (right, a
    height x height panel), with `audio` as the only sound.

    The source is streamed (momu_data.media.iter_frames), never held in memory, and each
    output frame shows the latest source frame at or before its time (sample and hold, so
    variable frame rate needs no special case). `start` is the time in the source, in
    seconds after its first frame, that pose frame 0 and audio sample 0 belong to (an
    extracted clip's offset); the video before it is skipped. The output lasts
    min(video from `start`, audio), in whole frames of `out_fps` (default: the source's
    frame rate, at most 30). The pose is held at its last frame if it is shorter.
    Returns the path.
    """
    cv2 = import_optional(*RENDER_NEEDS, purpose=RENDER_PURPOSE)[1]  # before any work: fail fast
    pose = _check_pose(pose)
    y = _check_audio(audio)
    if start < 0:
        raise ValueError(f"start must be >= 0 s, got {start}")
    if y.size == 0:
        raise ValueError("audio is empty: the side-by-side exists to hear the new audio")
    info = probe_video(video_path)
    rate = _rate(out_fps if out_fps is not None else min(info.fps, 30.0))
    height = _even(height)
    src_w = _even(info.width * height / info.height)
    width = src_w + height
    audio_dur = y.size / float(sr)
    music, dance = _beats_for(pose, fps, y, sr) if beats else (None, None)
    painter = SkeletonPainter(pose, fps, (height, height), title, music, dance)
    # Let FFmpeg's scaler shrink big sources while decoding (cheaper than converting full
    # frames to RGB and resizing after); cv2 then fixes the exact size.
    scale = height / info.height
    max_side = int(math.ceil(max(info.width, info.height) * scale)) if scale < 1 else None
    dt = float(1 / rate)

    def frames() -> Iterator[np.ndarray]:
        out = np.empty((height, width, 3), np.uint8)
        it = iter_frames(video_path, max_side=max_side)
        first = cur = nxt = None
        src_dt = 1.0 / max(info.fps, 1e-3)
        for t_src, img in it:  # the first frame's time is the source's zero
            first = t_src
            nxt = (0.0, img)
            break
        if nxt is None:
            return
        k = 0
        while True:
            t = k * dt
            if t >= audio_dur - 1e-9:
                return
            # Advance to the latest source frame at or before start + t.
            while nxt is not None and nxt[0] <= start + t + 1e-6:
                cur = nxt
                nxt = None
                for t_src, img in it:
                    nxt = (t_src - first, img)
                    break
            if nxt is None and start + t >= cur[0] + src_dt - 1e-6:
                return  # past the last source frame's display time: the video has ended
            src = cur[1]
            if src.shape[0] != height or src.shape[1] != src_w:
                src = cv2.resize(
                    src, (src_w, height), interpolation=cv2.INTER_AREA if src.shape[0] > height else cv2.INTER_LINEAR
                )
            out[:, :src_w] = src
            painter.frame(t, out[:, src_w:], dt)
            yield out
            k += 1

    with _atomic(path, ".mp4") as tmp:
        # audio_end=None: cut the audio at the last frame, whichever of video and audio ended.
        _encode_mp4(tmp, frames(), width, height, rate, y, sr, audio_end=None, preset=preset, threads=threads)
    return Path(path)


def plot_beats(
    path_png, audio, pose, fps: float = _audio.FPS, sr: int = _audio.SR, title: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Write a PNG of the music onset envelope (top) and the kinematic amplitude (bottom)
    against time, with music onsets and kinematic beats as vertical lines on both panels.

    Returns (music onset times, kinematic beat times) in seconds: momu_data.features.onsets
    and momu_data.features.kinematic_beats, the events the beat metrics score.
    """
    import librosa
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    y = _check_audio(audio)
    pose = _check_pose(pose)
    if not np.isfinite(pose).all():
        raise ValueError("pose contains NaN/inf: fill gaps first (the kinematic amplitude needs every joint)")
    music = features.onsets(y, sr)
    env = librosa.onset.onset_strength(y=y, sr=sr, hop_length=_audio.HOP) if y.size else np.zeros(0)
    t_env = np.arange(env.size) * _audio.HOP / float(sr)
    # The amplitude and the beats are computed at the mel frame rate, as the metrics do.
    pose_m = features.resample_to_fps(pose, fps, _audio.FPS)
    amp = features.kinematic_amplitude(pose_m)
    dance = features.kinematic_beats(pose, fps)
    t_amp = np.arange(amp.size) / _audio.FPS

    mc = tuple(c / 255 for c in MUSIC_COLOUR)
    dc = tuple(c / 255 for c in DANCE_COLOUR)
    fig = Figure(figsize=(11, 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    peak = float(env.max()) if env.size else 0.0
    ax1.plot(t_env, env / peak if peak > 0 else env, color="0.25", lw=1)
    ax1.set_ylabel("onset strength\n(normalised)")
    ax2.plot(t_amp, amp, color="0.25", lw=1)
    ax2.set_ylabel("kinematic\namplitude")
    ax2.set_xlabel("time (s)")
    for ax in (ax1, ax2):
        for i, b in enumerate(music):
            ax.axvline(b, color=mc, lw=1.2, alpha=0.9, label=f"music onsets ({len(music)})" if i == 0 else None)
        for i, b in enumerate(dance):
            ax.axvline(
                b, color=dc, lw=1.2, ls="--", alpha=0.9, label=f"kinematic beats ({len(dance)})" if i == 0 else None
            )
        ax.set_ylim(-0.02, 1.05)
        ax.grid(axis="x", alpha=0.2)
    ax2.set_xlim(0.0, max(t_env[-1] if t_env.size else 0.0, t_amp[-1] if t_amp.size else 0.0, 1e-3))
    if len(music) or len(dance):
        ax1.legend(loc="upper right", fontsize=8, framealpha=0.8)
    if title:
        fig.suptitle(str(title))
    with _atomic(path_png, ".png") as tmp:
        fig.savefig(tmp, format="png")
    return np.asarray(music, np.float64), np.asarray(dance, np.float64)
