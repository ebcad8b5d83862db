"""Synthetic dance videos with exact ground truth: the toolkit's embedded demo dataset.

Each video is a cartoon dancer (filled, clothed, with a face) dancing to procedurally
generated music (drums, bass, chords; four styles, 80-160 BPM). Beside every
`synth_XXX.mp4` lies `synth_XXX.gt.json` with the truth the real pipeline should
recover: the music's tempo, beats and downbeats, and the dancer's 14 keypoints at every
frame (pixels, x right, y down, momu_data.skeleton.JOINTS order; the figure faces the
camera, so the person's right side is on the image's left).

Video `i` depends only on `(seed, i)`: a numpy SeedSequence spawned from both, so a set
can be generated in any order, in parallel (`synthesize_one` is a plain function of its
arguments), or extended with more videos without changing the existing ones. Files are
written atomically (a temporary name in the same folder, then os.replace); the sidecar
is written after the video, so its presence marks a finished pair, and a rerun skips
pairs that are complete and were made with the same parameters.

    from momu_data.synth import synthesize
    paths = synthesize(8, seconds=12.0, out=Path("data/synth"), seed=0)
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from momu_data.parallel import map_unordered
from momu_data.skeleton import JOINTS
from momu_data.synth.choreography import Dance, choreograph, random_body
from momu_data.synth.music import DEFAULT_SR, STYLES, Song, make_song
from momu_data.synth.render import FigureRenderer, Look, make_background, random_look, write_mp4

__all__ = [
    "synthesize",
    "synthesize_one",
    "make_clip",
    "render_frames",
    "load_gt",
    "Clip",
    "STYLES",
    "DEFAULT_WIDTH",
    "DEFAULT_HEIGHT",
    "DEFAULT_FPS",
]

# 384x384 keeps encoding fast (about 0.1 MPixel per frame) while the figure, about 300
# pixels tall, is large enough for mediapipe's 256x256 landmark crop.
DEFAULT_WIDTH = 384
DEFAULT_HEIGHT = 384
DEFAULT_FPS = 30.0
GT_VERSION = 1


@dataclass
class Clip:
    """Everything about one synthetic video, before encoding."""

    index: int
    seed: int
    seconds: float
    fps: float
    width: int
    height: int
    song: Song
    dance: Dance
    look: Look
    background: np.ndarray

    @property
    def n_frames(self) -> int:
        return len(self.dance.times)

    def ground_truth(self) -> dict:
        s, d = self.song, self.dance
        r = lambda a, n=4: np.round(np.asarray(a, dtype=np.float64), n).tolist()  # noqa: E731
        return {
            "version": GT_VERSION,
            "seed": self.seed,
            "index": self.index,
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
            "seconds": self.seconds,
            "n_frames": self.n_frames,
            "tempo_bpm": s.tempo_bpm,
            "style": s.style,
            "beats_per_bar": s.beats_per_bar,
            "key": s.key,
            "progression": s.progression,
            "audio_sample_rate": s.sr,
            "moves": d.moves,
            "beats": r(s.beats),
            "downbeats": r(s.downbeats),
            "frame_times": r(d.times, 6),
            "joints": list(JOINTS),
            "keypoints": r(d.keypoints, 3),
            # Trunk turn per frame: the neck-shoulder and neck-hip bones are foreshortened
            # by it (see choreography); all other bones have constant length.
            "yaw_deg": r(np.degrees(d.yaw), 3),
            "body": {
                k: round(float(getattr(d.body, k)), 4)
                for k in ("torso", "shoulder", "hip", "upper_arm", "forearm", "thigh", "shin", "nose", "cx", "ground")
            },
        }


def make_clip(
    index: int,
    seconds: float,
    seed: int = 0,
    fps: float = DEFAULT_FPS,
    width: int = DEFAULT_WIDTH,
    height: int = DEFAULT_HEIGHT,
    style: str | None = None,
    tempo_bpm: float | None = None,
    sr: int = DEFAULT_SR,
) -> Clip:
    """Generate music, choreography and look of one video (in memory, nothing encoded)."""
    if seconds <= 0 or fps <= 0:
        raise ValueError("seconds and fps must be positive")
    if width % 2 or height % 2:
        raise ValueError("width and height must be even (yuv420p)")
    # Independent child streams per part: changing, say, the renderer's random draws
    # does not change the music or the dance of a seed.
    r_song, r_dance, r_look = (
        np.random.default_rng(s) for s in np.random.SeedSequence([int(seed), int(index)]).spawn(3)
    )
    if style is None:
        # Stratified: the styles take turns by index from a seed-dependent start, so any
        # 4 consecutive videos cover all four styles (a purely random draw left some
        # styles out of small demo sets); everything else is drawn at random.
        start = int(np.random.default_rng(np.random.SeedSequence([int(seed)])).integers(len(STYLES)))
        style = STYLES[(start + int(index)) % len(STYLES)]
    song = make_song(r_song, seconds, sr=sr, style=style, tempo_bpm=tempo_bpm)
    n = int(round(seconds * fps))
    times = np.arange(n) / fps
    body = random_body(r_dance, width, height)
    dance = choreograph(r_dance, song.beats, song.beats_per_bar, song.style, times, body)
    look = random_look(r_look)
    background = make_background(r_look, look, body, width, height)
    return Clip(
        index=index,
        seed=seed,
        seconds=float(seconds),
        fps=float(fps),
        width=width,
        height=height,
        song=song,
        dance=dance,
        look=look,
        background=background,
    )


def render_frames(clip: Clip):
    """Yield the clip's RGB frames, uint8 [H, W, 3]."""
    draw = FigureRenderer(clip.dance, clip.look, clip.background)
    for i in range(clip.n_frames):
        yield draw(i)


