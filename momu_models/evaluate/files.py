"""Finding, pairing and loading the files momu-eval scores (docs/metrics.md).

`momu-eval beats` and `plot` pair a generated file with the reference of the same stem
(pair_files). `motion`, `diversity` and `all` read the names `momu-generate` writes
(<stem>.wav, .npy, .json, .mp4):
- A stem names the condition it was generated from. `<cond>_dance_s<seed>_<k>` (dance for
  the music <cond>) and `<cond>_music_s<seed>_<k>` (music for the dance video <cond>) are
  momu-generate's names; `<cond>_s<k>` is accepted for other generators; any other stem is
  its own condition. `joint_s<seed>_<k>` (unconditional joint samples) are each their own.
- momu-generate writes both modalities for every sample, but only one is generated: the
  .wav of a `_dance_` sample is its input music and the .npy of a `_music_` sample is its
  input motion. Those inputs are never scored as generated.
- A generated stem pairs with the reference stem equal to it, else to its condition.
- Music: audio files win over video files of the same stem (momu-generate's .mp4 holds the
  same audio as its .wav). Motion: .npy [T, 14, 2] with the fps in a <stem>.json sidecar.

Every problem with the files is an EvalError with a one-line reason.
"""

from __future__ import annotations

import json
import re
from enum import Enum
from pathlib import Path

import numpy as np

from momu_data.media import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, MediaError, audio_sample_rate, load_audio
from momu_data.timebase import SR

MEDIA_EXTENSIONS = tuple(dict.fromkeys(AUDIO_EXTENSIONS + VIDEO_EXTENSIONS))  # music: audio or video
MOTION_EXTENSIONS = (".npy",)

SAMPLE_STEM = re.compile(r"^(?P<cond>.+)_(?P<made>dance|music)_s\d+_\d+$")  # momu-generate --music / --video
JOINT_STEM = re.compile(r"^joint_s\d+_\d+$")  # momu-generate --joint: no condition
GENERIC_STEM = re.compile(r"^(?P<cond>.+)_s\d+$")  # <cond>_s0, <cond>_s1, ...


class EvalError(Exception):
    """A one-line reason the evaluation cannot run."""


class Kind(str, Enum):
    music = "music"  # motion-to-music: generated audio vs reference audio
    motion = "motion"  # music-to-motion: generated motion .npy vs reference music


LORIS_SR = 22050  # librosa.load's default rate, at which LORIS's beats_scores.py detects onsets


class MusicScorer(str, Enum):
    """Where music onsets are detected (load_scorer_music): LORIS's rate and resampler, or the
    toolkit's 16 kHz time base."""

    loris = "loris"  # librosa.load(path) at 22,050 Hz (soxr_hq): the paper's tables
    timebase = "16k"  # 16 kHz through FFmpeg's resampler, as the extracted data's onsets

    @property
    def sr(self) -> int:
        return LORIS_SR if self is MusicScorer.loris else SR


def listing(names: list[str], limit: int = 8) -> str:
    """Names for a one-line message: the first `limit`, then how many more."""
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def parse_tolerance(text: str | None) -> float | None:
    """'0.1s', '100ms' or '0.1' (seconds) -> seconds; None keeps the binned default.
    Anything else is a ValueError."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms|s)?\s*", text)
    if not m:
        raise ValueError(f"cannot read {text!r}; write e.g. 0.1s or 100ms")
    return float(m.group(1)) * (1e-3 if m.group(2) == "ms" else 1.0)


# ---- pairs by stem (momu-eval beats, plot, fad) -----------------------------------------


def scan(path: Path, exts: tuple[str, ...], role: str) -> dict[str, Path]:
    """{stem: file} of a folder's files with one of exts, or of a single file."""
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() not in exts:
            raise EvalError(f"{role} file {path} is not one of {' '.join(exts)}")
        return {path.stem: path}
    if not path.is_dir():
        raise EvalError(f"{role}: no such file or folder: {path}")
    found: dict[str, list[Path]] = {}
    for f in sorted(path.iterdir()):
        if f.is_file() and f.suffix.lower() in exts:
            found.setdefault(f.stem, []).append(f)
    dup = [f"{s} ({', '.join(p.name for p in ps)})" for s, ps in found.items() if len(ps) > 1]
    if dup:
        raise EvalError(f"{role} stems are ambiguous: {listing(dup)}")
    if not found:
        hint = ""
        if role == "generated" and ".npy" not in exts and any(path.glob("*.npy")):
            hint = " (it holds .npy motions: use --kind motion)"
        raise EvalError(f"no {role} files ({' '.join(exts)}) in {path}{hint}")
    return {s: ps[0] for s, ps in found.items()}


