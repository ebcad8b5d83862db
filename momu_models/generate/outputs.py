"""A generation's result and its files: <stem>.mp4 (skeleton with the music; for music made for a
video, the video beside the skeleton), <stem>.wav (16 kHz), <stem>.npy (keypoints [T, 14, 2]) with
<stem>.json (fps, sample rate, length) and <stem>_beats.png (music onsets against kinematic beats).
The mp4 alone needs PyAV and OpenCV; with render=False everything else is written without them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from momu_data import timebase as A
from momu_data.export import ExportSettings, export_motion
from momu_data.io import atomic_path, write_json
from momu_models.generate.render import plot_beats, render_side_by_side, render_skeleton_video


def write_outputs(
    out: Path,
    stem: str,
    pose: np.ndarray,
    wav: np.ndarray,
    video: Path | None = None,
    title: str | None = None,
    export: ExportSettings | None = None,
    render: bool = True,
) -> dict:
    """The sample's files: mp4 (skeleton + music; side by side with the source video for
    dance-to-music), 16 kHz wav, keypoints .npy [T, 14, 2] with a .json sidecar (fps), and a
    PNG of music onsets against kinematic beats; with `export`, the motion also in the formats
    of pose-guided video tools (momu_data.export, docs/export.md). render=False: no mp4 (its
    path is None), which needs neither PyAV nor OpenCV. Returns paths and timings."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n = min(len(pose), len(wav) // A.HOP)
    pose, wav = pose[:n], wav[: n * A.HOP]
    t = time.perf_counter()
    mp4 = out / f"{stem}.mp4" if render else None
    if mp4 is not None and video is not None:
        render_side_by_side(mp4, video, pose, wav, fps=A.FPS, sr=A.SR)
    elif mp4 is not None:
        render_skeleton_video(mp4, pose, wav, fps=A.FPS, sr=A.SR, title=title)
    t_render = time.perf_counter() - t
    with atomic_path(out / f"{stem}.wav") as tmp:
        sf.write(tmp, np.clip(wav, -1, 1), A.SR, format="WAV", subtype="PCM_16")
    with atomic_path(out / f"{stem}.npy") as tmp:
        with open(tmp, "wb") as f:
            np.save(f, pose.astype(np.float32))
    write_json(
        out / f"{stem}.json",
        {
            "fps": A.FPS,
            "sr": A.SR,
            "frames": n,
            "seconds": n / A.FPS,
            "units": "torso units, centred on the hips, x right, y down",
        },
    )
    onsets, kin = plot_beats(out / f"{stem}_beats.png", wav, pose, fps=A.FPS, sr=A.SR, title=title)
    exported = export_motion(pose, out, stem, export, fps_in=A.FPS) if export is not None else {}
    return {
        "mp4": str(mp4) if mp4 is not None else None,
        "wav": str(out / f"{stem}.wav"),
        "render": t_render,
        "onsets": len(onsets),
        "kinematic_beats": len(kin),
        "exported": exported,
    }


@dataclass
class GenerationResult:
    """N samples of one generation call, both modalities of each (one of them may be the input).

    mode: "joint", "dance_for_music" (the music is the input: `mels` is None and `waveforms`
    holds the input music, cut to the generated frames) or "music_for_dance" (the dance is the
    input: `poses` holds it N times). `condition` names the input in file names (the input
    file's stem); `source` is the input file, if any (for music_for_dance, the video shown
    beside the skeleton).
    """

    mode: str
    poses: np.ndarray  # [N, T, 14, 2] torso units, 62.5 frames/s
    mels: np.ndarray | None  # [N, 80, T] generated log-mels; None when the music was the input
    waveforms: np.ndarray  # [N, T * 256] (input music: up to that) float32 at 16 kHz
    timings: dict = field(default_factory=dict)  # stage -> seconds
    seed: int = 0
    condition: str | None = None
    source: Path | None = None

    def __len__(self) -> int:
        return len(self.poses)

    def default_stem(self) -> str:
        """momu-generate's names: joint_s<seed>, <input>_dance_s<seed>, <input>_music_s<seed>."""
        if self.mode == "joint":
            return f"joint_s{self.seed}"
        kind = "dance" if self.mode == "dance_for_music" else "music"
        return f"{self.condition}_{kind}_s{self.seed}"

    def title(self, k: int) -> str:
        if self.mode == "joint":
            return f"joint sample {k} (seed {self.seed})"
        name = self.source.name if self.source is not None else self.condition
        return f"{'dance' if self.mode == 'dance_for_music' else 'music'} for {name}"

    def save(
        self, out, stem: str | None = None, export: ExportSettings | None = None, render: bool = True
    ) -> list[dict]:
        """Write every sample's files as <stem>_<k>.{mp4,wav,npy,json} and <stem>_<k>_beats.png in
        `out` (stem: `default_stem()` unless given), and with `export` the motion's exports
        (<stem>_<k>_openpose/, ...); render=False leaves out the mp4 (no PyAV or OpenCV needed).
        Returns write_outputs' dict per sample and records the time taken in
        timings["render_and_write"]."""
        stem = stem or self.default_stem()
        video = self.source if self.mode == "music_for_dance" else None
        t = time.perf_counter()
        written = [
            write_outputs(
                Path(out),
                f"{stem}_{k}",
                self.poses[k],
                self.waveforms[k],
                video,
                self.title(k),
                export=export,
                render=render,
            )
            for k in range(len(self))
        ]
        self.timings["render_and_write"] = time.perf_counter() - t
        return written
