"""Motion encoder + classification head: the feature extractor of the motion metrics.

Appendix B.5 of MoMu-Diffusion trains a motion classifier (a MotionBert encoder and a
classification head) on the dance genres of BHS Dance, then uses its encoder as the
feature extractor for FID and Diversity of generated motion. MotionBert itself is a 3D-lifting
model pretrained on Human3.6M/AMASS with its own 17-joint skeleton; this is the same recipe
on this toolkit's data, trained from scratch on our 14-joint 2D keypoints:

    pose [B, T, 14, 2] at 62.5 frames/s (torso units, hip-centred)
      -> per frame: 28 coordinates + 28 velocities          [B, T, 56]
      -> temporal conv stem, two stride-2 Conv1d + GELU       [B, T/4, D]   (15.6 tokens/s)
      -> sinusoidal positions + pre-norm Transformer encoder   [B, T/4, D]
      -> LayerNorm, masked mean over time                      [B, D]   the "motion feature"
      -> Linear                                                [B, K]   class logits

Padding never changes a clip's feature: inputs are zeroed past each clip's end, the mask
is re-applied after every convolution (so the stem sees exactly the zeros it would pad a
lone clip with) and attention and pooling ignore padded tokens. A clip therefore gets the
same feature alone or in any batch, up to float rounding.

API: `MotionClassifier(cfg, classes)`, `load_classifier(run_dir)`,
`motion_features(model, poses, fps)` -> [N, D], `encode_motions(...)` -> (features, logits).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn as nn

from momu_data.features import resample_to_fps
from momu_data.skeleton import NUM_JOINTS
from momu_data.timebase import FPS
from momu_models.models.pretrained import load_pretrained, save_pretrained

IN_PER_FRAME = 2 * NUM_JOINTS * 2  # 28 coordinates + 28 velocities
# Velocities in torso units per 0.1 s: dance moves cover about a torso length in that time,
# so positions and velocities enter at the same scale.
VELOCITY_SCALE = FPS / 10.0


@dataclass
class MotionEncoderConfig:
    dim: int = 128  # token width = size of the motion feature (FID / Diversity dimension)
    layers: int = 4
    heads: int = 4
    kernel: int = 5  # conv stem kernel, frames
    stem_layers: int = 2  # each halves the frame rate: 62.5 -> 15.6 tokens/s with 2
    mlp_ratio: float = 2.0
    dropout: float = 0.1

    @property
    def factor(self) -> int:
        return 2**self.stem_layers

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> MotionEncoderConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


PRESETS: dict[str, MotionEncoderConfig] = {
    # unit tests: 22,851 parameters (3 classes); a step on 16 x 2 s takes milliseconds
    "tiny": MotionEncoderConfig(dim=32, layers=1, heads=2, dropout=0.0),
    # CPU default: 648,579 parameters (3 classes); a step on 16 x 4 s takes ~0.3 s on one core
    "small": MotionEncoderConfig(dim=128, layers=4, heads=4),
}


def pose_inputs(pose: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[B, T, 14, 2] poses (62.5 fps) -> [B, T, 56] coordinates + velocities, 0 past the end."""
    B, T = pose.shape[:2]
    m = mask[:, :, None].to(pose.dtype)
    x = pose.reshape(B, T, -1) * m
    vel = torch.zeros_like(x)
    vel[:, 1:] = (x[:, 1:] - x[:, :-1]) * VELOCITY_SCALE
    return torch.cat([x, vel], dim=-1) * m  # the first padded frame's "velocity" is zeroed too


def sinusoidal(length: int, dim: int, device) -> torch.Tensor:
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return pe