def _params(seconds, fps, width, height, seed, index):
    return {
        "seconds": float(seconds),
        "fps": float(fps),
        "width": int(width),
        "height": int(height),
        "seed": int(seed),
        "index": int(index),
        "version": GT_VERSION,
    }


def is_done(mp4: Path, gt: Path, params: dict) -> bool:
    """Whether mp4 and its sidecar gt exist and the sidecar records these params."""
    if not (mp4.is_file() and gt.is_file()):
        return False
    try:
        have = json.loads(gt.read_text())
    except (OSError, ValueError):
        return False
    return all(have.get(k) == v for k, v in params.items())


def _tmp(path: Path) -> Path:
    # Same folder (os.replace is atomic only within a file system), hidden, unique per
    # process so parallel writers of different ids never collide.
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_clip(mp4: Path, gt_path: Path, frames, song: Song, fps: float, width: int, height: int, gt: dict) -> None:
    """Write a video (frames and the song's audio) and its ground-truth sidecar, each to a
    hidden per-process temporary renamed into place, the video first (a sidecar never
    describes a missing video); the temporaries are removed if anything fails."""
    tmp_mp4, tmp_gt = _tmp(mp4), _tmp(gt_path)
    try:
        write_mp4(tmp_mp4, frames, song.audio, song.sr, fps, width, height)
        os.replace(tmp_mp4, mp4)
        tmp_gt.write_text(json.dumps(gt, separators=(",", ":")))
        os.replace(tmp_gt, gt_path)
    finally:
        for t in (tmp_mp4, tmp_gt):
            if t.exists():
                t.unlink()


def synthesize_indices(
    fn: Callable[[int], Path], n: int, jobs: int = 1, progress: Callable[[int, int, Path], None] | None = None
) -> list[Path]:
    """fn(0) ... fn(n - 1) on `jobs` workers (parallel.map_unordered), progress(done, n, path)
    after each; the paths in index order."""
    paths = []
    for path in map_unordered(fn, range(n), jobs):
        paths.append(path)
        if progress is not None:
            progress(len(paths), n, path)
    return sorted(paths)


def synthesize_one(
    index: int,
    seconds: float,
    out: Path,
    seed: int = 0,
    fps: float = DEFAULT_FPS,
    width: int = DEFAULT_WIDTH,
    height: int = DEFAULT_HEIGHT,
    overwrite: bool = False,
) -> Path:
    """Write out/synth_{index:03d}.mp4 and its .gt.json; return the mp4 path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mp4 = out / f"synth_{index:03d}.mp4"
    gt = out / f"synth_{index:03d}.gt.json"
    params = _params(seconds, fps, width, height, seed, index)
    if not overwrite and is_done(mp4, gt, params):
        return mp4
    clip = make_clip(index, seconds, seed=seed, fps=fps, width=width, height=height)
    write_clip(mp4, gt, render_frames(clip), clip.song, fps, width, height, clip.ground_truth())
    return mp4


def synthesize(
    n: int,
    seconds: float,
    out: Path,
    seed: int = 0,
    fps: float = DEFAULT_FPS,
    width: int = DEFAULT_WIDTH,
    height: int = DEFAULT_HEIGHT,
    progress: Callable[[int, int, Path], None] | None = None,
    overwrite: bool = False,
    jobs: int = 1,
) -> list[Path]:
    """Write n videos synth_000.mp4 ... with ground-truth sidecars; return the mp4 paths in
    index order.

    jobs: worker processes (1: in this process, in index order; -1: all cores; see
    parallel.map_unordered). progress(done, n, path) is called after each video.
    """
    fn = partial(
        synthesize_one, seconds=seconds, out=out, seed=seed, fps=fps, width=width, height=height, overwrite=overwrite
    )
    return synthesize_indices(fn, n, jobs, progress)


def load_gt(path) -> dict:
    """Read a sidecar (given the .gt.json or its .mp4) with arrays as numpy."""
    p = Path(path)
    if p.suffix == ".mp4":
        p = p.with_suffix(".gt.json")
    gt = json.loads(p.read_text())
    for k in ("beats", "downbeats", "frame_times", "keypoints", "yaw_deg"):
        gt[k] = np.asarray(gt[k], dtype=np.float64)
    return gt
