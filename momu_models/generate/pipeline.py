"""Generation: dance for a music, music for a dance, or both together (section 4, appendix D).

Models come from finished runs: `runs/vae` (BiCoR-VAE), `runs/motion2music` and
`runs/music2motion` (DiTs). Latents are scaled with the factors stored in the diffusion runs,
generated with DDIM + classifier-free guidance (one direction) or cross-guidance (joint),
decoded by the VAE; motion gets the bone-length correction of appendix E and is then smoothed
(postprocess.py), music a vocoder.

Two levels: `MoMuPipeline` (models + vocoder; `joint`, `dance_for_music`, `music_for_dance`
return a `GenerationResult` whose `save` writes momu-generate's files), and the array-level
functions it composes (`load_models`, `generate_joint`, `generate_motion`, `generate_music`).

    pipe = MoMuPipeline.from_pretrained("runs/")
    result = pipe.joint(length="30s", num_samples=2, seed=0)
    result.save("outputs/")          # joint_s0_0.mp4, .wav, .npy, .json, _beats.png; joint_s0_1...

Temporal editing (docs/editing.md): every method takes an `Edit` (a dance or music to keep all or
parts of, keyframes); the kept frames are encoded by the VAE and held fixed while the diffusion
in-paints the rest, then put back exactly with a short fade at the seams (editing.paste).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from momu_data import features
from momu_data import timebase as A
from momu_data.extract import motion_from_video
from momu_data.media import MediaError, load_audio
from momu_models.device import resolve_device
from momu_models.diffusion.process import SOLVERS
from momu_models.diffusion.sampling import joint_sample, sample
from momu_models.generate import editing
from momu_models.generate.editing import Keyframe
from momu_models.generate.guidance import DEFAULT_GUIDANCE, tuned_guidance
from momu_models.generate.length import parse_length
from momu_models.generate.outputs import GenerationResult
from momu_models.generate.postprocess import SMOOTH_SECONDS, finish_motion
from momu_models.generate.vocoders import Vocoder, get_vocoder
from momu_models.models.dit import load_diffusion
from momu_models.models.vae import BiCoRVAE, VAEConfig

log = logging.getLogger(__name__)

TRAIN_COMMANDS = {
    "vae": "momu-train vae shards/",
    "motion2music": "momu-train diffusion shards/ --task motion2music",
    "music2motion": "momu-train diffusion shards/ --task music2motion",
}

# The diffusion runs each kind of generation needs.
MODE_TASKS = {
    "joint": ("motion2music", "music2motion"),
    "dance_for_music": ("music2motion",),
    "music_for_dance": ("motion2music",),
}

DEFAULT_JOINT_LENGTH = "10s"


class GenerateError(Exception):
    """A problem the user can fix (missing checkpoint, bad input); printed as one line."""


@dataclass
class Models:
    vae: BiCoRVAE
    dits: dict = field(default_factory=dict)  # task -> DiT
    cfgs: dict = field(default_factory=dict)  # task -> run config
    device: torch.device = torch.device("cpu")
    smooth_seconds: float = SMOOTH_SECONDS  # Gaussian sigma for generated motion; 0: off
    autocast: torch.dtype | None = None  # the denoisers' autocast dtype (network_autocast); None: float32
    guidance: dict = field(default_factory=dict)  # task -> the scale `momu-eval guidance` chose for it

    def guidance_for(self, task: str, scale: float | None = None) -> float:
        """`scale` if given, else the run's tuned scale (generate.guidance), else DEFAULT_GUIDANCE."""
        return float(scale) if scale is not None else float(self.guidance.get(task, DEFAULT_GUIDANCE))

    def scale(self, modality: str) -> float:
        cfg = next(iter(self.cfgs.values()))
        return float(cfg["latent_scales"][modality])

    @property
    def bone_lengths(self) -> np.ndarray | None:
        for c in self.cfgs.values():
            if c.get("bone_lengths"):
                return np.asarray(c["bone_lengths"])
        return None


def paper_runs(cfgs: dict) -> bool:
    """Whether a set of diffusion runs (task -> run config) was trained with the paper preset."""
    return any(c.get("preset") == "paper" for c in cfgs.values())


def default_smooth_seconds(cfgs: dict) -> float:
    """The motion smoothing a set of diffusion runs gets unless told: none for the paper preset
    (the paper decodes without it; docs/reproduce.md), SMOOTH_SECONDS for the CPU presets."""
    return 0.0 if paper_runs(cfgs) else SMOOTH_SECONDS


