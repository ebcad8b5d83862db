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
from momu_models.diffusion.sampling import joint_sample, sample
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


# DDIM steps unless told: the paper's 50 for paper-preset runs; 25 for the CPU presets, whose
# guided dances and music meet the beat as well at 25 as at 50 (docs/results.md, "Generation
# speed") in half the time.
PAPER_STEPS, CPU_STEPS = 50, 25


def default_steps(cfgs: dict) -> int:
    """The DDIM steps a set of diffusion runs samples with unless told (PAPER_STEPS for the
    paper preset, CPU_STEPS otherwise)."""
    return PAPER_STEPS if paper_runs(cfgs) else CPU_STEPS


def load_models(root, tasks: tuple[str, ...], device: str = "cpu", smooth_seconds: float | None = None) -> Models:
    """Load the VAE and the diffusion runs `tasks` from `root` (e.g. runs/). smooth_seconds:
    None = by the runs' preset (`default_smooth_seconds`)."""
    root = Path(root)
    missing = [n for n in ("vae", *tasks) if not (root / n / "model.safetensors").exists()]
    if missing:
        n = missing[0]
        hint = f" (or pass --checkpoints DIR holding {', '.join(missing)})" if root != Path("runs") else ""
        raise GenerateError(f"no trained {n} model in {root / n}: train it with `{TRAIN_COMMANDS[n]}`" + hint)
    dev = torch.device(device)
    vae = BiCoRVAE.from_pretrained(root / "vae").to(dev)
    m = Models(vae=vae, device=dev, smooth_seconds=SMOOTH_SECONDS if smooth_seconds is None else smooth_seconds)
    for t in tasks:
        dit, cfg = load_diffusion(root / t)
        if VAEConfig.from_dict(cfg["vae_config"]) != vae.cfg:
            raise GenerateError(
                f"{root / t} was trained on another VAE than {root / 'vae'}: retrain it or "
                "point --checkpoints at a consistent set of runs"
            )
        m.dits[t], m.cfgs[t] = dit.to(dev), cfg
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
    guidance_scale: float = 3.0,
    cross_start: float = 0.5,
) -> Generated:
    """Music and dance together by cross-guidance; frames at 62.5 frames/s."""
    L = models.vae.latent_length(frames)
    g = torch.Generator(device=models.device).manual_seed(seed)
    t = time.perf_counter()
    js = joint_sample(
        models.dits["motion2music"],
        models.dits["music2motion"],
        L,
        steps,
        guidance_scale,
        g,
        cross_start=cross_start,
        batch_size=n,
    )
    t_s = time.perf_counter() - t
    t = time.perf_counter()
    mels = _decode_music(models, js.music, frames)
    poses = _decode_motion(models, js.motion, frames)
    return Generated(poses, mels, {"sampling": t_s, "vae_decode": time.perf_counter() - t})


def _conditional(
    models: Models, task: str, source: str, x: np.ndarray, T: int, n: int, seed: int, steps: int, guidance_scale: float
) -> tuple[np.ndarray, dict]:
    """One direction: encode the source modality, sample the other with CFG, decode."""
    cond = _encode(models, source, x).expand(n, -1, -1)
    g = torch.Generator(device=models.device).manual_seed(seed)
    t = time.perf_counter()
    z = sample(models.dits[task], cond, steps=steps, guidance_scale=guidance_scale, generator=g)
    t_s = time.perf_counter() - t
    t = time.perf_counter()
    out = _decode_motion(models, z, T) if task == "music2motion" else _decode_music(models, z, T)
    return out, {"sampling": t_s, "vae_decode": time.perf_counter() - t}


def generate_motion(
    models: Models, mel: np.ndarray, n: int = 1, seed: int = 0, steps: int = 50, guidance_scale: float = 3.0
) -> Generated:
    """Dance for a music: mel [80, T] -> poses [n, T, 14, 2]."""
    poses, timings = _conditional(models, "music2motion", "music", mel, mel.shape[1], n, seed, steps, guidance_scale)
    return Generated(poses, None, timings)