def pair_files(generated: Path, reference: Path, gen_exts, ref_exts) -> tuple[list, list[str]]:
    """[(stem, generated_file, reference_file)] and the unused reference stems.

    Generated stems without a reference are an error (the score would silently cover a
    subset); extra reference files are allowed (e.g. a full test set, a partial generation).
    """
    gen = scan(generated, gen_exts, "generated")
    ref = scan(reference, ref_exts, "reference")
    if Path(reference).is_file():
        (only,) = ref.values()
        return [(s, g, only) for s, g in gen.items()], []
    if Path(generated).is_file():
        (stem,) = gen
        if stem not in ref:
            raise EvalError(f"no reference for {stem!r} in {reference}")
        return [(stem, gen[stem], ref[stem])], [s for s in ref if s != stem]
    missing = [s for s in gen if s not in ref]
    if len(missing) == len(gen):
        raise EvalError(
            f"no pairs found: no generated stem of {generated} has a reference in {reference} "
            f"(generated: {listing(list(gen))}; reference: {listing(list(ref))})"
        )
    if missing:
        raise EvalError(f"unpaired generated stems (no reference in {reference}): {listing(missing)}")
    return [(s, gen[s], ref[s]) for s in gen], [s for s in ref if s not in gen]


# ---- momu-generate's names (momu-eval motion, diversity, all) ---------------------------


def condition_of(stem: str) -> str:
    """The condition id of a generated file's stem (see the module docstring)."""
    m = SAMPLE_STEM.match(stem)
    if m:
        return m.group("cond")
    if JOINT_STEM.match(stem):
        return stem
    m = GENERIC_STEM.match(stem)
    return m.group("cond") if m else stem


def generated_kinds(stem: str) -> tuple[str, ...]:
    """Which of a stem's files are generated: "music", "motion" or both (unknown names)."""
    m = SAMPLE_STEM.match(stem)
    if m:
        return ("motion",) if m.group("made") == "dance" else ("music",)
    return ("music", "motion")


def reference_stem(stem: str, refs) -> str | None:
    """The reference stem (a key of refs) a generated stem pairs with: itself, else its
    condition; None when neither is there."""
    if stem in refs:
        return stem
    c = condition_of(stem)
    return c if c in refs else None