# Sampler unless told: the paper's 50 DDIM steps for paper-preset runs; for the CPU presets
# DPM-Solver++(2M) with 12 steps, whose guided dances and music meet the beat as well as 25 or
# 50 DDIM steps (docs/results.md, "Generation speed") in a quarter of the time.
PAPER_SOLVER, PAPER_STEPS = "ddim", 50
CPU_SOLVER, CPU_STEPS = "dpm++2m", 12


def default_steps(cfgs: dict) -> int:
    """The steps a set of diffusion runs samples with unless told (PAPER_STEPS for the paper
    preset, CPU_STEPS otherwise)."""
    return PAPER_STEPS if paper_runs(cfgs) else CPU_STEPS


def default_solver(cfgs: dict) -> str:
    """The solver a set of diffusion runs samples with unless told (PAPER_SOLVER for the paper
    preset, CPU_SOLVER otherwise)."""
    return PAPER_SOLVER if paper_runs(cfgs) else CPU_SOLVER


# The denoisers' precision: "bf16" runs them under torch.autocast(bfloat16) while the latents,
# guidance and the solver stay float32 (sampling.sample); "fp32" runs everything in float32;
# "auto": bf16 on CUDA (the paper preset's 50-step joint generation is ~90 TFLOP of DiT work),
# fp32 on the CPU (no bf16 matrix units there: slower, and no gain). The VAE decode and the
# vocoder stay float32 (a few hundred GFLOP).
PRECISIONS = ("auto", "fp32", "bf16")


def network_autocast(precision: str, device) -> torch.dtype | None:
    """The autocast dtype of the denoisers for a precision on a device (None: float32)."""
    if precision not in PRECISIONS:
        raise GenerateError(f"unknown precision {precision!r}: choose {', '.join(PRECISIONS)}")
    if precision == "auto":
        precision = "bf16" if torch.device(device).type == "cuda" else "fp32"
    return torch.bfloat16 if precision == "bf16" else None


def _wait(device: torch.device) -> None:
    """Let queued GPU work finish, so a stage's wall time is its own (the sampler never waits)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def load_models(
    root, tasks: tuple[str, ...], device: str = "cpu", smooth_seconds: float | None = None, precision: str = "auto"
) -> Models:
    """Load the VAE and the diffusion runs `tasks` from `root` (e.g. runs/). smooth_seconds:
    None = by the runs' preset (`default_smooth_seconds`). precision: the denoisers' (PRECISIONS)."""
    root = Path(root)
    missing = [n for n in ("vae", *tasks) if not (root / n / "model.safetensors").exists()]
    if missing:
        n = missing[0]
        hint = f" (or pass --checkpoints DIR holding {', '.join(missing)})" if root != Path("runs") else ""
        raise GenerateError(f"no trained {n} model in {root / n}: train it with `{TRAIN_COMMANDS[n]}`" + hint)
    dev = torch.device(device)
    amp = network_autocast(precision, dev)
    vae = BiCoRVAE.from_pretrained(root / "vae").to(dev)
    m = Models(vae=vae, device=dev, smooth_seconds=SMOOTH_SECONDS if smooth_seconds is None else smooth_seconds)
    m.autocast = amp
    for t in tasks:
        dit, cfg = load_diffusion(root / t)
        if VAEConfig.from_dict(cfg["vae_config"]) != vae.cfg:
            raise GenerateError(
                f"{root / t} was trained on another VAE than {root / 'vae'}: retrain it or "
                "point --checkpoints at a consistent set of runs"
            )
        m.dits[t], m.cfgs[t] = dit.to(dev), cfg
        tuned = tuned_guidance(root / t)
        if tuned is not None:
            m.guidance[t] = tuned
    if smooth_seconds is None:
        m.smooth_seconds = default_smooth_seconds(m.cfgs)
    if len(tasks) == 2:
        a, b = (m.cfgs[t]["latent_scales"] for t in tasks)
        if any(abs(a[k] - b[k]) > 1e-3 * abs(a[k]) for k in a):
            raise GenerateError("the two diffusion runs used different latent scales (trained on different data?)")
    return m


@torch.no_grad()
def _encode(models: Models, modality: str, x: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None].to(models.device)
    post = models.vae.encode_music(t) if modality == "music" else models.vae.encode_motion(t)
    return post.mean * models.scale(modality)


@torch.no_grad()
def _decode_music(models: Models, z: torch.Tensor, T: int) -> np.ndarray:
    return models.vae.decode_music(z / models.scale("music"), T).cpu().numpy()


@torch.no_grad()
def _decode_motion(models: Models, z: torch.Tensor, T: int, bones: bool = True) -> np.ndarray:
    poses = models.vae.decode_motion(z / models.scale("motion"), T).cpu().numpy()
    bone_lengths = models.bone_lengths if bones else None
    return np.stack([finish_motion(p, A.FPS, bone_lengths, models.smooth_seconds) for p in poses])


@dataclass
class Generated:
    poses: np.ndarray | None  # [N, T, 14, 2]
    mels: np.ndarray | None  # [N, 80, T]
    timings: dict


def generate_joint(
    models: Models,
    frames: int,
    n: int = 1,
    seed: int = 0,
    steps: int = 50,
    guidance_scale: float | None = None,
    cross_start: float = 0.5,
    fixed_motion: Constraint | None = None,
    fixed_music: Constraint | None = None,
    solver: str = "ddim",
) -> Generated:
    """Music and dance together by cross-guidance; frames at 62.5 frames/s. fixed_motion /
    fixed_music: parts of either to keep (temporal editing), each with its own frames.
    guidance_scale: None = each run's own (Models.guidance_for)."""
    L = models.vae.latent_length(frames)
    g = torch.Generator(device=models.device).manual_seed(seed)
    t = time.perf_counter()
    js = joint_sample(
        models.dits["motion2music"],
        models.dits["music2motion"],
        L,
        steps,
        (models.guidance_for("motion2music", guidance_scale), models.guidance_for("music2motion", guidance_scale)),
        g,
        cross_start=cross_start,
        batch_size=n,
        solver=solver,
        autocast=models.autocast,
        **_known(fixed_motion, "known_motion"),
        **_known(fixed_music, "known_music"),
    )
    _wait(models.device)
    t_s = time.perf_counter() - t
    t = time.perf_counter()
    mels = _paste(fixed_music, _decode_music(models, js.music, frames), axis=2)
    poses = _paste(fixed_motion, _decode_motion(models, js.motion, frames), axis=1)
    return Generated(poses, mels, {"sampling": t_s, "vae_decode": time.perf_counter() - t})