def generate_music(
    models: Models, pose: np.ndarray, n: int = 1, seed: int = 0, steps: int = 50, guidance_scale: float = 3.0
) -> Generated:
    """Music for a dance: pose [T, 14, 2] -> mels [n, 80, T]."""
    mels, timings = _conditional(models, "motion2music", "motion", pose, pose.shape[0], n, seed, steps, guidance_scale)
    return Generated(None, mels, timings)


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
    (pose extracted with mediapipe, as the dataset's) or of keypoints already in our layout."""
    if isinstance(dance, (str, Path)):
        path = Path(dance)
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
    ) -> MoMuPipeline:
        """Load runs/vae and the diffusion runs `tasks` (default both; MODE_TASKS says which one
        each method needs) from `root`. device: "auto" (cuda when available), "cpu", "cuda".
        vocoder: a name for `get_vocoder` (built on first use, with `vocoder_checkpoint`) or a
        `Vocoder`. smooth: Gaussian sigma in seconds for generated motion (0: off; None: off for
        paper-preset runs, SMOOTH_SECONDS otherwise)."""
        if smooth is not None and smooth < 0:
            raise ValueError("smooth must be 0 (off) or a positive number of seconds")
        dev = resolve_device(device)
        models = load_models(root, tuple(tasks), dev, smooth_seconds=smooth)
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
        """steps, or the runs' default (default_steps: 50 for paper-preset runs, 25 otherwise)."""
        return default_steps(self.models.cfgs) if steps is None else int(steps)

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
        guidance_scale: float = 3.0,
        cross_start: float = 0.5,
    ) -> GenerationResult:
        """Music and dance together by cross-guidance. cross_start: fraction of the steps sampled
        unconditionally before cross-guidance starts (paper: 0.3-0.7 robust)."""
        steps = self._steps(steps)
        self._check("joint", num_samples, steps)
        frames = parse_length(length if length is not None else DEFAULT_JOINT_LENGTH, A.FPS)
        torch.manual_seed(seed)
        voc = self.load_vocoder()  # before sampling: a vocoder problem fails fast
        res = generate_joint(self.models, frames, num_samples, seed, steps, guidance_scale, cross_start)
        wavs = self._vocode(voc, res.mels, res.timings)
        return GenerationResult("joint", res.poses, res.mels, wavs, res.timings, seed)

    def dance_for_music(
        self,
        music,
        length: str | int | None = None,
        num_samples: int = 1,
        seed: int = 0,
        steps: int | None = None,
        guidance_scale: float = 3.0,
    ) -> GenerationResult:
        """Dance for a music: an audio/video file path or a 16 kHz mono waveform; length: the
        first part of it (default all of it). The result's waveforms are the input music."""
        steps = self._steps(steps)
        self._check("dance_for_music", num_samples, steps)
        frames = parse_length(length, A.FPS) if length is not None else None
        torch.manual_seed(seed)
        y, condition, source = read_music(music)
        mel = features.log_mel(y)
        if frames:
            if frames > mel.shape[1]:
                name = source.name if source is not None else "the music"
                raise GenerateError(
                    f"--length is {frames / A.FPS:.1f} s but {name} lasts {mel.shape[1] / A.FPS:.1f} s"
                )
            mel = mel[:, :frames]
        res = generate_motion(self.models, mel, num_samples, seed, steps, guidance_scale)
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
        guidance_scale: float = 3.0,
    ) -> GenerationResult:
        """Music for a dance: a video path (pose extracted with mediapipe) or keypoints [T, 14, 2]
        at 62.5 frames/s; length: the first part of it (default all of it)."""
        steps = self._steps(steps)
        self._check("music_for_dance", num_samples, steps)
        frames = parse_length(length, A.FPS) if length is not None else None
        torch.manual_seed(seed)
        voc = self.load_vocoder()  # before pose extraction and sampling: fail fast
        pose, condition, source = read_dance(dance)
        if frames:
            pose = pose[:frames]
        res = generate_music(self.models, pose, num_samples, seed, steps, guidance_scale)
        wavs = self._vocode(voc, res.mels, res.timings)
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