class MotionEncoder(nn.Module):
    """Poses [B, T, 14, 2] + mask [B, T] -> motion features [B, dim]."""

    def __init__(self, cfg: MotionEncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.stem = nn.ModuleList(
            nn.Conv1d(IN_PER_FRAME if i == 0 else cfg.dim, cfg.dim, cfg.kernel, stride=2, padding=cfg.kernel // 2)
            for i in range(cfg.stem_layers)
        )
        layer = nn.TransformerEncoderLayer(
            cfg.dim,
            cfg.heads,
            int(cfg.dim * cfg.mlp_ratio),
            cfg.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        # enable_nested_tensor only applies to post-norm layers; off avoids a warning.
        self.blocks = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.dim)

    def tokens(self, pose: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token states [B, L, dim] and the token mask [B, L]."""
        x = pose_inputs(pose, mask).transpose(1, 2)  # [B, 56, T]
        m = mask
        for conv in self.stem:
            # With stride 2, kernel 5, padding 2 a clip of n frames gives ceil(n / 2) outputs,
            # exactly the True entries of m[:, ::2].
            m = m[:, ::2]
            x = nn.functional.gelu(conv(x)) * m[:, None, :].to(x.dtype)
        x = x.transpose(1, 2)
        x = x + sinusoidal(x.shape[1], x.shape[2], x.device).to(x.dtype)
        x = self.blocks(x, src_key_padding_mask=~m)
        return self.norm(x), m

    def forward(self, pose: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None:
            mask = torch.ones(pose.shape[:2], dtype=torch.bool, device=pose.device)
        h, m = self.tokens(pose, mask)
        w = m[:, :, None].to(h.dtype)
        return (h * w).sum(1) / w.sum(1).clamp_min(1.0)


class MotionClassifier(nn.Module):
    """MotionEncoder + a linear head over `classes` (the values of one manifest label)."""

    def __init__(self, cfg: MotionEncoderConfig, classes: Sequence[str], label: str = "genre"):
        super().__init__()
        if len(classes) < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {list(classes)}")
        self.cfg = cfg
        self.classes = [str(c) for c in classes]
        self.label = label
        self.encoder = MotionEncoder(cfg)
        self.head = nn.Linear(cfg.dim, len(self.classes))
        self.config_extra: dict = {}

    @property
    def factor(self) -> int:
        return self.cfg.factor

    def forward(self, pose: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Class logits [B, K]."""
        return self.head(self.encoder(pose, mask))

    def features_and_logits(self, pose, mask=None) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.encoder(pose, mask)
        return f, self.head(f)

    def save_pretrained(self, path, extra: dict | None = None) -> None:
        """model.safetensors + config.json (encoder config, label, class list) in `path`."""
        save_pretrained(
            self,
            path,
            {
                "kind": "motion-classifier",
                "encoder": self.cfg.to_dict(),
                "label": self.label,
                "classes": self.classes,
                "fps": FPS,
                **(extra or {}),
            },
        )

    @classmethod
    def from_pretrained(cls, path, map_location: str = "cpu") -> MotionClassifier:
        """Load a finished run (its folder or its model.safetensors); the rest of its
        config.json is in `model.config_extra`."""
        cfg, state = load_pretrained(path, map_location)
        if cfg.get("kind") != "motion-classifier" or "classes" not in cfg:
            raise ValueError(f"{path} is not a motion classifier run (train one with `momu-train classifier`)")
        model = cls(MotionEncoderConfig.from_dict(cfg["encoder"]), cfg["classes"], cfg.get("label", ""))
        model.load_state_dict(state)
        model.config_extra = {k: v for k, v in cfg.items() if k not in ("encoder", "classes", "label")}
        return model.eval()


def load_classifier(run_dir, map_location: str = "cpu") -> MotionClassifier:
    """A finished `momu-train classifier` run (its folder or its model.safetensors)."""
    return MotionClassifier.from_pretrained(run_dir, map_location)


# ---- features of motion arrays ----------------------------------------------------------


def _prepare(poses, fps) -> list[np.ndarray]:
    poses = list(poses)
    rates = list(fps) if isinstance(fps, (list, tuple, np.ndarray)) else [fps] * len(poses)
    if len(rates) != len(poses):
        raise ValueError(f"{len(poses)} motions but {len(rates)} frame rates")
    out = []
    for i, (p, r) in enumerate(zip(poses, rates)):
        p = np.asarray(p, dtype=np.float32)
        if p.ndim != 3 or p.shape[1:] != (NUM_JOINTS, 2):
            raise ValueError(f"motion {i}: expected [T, {NUM_JOINTS}, 2], got {list(p.shape)}")
        if not np.isfinite(p).all():
            raise ValueError(f"motion {i}: contains NaN/inf")
        if r is None or not r > 0:
            raise ValueError(f"motion {i}: fps must be positive, got {r}")
        p = resample_to_fps(p, float(r), FPS)  # the encoder only knows the 62.5 frames/s time base
        if p.shape[0] < 2:
            raise ValueError(f"motion {i}: {p.shape[0]} frame(s) at {FPS} fps; need at least 2")
        out.append(p)
    return out


@torch.inference_mode()
def encode_motions(
    model: MotionClassifier, poses, fps=FPS, batch_size: int = 16, device: str | torch.device = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """Motion features [N, D] and class logits [N, K] of motions [T_i, 14, 2] sampled at fps
    (one rate, or one per motion; resampled to 62.5 fps). Variable lengths are fine: clips
    are batched by length and padded, which does not change their features."""
    arrays = _prepare(poses, fps)
    model = model.to(device).eval()
    D, K = model.cfg.dim, len(model.classes)
    feats = np.zeros((len(arrays), D), np.float32)
    logits = np.zeros((len(arrays), K), np.float32)
    order = sorted(range(len(arrays)), key=lambda i: arrays[i].shape[0])  # little padding per batch
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        T = max(arrays[i].shape[0] for i in idx)
        pose = torch.zeros(len(idx), T, NUM_JOINTS, 2)
        mask = torch.zeros(len(idx), T, dtype=torch.bool)
        for j, i in enumerate(idx):
            n = arrays[i].shape[0]
            pose[j, :n] = torch.from_numpy(arrays[i])
            mask[j, :n] = True
        f, lg = model.features_and_logits(pose.to(device), mask.to(device))
        feats[idx] = f.float().cpu().numpy()
        logits[idx] = lg.float().cpu().numpy()
    return feats, logits


def motion_features(
    model: MotionClassifier, poses, fps=FPS, batch_size: int = 16, device: str | torch.device = "cpu"
) -> np.ndarray:
    """The encoder's pooled features [N, D] of motions [T_i, 14, 2] (for FID / Diversity)."""
    return encode_motions(model, poses, fps, batch_size, device)[0]