def _conditional(
    models: Models,
    task: str,
    source: str,
    x: np.ndarray,
    T: int,
    n: int,
    seed: int,
    steps: int,
    guidance_scale: float | None,
    fixed: Constraint | None = None,
    solver: str = "ddim",
) -> tuple[np.ndarray, dict]:
    """One direction: encode the source modality, sample the other with CFG (holding `fixed`'s
    latents), decode (and paste `fixed` back)."""
    cond = _encode(models, source, x).expand(n, -1, -1)
    g = torch.Generator(device=models.device).manual_seed(seed)
    t = time.perf_counter()
    scale = models.guidance_for(task, guidance_scale)
    kw = dict(steps=steps, guidance_scale=scale, generator=g, solver=solver, autocast=models.autocast)
    z = sample(models.dits[task], cond, **kw, **_known(fixed))
    _wait(models.device)
    t_s = time.perf_counter() - t
    t = time.perf_counter()
    if task == "music2motion":
        out = _paste(fixed, _decode_motion(models, z, T), axis=1)
    else:
        out = _paste(fixed, _decode_music(models, z, T), axis=2)
    return out, {"sampling": t_s, "vae_decode": time.perf_counter() - t}


def generate_motion(
    models: Models,
    mel: np.ndarray,
    n: int = 1,
    seed: int = 0,
    steps: int = 50,
    guidance_scale: float | None = None,
    fixed: Constraint | None = None,
    solver: str = "ddim",
) -> Generated:
    """Dance for a music: mel [80, T] -> poses [n, T, 14, 2]; fixed: parts of the dance to keep
    (`motion_constraint`)."""
    T = mel.shape[1]
    poses, timings = _conditional(
        models, "music2motion", "music", mel, T, n, seed, steps, guidance_scale, fixed, solver
    )
    return Generated(poses, None, timings)


def generate_music(
    models: Models,
    pose: np.ndarray,
    n: int = 1,
    seed: int = 0,
    steps: int = 50,
    guidance_scale: float | None = None,
    fixed: Constraint | None = None,
    solver: str = "ddim",
) -> Generated:
    """Music for a dance: pose [T, 14, 2] -> mels [n, 80, T]; fixed: parts of the music to keep
    (`music_constraint`)."""
    T = pose.shape[0]
    mels, timings = _conditional(
        models, "motion2music", "motion", pose, T, n, seed, steps, guidance_scale, fixed, solver
    )
    return Generated(None, mels, timings)