def folder_files(path: Path, role: str) -> list[Path]:
    """The files directly inside a folder (sorted), or a single file."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise EvalError(f"{role}: no such file or folder: {path}")
    return [f for f in sorted(path.iterdir()) if f.is_file()]


def find_music(path: Path, role: str, generated_only: bool = False) -> dict[str, Path]:
    """{stem: audio or video file}; audio wins over video of the same stem."""
    audio, video = {}, {}
    for f in folder_files(path, role):
        ext = f.suffix.lower()
        if ext in AUDIO_EXTENSIONS:
            if f.stem in audio:
                raise EvalError(f"{role} stem {f.stem!r} is ambiguous: {audio[f.stem].name}, {f.name}")
            audio[f.stem] = f
        elif ext in VIDEO_EXTENSIONS:
            if f.stem in video:
                raise EvalError(f"{role} stem {f.stem!r} is ambiguous: {video[f.stem].name}, {f.name}")
            video[f.stem] = f
    out = {**video, **audio}
    if generated_only:
        out = {s: p for s, p in out.items() if "music" in generated_kinds(s)}
    return dict(sorted(out.items()))


def find_motion(path: Path, role: str, generated_only: bool = False) -> dict[str, Path]:
    """{stem: .npy motion file}; generated_only drops the input motions of `_music_` samples."""
    out = {f.stem: f for f in folder_files(path, role) if f.suffix.lower() in MOTION_EXTENSIONS}
    if generated_only:
        out = {s: p for s, p in out.items() if "motion" in generated_kinds(s)}
    return out


# ---- loading ----------------------------------------------------------------------------


def load_music(path) -> np.ndarray:
    """Mono 16 kHz samples of any audio or video file (PyAV)."""
    try:
        y, _ = load_audio(path, sr=SR)
    except MediaError as e:
        raise EvalError(f"{path}: {e}") from None
    if y.size == 0:
        raise EvalError(f"{path}: no audio samples")
    return y


LIBROSA_RES_TYPE = "soxr_hq"  # librosa.load's default resampler (librosa >= 0.10)


def load_music_as_librosa(path, sr: int) -> np.ndarray:
    """Mono samples at sr as ``librosa.load(path, sr=sr)`` gives them, for any file PyAV
    decodes: the stream decoded at its own rate, channels averaged, then resampled with
    librosa's default soxr_hq. For PCM WAV this is bit-identical to librosa.load (tested);
    compressed formats go through FFmpeg's decoders rather than libsndfile's or audioread's."""
    import librosa

    try:
        native = audio_sample_rate(path)
        y, _ = load_audio(path, sr=native)
    except MediaError as e:
        raise EvalError(f"{path}: {e}") from None
    if y.size == 0:
        raise EvalError(f"{path}: no audio samples")
    if native == sr:
        return y
    return librosa.resample(y, orig_sr=native, target_sr=sr, res_type=LIBROSA_RES_TYPE)


def load_scorer_music(path, scorer: MusicScorer = MusicScorer.loris) -> np.ndarray:
    """The samples a beat scorer detects onsets in, at scorer.sr: LORIS's (librosa.load at
    22,050 Hz) or the 16 kHz time base's (load_music)."""
    if MusicScorer(scorer) is MusicScorer.loris:
        return load_music_as_librosa(path, MusicScorer.loris.sr)
    return load_music(path)


def motion_fps(path, fps: float | None = None) -> float:
    """Frame rate of a motion .npy: its sidecar ``<stem>.json`` {"fps": ...}, else ``fps``.

    The sidecar wins because it is written per file by whatever produced the motion; fps is
    the fallback for files without one.
    """
    side = Path(path).with_suffix(".json")
    if side.is_file():
        try:
            meta = json.loads(side.read_text())
            val = float(meta["fps"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise EvalError(f"{side}: cannot read 'fps' ({type(e).__name__}: {e})") from None
        if not val > 0:
            raise EvalError(f"{side}: fps must be positive, got {val}")
        return val
    if fps is None:
        raise EvalError(f'{path}: no fps: write {side.name} with {{"fps": ...}} or pass --fps')
    if not fps > 0:
        raise EvalError(f"fps must be positive, got {fps}")
    return float(fps)


def load_motion(path, fps: float | None = None) -> tuple[np.ndarray, float]:
    """A [T, 14, 2] float32 pose sequence from .npy, checked for shape and finiteness, and
    its frame rate (motion_fps)."""
    try:
        pose = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise EvalError(f"{path}: unreadable .npy ({type(e).__name__}: {e})") from None
    if pose.ndim != 3 or pose.shape[1:] != (14, 2):
        raise EvalError(f"{path}: expected a motion [T, 14, 2], got {list(pose.shape)}")
    if pose.shape[0] < 2:
        raise EvalError(f"{path}: motion has {pose.shape[0]} frame(s); need at least 2")
    if not np.isfinite(pose).all():
        raise EvalError(f"{path}: motion contains NaN/inf (fill gaps before evaluating)")
    return pose.astype(np.float32), motion_fps(path, fps)
