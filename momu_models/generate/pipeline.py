"""Generation: dance for a music, music for a dance, or both together (section 4, appendix D).

Models come from finished runs: `runs/vae` (BiCoR-VAE), `runs/motion2music` and
`runs/music2motion` (DiTs). Latents are scaled with the factors stored in the diffusion runs,
generated with DDIM + classifier-free guidance (one direction) or cross-guidance (joint),
decoded by the VAE; motion gets the bone-length correction of appendix E and is then smoothed
(postprocess.py), music a vocoder.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from momu_data import timebase as A

from momu_models.generate.postprocess import SMOOTH_SECONDS, finish_motion
from momu_models.diffusion.sampling import joint_sample, sample
from momu_models.models.dit import load_diffusion
from momu_models.models.vae import BiCoRVAE

TRAIN_COMMANDS = {
    "vae": "momu-train vae shards/",
    "motion2music": "momu-train diffusion shards/ --task motion2music",
    "music2motion": "momu-train diffusion shards/ --task music2motion",
}


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


def load_models(root, tasks: tuple[str, ...], device: str = "cpu") -> Models:
    """Load the VAE and the diffusion runs `tasks` from `root` (e.g. runs/)."""
    root = Path(root)
    missing = [n for n in ("vae", *tasks) if not (root / n / "model.safetensors").exists()]
    if missing:
        n = missing[0]
        raise GenerateError(f"no trained {n} model in {root / n}: train it with `{TRAIN_COMMANDS[n]}`"
                            + (f" (or pass --checkpoints DIR holding {', '.join(missing)})" if root != Path("runs") else ""))
    dev = torch.device(device)
    vae = BiCoRVAE.from_pretrained(root / "vae").to(dev)
    m = Models(vae=vae, device=dev)
    for t in tasks:
        dit, cfg = load_diffusion(root / t)
        if cfg["vae_config"] != _jsonable(vae.cfg.to_dict()):
            raise GenerateError(f"{root / t} was trained on another VAE than {root / 'vae'}: retrain it or "
                                "point --checkpoints at a consistent set of runs")
        m.dits[t], m.cfgs[t] = dit.to(dev), cfg
    if len(tasks) == 2:
        a, b = (m.cfgs[t]["latent_scales"] for t in tasks)
        if any(abs(a[k] - b[k]) > 1e-3 * abs(a[k]) for k in a):
            raise GenerateError("the two diffusion runs used different latent scales (trained on different data?)")
    return m


def _jsonable(d: dict) -> dict:
    import json

    return json.loads(json.dumps(d))


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


def generate_joint(models: Models, frames: int, n: int = 1, seed: int = 0, steps: int = 50,
                   guidance_scale: float = 3.0, cross_start: float = 0.5) -> Generated:
    """Music and dance together by cross-guidance; frames at 62.5 frames/s."""
    L = models.vae.latent_length(frames)
    g = torch.Generator(device=models.device).manual_seed(seed)
    t = time.perf_counter()
    js = joint_sample(models.dits["motion2music"], models.dits["music2motion"], L, steps, guidance_scale, g,
                      cross_start=cross_start, batch_size=n)
    t_s = time.perf_counter() - t
    t = time.perf_counter()
    mels = _decode_music(models, js.music, frames)
    poses = _decode_motion(models, js.motion, frames)
    return Generated(poses, mels, {"sampling": t_s, "vae_decode": time.perf_counter() - t})


def _conditional(models: Models, task: str, source: str, x: np.ndarray, T: int, n: int, seed: int,
                 steps: int, guidance_scale: float) -> tuple[np.ndarray, dict]:
    """One direction: encode the source modality, sample the other with CFG, decode."""
    cond = _encode(models, source, x).expand(n, -1, -1)
    g = torch.Generator(device=models.device).manual_seed(seed)
    t = time.perf_counter()
    z = sample(models.dits[task], cond, steps=steps, guidance_scale=guidance_scale, generator=g)
    t_s = time.perf_counter() - t
    t = time.perf_counter()
    out = _decode_motion(models, z, T) if task == "music2motion" else _decode_music(models, z, T)
    return out, {"sampling": t_s, "vae_decode": time.perf_counter() - t}


def generate_motion(models: Models, mel: np.ndarray, n: int = 1, seed: int = 0, steps: int = 50,
                    guidance_scale: float = 3.0) -> Generated:
    """Dance for a music: mel [80, T] -> poses [n, T, 14, 2]."""
    poses, timings = _conditional(models, "music2motion", "music", mel, mel.shape[1], n, seed, steps, guidance_scale)
    return Generated(poses, None, timings)


def generate_music(models: Models, pose: np.ndarray, n: int = 1, seed: int = 0, steps: int = 50,
                   guidance_scale: float = 3.0) -> Generated:
    """Music for a dance: pose [T, 14, 2] -> mels [n, 80, T]."""
    mels, timings = _conditional(models, "motion2music", "motion", pose, pose.shape[0], n, seed, steps, guidance_scale)
    return Generated(None, mels, timings)


def write_outputs(out: Path, stem: str, pose: np.ndarray, wav: np.ndarray, video: Path | None = None,
                  title: str | None = None) -> dict:
    """The sample's files: mp4 (skeleton + music; side by side with the source video for
    dance-to-music), 16 kHz wav, keypoints .npy [T, 14, 2] with a .json sidecar (fps), and a
    PNG of music onsets against kinematic beats. Returns paths and timings."""
    import soundfile as sf

    from momu_data.io import atomic_path, write_json

    from momu_models.generate.render import plot_beats, render_side_by_side, render_skeleton_video

    out.mkdir(parents=True, exist_ok=True)
    n = min(len(pose), len(wav) // A.HOP)
    pose, wav = pose[:n], wav[: n * A.HOP]
    t = time.perf_counter()
    mp4 = out / f"{stem}.mp4"
    if video is not None:
        render_side_by_side(mp4, video, pose, wav, fps=A.FPS, sr=A.SR)
    else:
        render_skeleton_video(mp4, pose, wav, fps=A.FPS, sr=A.SR, title=title)
    t_render = time.perf_counter() - t
    with atomic_path(out / f"{stem}.wav") as tmp:
        sf.write(tmp, np.clip(wav, -1, 1), A.SR, format="WAV", subtype="PCM_16")
    with atomic_path(out / f"{stem}.npy") as tmp:
        with open(tmp, "wb") as f:
            np.save(f, pose.astype(np.float32))
    write_json(out / f"{stem}.json", {"fps": A.FPS, "sr": A.SR, "frames": n, "seconds": n / A.FPS,
                                      "units": "torso units, centred on the hips, x right, y down"})
    onsets, kin = plot_beats(out / f"{stem}_beats.png", wav, pose, fps=A.FPS, sr=A.SR, title=title)
    return {"mp4": str(mp4), "render": t_render, "onsets": len(onsets), "kinematic_beats": len(kin)}