# --------------------------------------------------------------------------- temporal editing

# The fade of pasted input into the generation (editing.paste). 0.1 s jolted: the difference it
# fades is the kept part's decoding error (~0.15 torso units with the small models), and over 6
# frames that is ~2x a dance's median speed; over 0.5 s it stays under the dance's own speed
# (docs/editing.md).
EDIT_SEAM_SECONDS = 0.5


@dataclass
class Edit:
    """What to keep of the inputs; the rest is generated around it (docs/editing.md).

    motion: a dance to keep all or parts of (.npy keypoints as momu-generate writes them, a
    DATA/items/<id>.npz, a video, or [T, 14, 2] at 62.5 frames/s); music: a music likewise (an
    audio or video file, or a 16 kHz waveform). keep: (start, end) second ranges of the inputs
    to keep (end None: the input's end), or regenerate: ranges to generate anew, keeping the
    rest; neither: all of each input (shorter than the output: a continuation). keyframes: a
    keyframe JSON file or [Keyframe]: poses to pass through at given times. paste: after
    decoding, put the kept input back exactly and fade the difference out over `seam` seconds
    (editing.paste; music: its own audio, crossfaded over `seam` inside the kept part); False
    leaves the VAE's decoding of the kept latents (within its reconstruction error).
    """

    motion: object = None
    music: object = None
    keep: list | None = None
    regenerate: list | None = None
    keyframes: object = None
    seam: float = EDIT_SEAM_SECONDS
    paste: bool = True

    def ranges(self, name: str) -> str:
        """The kept part of an input in words, for the log."""
        if self.keep:
            return f"{_fmt_ranges(self.keep)} of {name}"
        if self.regenerate:
            return f"{name} except {_fmt_ranges(self.regenerate)}"
        return f"all of {name}"


def _fmt_ranges(ranges) -> str:
    return ", ".join(f"{a:g}-{'end' if b is None else f'{b:g}'} s" for a, b in ranges)


@dataclass
class Constraint:
    """One modality's kept part on the output's frames (T at 62.5 frames/s, L latent frames)."""

    target: np.ndarray  # pose [T, 14, 2] or mel [80, T]: the input on the kept frames (0 elsewhere)
    frames: np.ndarray  # bool [T]: the kept frames
    latent: torch.Tensor  # [1, C, L] the kept part's scaled latents
    # bool [1, L]: the latent frames held fixed while sampling; on the CPU, where the sampler
    # reads which windows hold frames without waiting for the GPU (it copies the mask over)
    latent_mask: torch.Tensor
    ramp: int | None = None  # frames of the paste's fade; None: no paste
    waveform: np.ndarray | None = None  # music: the input's 16 kHz audio (crossfaded in after vocoding)

    @property
    def seams(self) -> list[int]:
        """Frames where kept and generated parts meet."""
        return editing.seams(self.frames)


def _known(c: Constraint | None, name: str = "known") -> dict:
    """The sampler's keyword arguments for a constraint."""
    return {} if c is None else {name: c.latent, f"{name}_mask": c.latent_mask}


def _paste(c: Constraint | None, out: np.ndarray, axis: int) -> np.ndarray:
    """Decoded samples [N, ...] with the constraint's target put back (editing.paste)."""
    if c is None or c.ramp is None:
        return out
    return np.stack([editing.paste(o, c.target, c.frames, c.ramp, axis=axis - 1) for o in out])


def _ramp(edit: Edit) -> int | None:
    if edit.seam < 0:
        raise GenerateError(f"the seam fade must be 0 or more seconds, got {edit.seam}")
    return int(round(edit.seam * A.FPS)) if edit.paste else None


def _place(models: Models, modality: str, x: np.ndarray, n: int, L: int) -> torch.Tensor:
    """Scaled latents [1, C, L] of x's first n frames (zeros beyond them)."""
    part = x[:n] if modality == "motion" else x[:, :n]
    z = _encode(models, modality, part)
    out = z.new_zeros(z.shape[:2] + (L,))
    out[..., : z.shape[-1]] = z[..., :L]
    return out


def motion_constraint(
    models: Models,
    T: int,
    pose: np.ndarray | None,
    edit: Edit,
    keyframes: list[Keyframe] | None = None,
    name="the dance",
) -> Constraint | None:
    """The kept part of a dance [T_in, 14, 2] (edit.keep / edit.regenerate) and keyframes on an
    output of T frames. A keyframe at t s sits on frame round(62.5 t) and holds the latent frame
    containing it (32 ms at the VAE's factor 2) to the latent of its pose held still."""
    if pose is None and not keyframes:
        return None
    f, L = models.vae.factor, models.vae.latent_length(T)
    frames = np.zeros(T, bool)
    target = np.zeros((T, 14, 2), np.float32)
    latent = torch.zeros(1, models.vae.cfg.latent_channels, L, device=models.device)
    lmask = np.zeros(L, bool)
    if pose is not None:
        try:
            frames = editing.kept_frames(T, len(pose), edit.keep, edit.regenerate, name)
        except ValueError as e:
            raise GenerateError(str(e)) from None
        n = min(len(pose), T)
        target[:n] = pose[:n]
        latent = _place(models, "motion", pose, n, L)
        lmask = editing.latent_frames(frames, f)
    if keyframes:
        at = {}
        for k in keyframes:
            p = editing.keyframe_frame(k.time)
            if p >= T:
                raise GenerateError(f"keyframe at {k.time:g} s is past the end of the output ({T / A.FPS:.2f} s)")
            if p // f in at:
                raise GenerateError(
                    f"keyframes at {at[p // f]:g} s and {k.time:g} s fall on the same latent frame "
                    f"({1000 * f / A.FPS:g} ms apart at most): keep one"
                )
            at[p // f] = k.time
        held = np.stack([np.repeat(k.pose[None], 4 * f, axis=0) for k in keyframes])  # each pose held still
        with torch.no_grad():
            t = torch.from_numpy(held).to(models.device)
            z = models.vae.encode_motion(t).mean * models.scale("motion")  # [K, C, 4]
        for k, zk in zip(keyframes, z):
            p = editing.keyframe_frame(k.time)
            frames[p], target[p] = True, k.pose
            latent[0, :, p // f] = zk[:, zk.shape[-1] // 2]
            lmask[p // f] = True
    return Constraint(target, frames, latent, torch.from_numpy(lmask)[None], _ramp(edit))


def music_constraint(models: Models, T: int, y: np.ndarray, edit: Edit, name="the music") -> Constraint:
    """The kept part (edit.keep / edit.regenerate) of a 16 kHz waveform on an output of T frames."""
    mel = features.log_mel(y)
    try:
        frames = editing.kept_frames(T, mel.shape[1], edit.keep, edit.regenerate, name)
    except ValueError as e:
        raise GenerateError(str(e)) from None
    n = min(mel.shape[1], T)
    target = np.zeros((mel.shape[0], T), np.float32)
    target[:, :n] = mel[:, :n]
    L = models.vae.latent_length(T)
    lmask = editing.latent_frames(frames, models.vae.factor)
    latent = _place(models, "music", mel, n, L)
    return Constraint(target, frames, latent, torch.from_numpy(lmask)[None], _ramp(edit), y)


def _editing_inputs(edit: Edit | None, allowed: tuple[str, ...], method: str):
    """(pose or None, its name, waveform or None, its name, keyframes or None) of an edit."""
    if edit is None:
        return None, None, None, None, None
    given = {"motion": edit.motion is not None, "music": edit.music is not None, "keyframes": bool(edit.keyframes)}
    for what, flag in (("motion", "--prefix-motion"), ("music", "--prefix-music"), ("keyframes", "--keyframes")):
        if given[what] and what not in allowed:
            other = "music_for_dance or joint" if what == "music" else "dance_for_music or joint"
            raise GenerateError(f"{method} takes no Edit.{what} ({flag}): it is for {other}")
    if (edit.keep or edit.regenerate) and not (given["motion"] or given["music"]):
        raise GenerateError("--keep / --regenerate need an input to keep parts of: --prefix-motion or --prefix-music")
    pose = pname = y = yname = keys = None
    if edit.motion is not None:
        pose, pname, _ = read_dance(edit.motion)
    if edit.music is not None:
        y, yname, _ = read_music(edit.music)
    if edit.keyframes is not None and not isinstance(edit.keyframes, list):
        try:
            keys = editing.read_keyframes(edit.keyframes)
        except ValueError as e:
            raise GenerateError(str(e)) from None
    else:
        keys = edit.keyframes
    return pose, pname, y, yname, keys


def _frames(pose: np.ndarray | None, y: np.ndarray | None) -> tuple[int | None, int | None]:
    """Frames of an input dance and of an input music (None where absent)."""
    return (None if pose is None else len(pose), None if y is None else features.log_mel(y).shape[1])


def _kept(edit: Edit, pname: str | None, yname: str | None, keys) -> list[str]:
    """What an edit keeps, in words."""
    out = [edit.ranges(kind if n == kind else f"{kind} {n}") for kind, n in (("dance", pname), ("music", yname)) if n]
    if keys:
        out.append(f"{len(keys)} keyframes at {', '.join(f'{k.time:g}' for k in keys)} s")
    return out


def _check_generates(c: Constraint | None, what: str) -> None:
    if c is not None and c.frames.all():
        raise GenerateError(f"the edit keeps every frame of the {what}: nothing left to generate (a longer --length?)")


# --------------------------------------------------------------------------- inputs


def _decode(path: Path, load) -> np.ndarray:
    """load(path)'s array (it returns (array, info)); a missing or unreadable file is a
    GenerateError naming it."""
    if not path.exists():
        raise GenerateError(f"no such file: {path}")
    try:
        return load(path)[0]
    except MediaError as e:
        raise GenerateError(f"{path}: {e}") from None


def read_music(music) -> tuple[np.ndarray, str, Path | None]:
    """(16 kHz mono float32 waveform, name for file names, source path or None) of an audio or
    video file (anything PyAV decodes) or of a waveform already at 16 kHz."""
    if isinstance(music, (str, Path)):
        path = Path(music)
        return _decode(path, load_audio), path.stem, path
    y = np.asarray(music, dtype=np.float32)
    if y.ndim != 1:
        raise GenerateError(f"music: expected a mono 16 kHz waveform [n] or a file path, got shape {y.shape}")
    return y, "music", None


def read_dance(dance) -> tuple[np.ndarray, str, Path | None]:
    """(pose [T, 14, 2] at 62.5 frames/s, name for file names, source video or None) of a video
    (pose extracted with mediapipe, as the dataset's), of keypoints in our layout, or of a file
    of them: a .npy as momu-generate writes it or an extraction item DATA/items/<id>.npz."""
    if isinstance(dance, (str, Path)):
        path = Path(dance)
        if path.suffix.lower() in (".npy", ".npz"):
            try:
                return editing.load_keypoints(path), path.stem, None
            except ValueError as e:
                raise GenerateError(str(e)) from None
        return _decode(path, motion_from_video), path.stem, path
    pose = np.asarray(dance, dtype=np.float32)
    if pose.ndim != 3 or pose.shape[1:] != (14, 2):
        raise GenerateError(f"dance: expected keypoints [T, 14, 2] or a video path, got shape {pose.shape}")
    return pose, "dance", None


# --------------------------------------------------------------------------- pipeline


class MoMuPipeline:
    """The trained models and a vocoder, composed into the three kinds of generation.

    Every method seeds torch's global generator and a sampling generator with `seed`: the
    same call on the same checkpoints gives the same arrays (and `save` the same files) as
    `momu-generate` with the same options. `length`: frames at 62.5 frames/s (int) or text
    as --length takes it ("30s", "0:30", "1875").
    """

    def __init__(self, models: Models, vocoder: str | Vocoder = "auto", vocoder_checkpoint=None):
        self.models = models
        self.vocoder_name = vocoder.name if isinstance(vocoder, Vocoder) else vocoder
        self.vocoder_checkpoint = str(vocoder_checkpoint) if vocoder_checkpoint else None
        self._vocoder = vocoder if isinstance(vocoder, Vocoder) else None

    @classmethod
    def from_pretrained(
        cls,
        root="runs",
        tasks: tuple[str, ...] = MODE_TASKS["joint"],
        device: str = "auto",
        vocoder: str | Vocoder = "auto",
        vocoder_checkpoint=None,
        smooth: float | None = None,
        precision: str = "auto",
    ) -> MoMuPipeline:
        """Load runs/vae and the diffusion runs `tasks` (default both; MODE_TASKS says which one
        each method needs) from `root`. device: "auto" (cuda when available), "cpu", "cuda".
        vocoder: a name for `get_vocoder` (built on first use, with `vocoder_checkpoint`) or a
        `Vocoder`. smooth: Gaussian sigma in seconds for generated motion (0: off; None: off for
        paper-preset runs, SMOOTH_SECONDS otherwise). precision: the denoisers' arithmetic,
        "auto" (bf16 autocast on CUDA, float32 on the CPU), "fp32" or "bf16" (PRECISIONS)."""
        if smooth is not None and smooth < 0:
            raise ValueError("smooth must be 0 (off) or a positive number of seconds")
        dev = resolve_device(device)
        models = load_models(root, tuple(tasks), dev, smooth_seconds=smooth, precision=precision)
        log.info("loaded vae + %s from %s on %s", ", ".join(tasks), root, dev)
        return cls(models, vocoder, vocoder_checkpoint)

    @property
    def device(self) -> torch.device:
        return self.models.device

    @property
    def vocoder(self) -> Vocoder:
        """The vocoder, built on first use (dance_for_music needs none)."""
        return self.load_vocoder()

    def load_vocoder(self) -> Vocoder:
        if self._vocoder is None:
            self._vocoder = get_vocoder(self.vocoder_name, self.vocoder_checkpoint, device=str(self.device))
        return self._vocoder

    def _steps(self, steps: int | None) -> int:
        """steps, or the runs' default (default_steps: 50 for paper-preset runs, 12 otherwise)."""
        return default_steps(self.models.cfgs) if steps is None else int(steps)

    def _solver(self, solver: str | None) -> str:
        """solver, or the runs' default (default_solver: ddim for paper-preset runs, dpm++2m
        otherwise); an unknown name is a one-line GenerateError."""
        solver = default_solver(self.models.cfgs) if solver is None else solver
        if solver not in SOLVERS:
            raise GenerateError(f"unknown solver {solver!r}: choose {' or '.join(SOLVERS)}")
        return solver

    def _check(self, mode: str, num_samples: int, steps: int) -> None:
        if num_samples < 1 or steps < 1:
            raise ValueError("num_samples and steps must be at least 1")
        missing = [t for t in MODE_TASKS[mode] if t not in self.models.dits]
        if missing:
            raise GenerateError(
                f"{mode} needs the {' and '.join(missing)} model: load it with "
                f"MoMuPipeline.from_pretrained(root, tasks={MODE_TASKS[mode]!r})"
            )

    @staticmethod
    def _crossfade(c: Constraint | None, wavs: np.ndarray) -> np.ndarray:
        """The kept music's own audio on its frames (editing.crossfade_waveform)."""
        if c is None or c.ramp is None:
            return wavs
        return np.stack([editing.crossfade_waveform(w, c.waveform, c.frames, c.ramp) for w in wavs])

    @staticmethod
    def _vocode(voc: Vocoder, mels: np.ndarray, timings: dict) -> np.ndarray:
        t = time.perf_counter()
        wavs = np.stack([voc(m) for m in mels])
        timings["vocoder"] = time.perf_counter() - t
        return wavs

    def joint(
        self,
        length: str | int | None = DEFAULT_JOINT_LENGTH,
        num_samples: int = 1,
        seed: int = 0,
        steps: int | None = None,
        guidance_scale: float | None = None,
        cross_start: float = 0.5,
        edit: Edit | None = None,
        solver: str | None = None,
    ) -> GenerationResult:
        """Music and dance together by cross-guidance. cross_start: fraction of the steps sampled
        unconditionally before cross-guidance starts (paper: 0.3-0.7 robust). edit: a dance and/or
        a music (and keyframes) to keep all or parts of; length None is then the inputs' length
        (the shorter) when the edit names ranges, else 10 s. steps / solver: None = the runs'
        default (50 DDIM steps for paper-preset runs, 12 DPM-Solver++ steps otherwise).
        guidance_scale: None = each run's scale as `momu-eval guidance` chose it, else 3."""
        steps, solver = self._steps(steps), self._solver(solver)
        self._check("joint", num_samples, steps)
        torch.manual_seed(seed)
        voc = self.load_vocoder()  # before sampling: a vocoder problem fails fast
        pose, pname, y, yname, keys = _editing_inputs(edit, ("motion", "music", "keyframes"), "joint")
        if length is None and edit is not None and (edit.keep or edit.regenerate):
            length = min(n for n in (_frames(pose, y)) if n)
        frames = parse_length(length if length is not None else DEFAULT_JOINT_LENGTH, A.FPS)
        c_mo = motion_constraint(self.models, frames, pose, edit, keys, pname) if edit else None
        c_mu = music_constraint(self.models, frames, y, edit, yname) if y is not None else None
        if c_mo is not None and c_mu is not None and c_mo.frames.all() and c_mu.frames.all():
            raise GenerateError("the edit keeps every frame of both: nothing left to generate (a longer --length?)")
        if edit is not None:
            log.info("joint: keeping %s", "; ".join(_kept(edit, pname, yname, keys)))
        res = generate_joint(
            self.models, frames, num_samples, seed, steps, guidance_scale, cross_start, c_mo, c_mu, solver
        )
        wavs = self._crossfade(c_mu, self._vocode(voc, res.mels, res.timings))
        return GenerationResult("joint", res.poses, res.mels, wavs, res.timings, seed)

    def dance_for_music(
        self,
        music,
        length: str | int | None = None,
        num_samples: int = 1,
        seed: int = 0,
        steps: int | None = None,
        guidance_scale: float | None = None,
        edit: Edit | None = None,
        solver: str | None = None,
    ) -> GenerationResult:
        """Dance for a music: an audio/video file path or a 16 kHz mono waveform; length: the
        first part of it (default all of it). The result's waveforms are the input music.
        edit: a dance to continue or keep parts of (Edit.motion), keyframes to in-between.
        guidance_scale: None = the run's scale as `momu-eval guidance` chose it, else 3."""
        steps, solver = self._steps(steps), self._solver(solver)
        self._check("dance_for_music", num_samples, steps)
        frames = parse_length(length, A.FPS) if length is not None else None
        torch.manual_seed(seed)
        pose, pname, _, _, keys = _editing_inputs(edit, ("motion", "keyframes"), "dance_for_music")
        y, condition, source = read_music(music)
        mel = features.log_mel(y)
        if frames:
            if frames > mel.shape[1]:
                name = source.name if source is not None else "the music"
                raise GenerateError(
                    f"--length is {frames / A.FPS:.1f} s but {name} lasts {mel.shape[1] / A.FPS:.1f} s"
                )
            mel = mel[:, :frames]
        fixed = motion_constraint(self.models, mel.shape[1], pose, edit, keys, pname) if edit else None
        _check_generates(fixed, "dance")
        if edit is not None:
            log.info("dance for %s: keeping %s", condition, "; ".join(_kept(edit, pname, None, keys)))
        res = generate_motion(self.models, mel, num_samples, seed, steps, guidance_scale, fixed, solver)
        wav = y[: mel.shape[1] * A.HOP]
        return GenerationResult(
            "dance_for_music",
            res.poses,
            None,
            np.repeat(wav[None], num_samples, axis=0),
            res.timings,
            seed,
            condition,
            source,
        )

    def music_for_dance(
        self,
        dance,
        length: str | int | None = None,
        num_samples: int = 1,
        seed: int = 0,
        steps: int | None = None,
        guidance_scale: float | None = None,
        edit: Edit | None = None,
        solver: str | None = None,
    ) -> GenerationResult:
        """Music for a dance: a video path (pose extracted with mediapipe), a keypoint file (.npy,
        .npz item) or keypoints [T, 14, 2] at 62.5 frames/s; length: the first part of it
        (default all of it). edit: a music to continue or keep parts of (Edit.music).
        guidance_scale: None = the run's scale as `momu-eval guidance` chose it, else 3."""
        steps, solver = self._steps(steps), self._solver(solver)
        self._check("music_for_dance", num_samples, steps)
        frames = parse_length(length, A.FPS) if length is not None else None
        torch.manual_seed(seed)
        voc = self.load_vocoder()  # before pose extraction and sampling: fail fast
        _, _, y, yname, _ = _editing_inputs(edit, ("music",), "music_for_dance")
        pose, condition, source = read_dance(dance)
        if frames:
            pose = pose[:frames]
        fixed = music_constraint(self.models, pose.shape[0], y, edit, yname) if y is not None else None
        _check_generates(fixed, "music")
        if edit is not None:
            log.info("music for %s: keeping %s", condition, "; ".join(_kept(edit, None, yname, None)))
        res = generate_music(self.models, pose, num_samples, seed, steps, guidance_scale, fixed, solver)
        wavs = self._crossfade(fixed, self._vocode(voc, res.mels, res.timings))
        return GenerationResult(
            "music_for_dance",
            np.repeat(pose[None], num_samples, axis=0),
            res.mels,
            wavs,
            res.timings,
            seed,
            condition,
            source,
        )
