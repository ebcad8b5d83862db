"""BiCoR-VAE: paired 1D-convolutional VAEs for music (log-mel) and motion (2D keypoints).

Section 3.1 and appendix A of MoMu-Diffusion (NeurIPS 2024), table 8 for the sizes. Both
VAEs share one architecture (an LDM-style 1D encoder-decoder: residual blocks, a temporal
Conv1d downsampling layer, a middle block with self-attention, the mirror decoder) and one
temporal downsampling factor, so the music latent and the motion latent of a clip have
the same length and line up frame for frame. The rhythmic contrast that aligns them is in
contrastive.py, the stage-1 mel discriminator in discriminator.py, and the losses and
training steps of both stages in momu_models/train/vae_steps.py.

Shapes (time base 62.5 frames/s, see momu_data.timebase):
    mel  [B, 80, T] natural-log mel        pose [B, T, 14, 2] torso units, hip-centred
    mask [B, T] bool, True on real frames  latent [B, 20, ceil(T / factor)]
Design decisions and their reasons are in docs/bicor_vae.md.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

from momu_data.skeleton import NUM_JOINTS
from momu_data.timebase import FPS, N_MELS
from momu_models.models.contrastive import RhythmicContrast, RhythmicContrastConfig, downsample_mask
from momu_models.models.pretrained import load_pretrained, save_pretrained

# ---------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------


@dataclass
class VAEConfig:
    # the latent (table 8 "hidden channels 20" = the DiT's input channels, table 9)
    latent_channels: int = 20
    # widths: level l has base_channels * channel_mult[l] channels (table 8 "[1,2,4]")
    base_channels: int = 240
    motion_base_channels: int | None = None  # None: same as base_channels
    channel_mult: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: int = 2  # per encoder level; the decoder has one more
    kernel_size: int = 5  # every Conv1d of the VAEs (table 8)
    # temporal downsampling: one stride-2 Conv1d after each of the first num_down levels,
    # so the factor is 2 ** num_down (table 8 "downsampling rate 2" -> num_down = 1)
    num_down: int = 1
    # self-attention: always in the middle block (mid_attention); attn_levels adds it after
    # every residual block of the listed levels. Table 8's "spatial attention layers 3" is
    # Make-An-Audio 2's attn_layers=[3], a level index past the last of 3 levels: middle only.
    attn_levels: tuple[int, ...] = ()
    mid_attention: bool = True
    num_heads: int = 1
    norm_groups: int = 32
    dropout: float = 0.0
    pad_mode: str = "replicate"  # how T is padded to a multiple of the factor
    # what every Conv1d sees beyond the sequence's ends. Zero padding (the first runs, and
    # checkpoints saved before this field existed) made the decoder's first and last frames
    # move ~10x faster than the body ever does, for any latent: a jolt at the start and end of
    # every generated dance. Replicate padding decodes a still latent to a still pose up to
    # the edges (docs/bicor_vae.md, "Sequence edges").
    conv_padding: str = "replicate"
    # data layout
    mel_channels: int = N_MELS
    num_joints: int = NUM_JOINTS
    # fixed affine map of log-mel into the network's range: x = (mel - shift) / scale
    # (silence ln(1e-5) = -11.5 -> -2.6, loud bins ~ +2 -> +2.8)
    mel_shift: float = -5.0
    mel_scale: float = 2.5
    # stage-1 mel discriminator (MelDiscriminator.from_config)
    disc_channels: int = 32
    disc_scales: int = 3
    disc_layers: int = 3

    def __post_init__(self):
        self.channel_mult = tuple(int(m) for m in self.channel_mult)
        self.attn_levels = tuple(int(a) for a in self.attn_levels)
        if not 0 <= self.num_down <= len(self.channel_mult):
            raise ValueError(
                f"num_down={self.num_down} must be in [0, {len(self.channel_mult)}] "
                "(one downsampling layer per level at most)"
            )
        if self.kernel_size % 2 != 1:
            raise ValueError("kernel_size must be odd so that convolutions keep frames centred")
        if self.pad_mode not in ("replicate", "zero"):
            raise ValueError(f"pad_mode must be 'replicate' or 'zero', not {self.pad_mode!r}")
        if self.conv_padding not in ("replicate", "zeros"):
            raise ValueError(f"conv_padding must be 'replicate' or 'zeros', not {self.conv_padding!r}")
        for base in (self.base_channels, self.motion_base_channels or self.base_channels):
            for m in self.channel_mult:
                if (base * m) % self.num_heads:
                    raise ValueError(f"{base * m} channels do not split into {self.num_heads} heads")

    @property
    def factor(self) -> int:
        """Total temporal downsampling factor (mel frames per latent frame)."""
        return 2**self.num_down

    @property
    def latent_fps(self) -> float:
        return FPS / self.factor

    def latent_length(self, T: int) -> int:
        return -(-int(T) // self.factor)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> VAEConfig:
        known = {f.name for f in fields(cls)}
        d = {"conv_padding": "zeros", **d}  # saved before conv_padding existed: zero padding
        return cls(**{k: v for k, v in d.items() if k in known})


PRESETS: dict[str, VAEConfig] = {
    # unit tests: 61,860 parameters for the pair; a forward pass on T=250 takes milliseconds
    "tiny": VAEConfig(
        base_channels=4,
        channel_mult=(1, 2, 4),
        num_res_blocks=1,
        norm_groups=4,
        disc_channels=4,
        disc_scales=2,
        disc_layers=2,
    ),
    # CPU demo: 1,009,116 parameters for the pair; a stage-1 step on 8 x 4 s takes ~0.75 s on one core
    "small": VAEConfig(base_channels=16, norm_groups=8, disc_channels=8, disc_scales=3, disc_layers=3),
    # table 8 sizes: 212,755,868 parameters for the pair (the paper reports 213M)
    "paper": VAEConfig(base_channels=240),
}


# ---------------------------------------------------------------------------------------
# posterior
# ---------------------------------------------------------------------------------------


class DiagonalGaussian:
    """Diagonal Gaussian posterior q(z | x) over latents [B, C, T'].

    mask [B, T'] (bool, True = real latent frame) is what kl() sums over by default;
    the encoder sets it from the input mask.
    """

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor, mask: torch.Tensor | None = None):
        self.mean = mean
        # the clamp keeps exp(logvar) finite early in training (as in LDM)
        self.logvar = logvar.clamp(-30.0, 20.0)
        self.mask = mask

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    @property
    def var(self) -> torch.Tensor:
        return torch.exp(self.logvar)

    def mode(self) -> torch.Tensor:
        return self.mean

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        eps = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + self.std * eps

    def _mask(self, mask: torch.Tensor | None) -> torch.Tensor | None:
        return self.mask if mask is None else mask

    def kl_elementwise(self) -> torch.Tensor:
        """KL(q || N(0, I)) per latent element [B, C, T'], in nats."""
        m, lv = self.mean.float(), self.logvar.float()
        return 0.5 * (m.pow(2) + lv.exp() - 1.0 - lv)

    def kl(self, mask: torch.Tensor | None = None) -> torch.Tensor:
        """KL of each item [B], summed over channels and valid latent frames (nats).

        mask: latent-resolution mask [B, T']; defaults to the posterior's own mask.
        """
        kl = self.kl_elementwise()
        mask = self._mask(mask)
        if mask is not None:
            kl = kl * mask[:, None, :].to(kl.dtype)
        return kl.sum(dim=(1, 2))

    def num_valid(self, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Number of valid latent elements (channels x frames) per item [B]."""
        B, C, T = self.mean.shape
        mask = self._mask(mask)
        if mask is None:
            return torch.full((B,), C * T, device=self.mean.device, dtype=torch.float32)
        return mask.sum(dim=1).float() * C


# ---------------------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------------------

# Every block takes an optional frame mask [B, T] at its own resolution. With a mask, the
# blocks behave on each batch item exactly as on that item alone (padded to a multiple of
# the factor): GroupNorm statistics and attention keys use only the item's own frames, and
# conv inputs are filled beyond them as the conv's own edge padding would fill them.


class GroupNorm(nn.GroupNorm):
    """GroupNorm over (channels of a group, time) whose statistics skip masked frames.

    The group count is the largest divisor of the channels not above `groups`.
    """

    def __init__(self, channels: int, groups: int):
        super().__init__(math.gcd(channels, groups), channels, eps=1e-6)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None:
            return super().forward(x)
        B, C, T = x.shape
        G = self.num_groups
        xg = x.float().view(B, G, C // G, T)
        m = mask[:, None, None, :].float()
        n = (m.sum(dim=-1, keepdim=True) * (C // G)).clamp(min=1.0)
        mean = (xg * m).sum(dim=(2, 3), keepdim=True) / n
        var = ((xg - mean).pow(2) * m).sum(dim=(2, 3), keepdim=True) / n
        y = ((xg - mean) * torch.rsqrt(var + self.eps)).view(B, C, T)
        return (y * self.weight[:, None] + self.bias[:, None]).to(x.dtype)


class Conv(nn.Conv1d):
    """Conv1d with "same" padding of the given mode (cfg.conv_padding). With a frame mask, an
    item's frames beyond its length are first filled as that padding fills the end of a
    sequence (zeros, or its last frame repeated), so each item is convolved as if alone."""

    def __init__(self, c_in: int, c_out: int, k: int, cfg: VAEConfig, stride: int = 1):
        super().__init__(c_in, c_out, k, stride=stride, padding=k // 2, padding_mode=cfg.conv_padding)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is not None:
            x = _fill_padding(x, mask.bool(), "zero" if self.padding_mode == "zeros" else "replicate")
        return super().forward(x)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-Conv twice, plus a (1x1 when widths differ) skip."""

    def __init__(self, c_in: int, c_out: int, cfg: VAEConfig):
        super().__init__()
        self.norm1 = GroupNorm(c_in, cfg.norm_groups)
        self.conv1 = Conv(c_in, c_out, cfg.kernel_size, cfg)
        self.norm2 = GroupNorm(c_out, cfg.norm_groups)
        self.dropout = nn.Dropout(cfg.dropout)
        self.conv2 = Conv(c_out, c_out, cfg.kernel_size, cfg)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x, mask)), mask)
        h = self.conv2(self.dropout(F.silu(self.norm2(h, mask))), mask)
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Multi-head self-attention over time with a residual connection; masked frames are
    hidden as keys, so real frames never read from padding."""

    def __init__(self, channels: int, cfg: VAEConfig):
        super().__init__()
        self.heads = cfg.num_heads
        self.norm = GroupNorm(channels, cfg.norm_groups)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        B, C, T = x.shape
        qkv = self.qkv(self.norm(x, mask)).view(B, 3, self.heads, C // self.heads, T).transpose(-1, -2)
        q, k, v = qkv.unbind(dim=1)  # [B, heads, T, d]
        attn_mask = None
        if mask is not None:
            # an item with no valid frame would give an all -inf softmax row: let it attend
            # everywhere instead (its output is masked out of every loss anyway)
            keys = mask | ~mask.any(dim=1, keepdim=True)
            attn_mask = keys[:, None, None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return x + self.proj(y.transpose(-1, -2).reshape(B, C, T))


class Level(nn.Module):
    """The residual blocks of one resolution level, optionally each followed by attention."""

    def __init__(self, c_in: int, c_out: int, num_blocks: int, attention: bool, cfg: VAEConfig):
        super().__init__()
        self.blocks = nn.ModuleList(ResBlock(c_in if i == 0 else c_out, c_out, cfg) for i in range(num_blocks))
        self.attns = nn.ModuleList(SelfAttention(c_out, cfg) for _ in range(num_blocks)) if attention else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for i, block in enumerate(self.blocks):
            x = block(x, mask)
            if self.attns is not None:
                x = self.attns[i](x, mask)
        return x


class MidBlock(nn.Module):
    """ResBlock - self-attention - ResBlock at the lowest resolution (the latent rate)."""

    def __init__(self, channels: int, cfg: VAEConfig):
        super().__init__()
        self.block1 = ResBlock(channels, channels, cfg)
        self.attn = SelfAttention(channels, cfg) if cfg.mid_attention else None
        self.block2 = ResBlock(channels, channels, cfg)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.block1(x, mask)
        if self.attn is not None:
            x = self.attn(x, mask)
        return self.block2(x, mask)


class Downsample(nn.Module):
    """Stride-2 Conv1d: T -> ceil(T / 2), output frame i centred on input frame 2i."""

    def __init__(self, channels: int, cfg: VAEConfig):
        super().__init__()
        self.conv = Conv(channels, channels, cfg.kernel_size, cfg, stride=2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.conv(x, mask)


class Upsample(nn.Module):
    """Nearest-neighbour x2 then Conv1d (no checkerboard artefacts of transposed convs);
    mask is at the output resolution."""

    def __init__(self, channels: int, cfg: VAEConfig):
        super().__init__()
        self.conv = Conv(channels, channels, cfg.kernel_size, cfg)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"), mask)


class Encoder(nn.Module):
    """[B, in_channels, T] -> (mean, logvar), each [B, latent, T / 2**num_down].

    T must already be a multiple of the factor (SequenceVAE pads)."""

    def __init__(self, cfg: VAEConfig, in_channels: int, base: int):
        super().__init__()
        chs = [base * m for m in cfg.channel_mult]
        self.num_down = cfg.num_down
        self.conv_in = Conv(in_channels, chs[0], cfg.kernel_size, cfg)
        self.levels = nn.ModuleList()
        self.downs = nn.ModuleList()
        c = chs[0]
        for lvl, c_out in enumerate(chs):
            self.levels.append(Level(c, c_out, cfg.num_res_blocks, lvl in cfg.attn_levels, cfg))
            c = c_out
            self.downs.append(Downsample(c, cfg) if lvl < cfg.num_down else nn.Identity())
        self.mid = MidBlock(c, cfg)
        self.norm_out = GroupNorm(c, cfg.norm_groups)
        self.conv_out = Conv(c, 2 * cfg.latent_channels, cfg.kernel_size, cfg)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        h = self.conv_in(x, mask)
        for lvl, (level, down) in enumerate(zip(self.levels, self.downs)):
            h = level(h, mask)
            if lvl < self.num_down:
                h = down(h, mask)
                mask = None if mask is None else downsample_mask(mask, 2)
        h = self.mid(h, mask)
        h = self.conv_out(F.silu(self.norm_out(h, mask)), mask)
        mean, logvar = h.chunk(2, dim=1)
        return mean, logvar


class Decoder(nn.Module):
    """Mirror of the encoder: latent [B, latent, T'] -> [B, out_channels, T' * 2**num_down].

    Each level has num_res_blocks + 1 residual blocks (as in the LDM decoder: the extra
    block stands in for the skip connections a U-Net would have)."""

    def __init__(self, cfg: VAEConfig, out_channels: int, base: int):
        super().__init__()
        chs = [base * m for m in cfg.channel_mult]
        self.num_down = cfg.num_down
        c = chs[-1]
        self.conv_in = Conv(cfg.latent_channels, c, cfg.kernel_size, cfg)
        self.mid = MidBlock(c, cfg)
        self.ups = nn.ModuleList()
        self.levels = nn.ModuleList()
        for lvl in reversed(range(len(chs))):
            # exact mirror: encoder level l is "blocks, then down"; decoder is "up, then blocks"
            self.ups.append(Upsample(c, cfg) if lvl < cfg.num_down else nn.Identity())
            self.levels.append(Level(c, chs[lvl], cfg.num_res_blocks + 1, lvl in cfg.attn_levels, cfg))
            c = chs[lvl]
        self.norm_out = GroupNorm(c, cfg.norm_groups)
        self.conv_out = Conv(c, out_channels, cfg.kernel_size, cfg)

    def forward(self, z: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.mid(self.conv_in(z, mask), mask)
        n = len(self.levels)
        for i, (up, level) in enumerate(zip(self.ups, self.levels)):
            if n - 1 - i < self.num_down:
                mask = None if mask is None else mask.repeat_interleave(2, dim=1)
                h = up(h, mask)
            h = level(h, mask)
        return self.conv_out(F.silu(self.norm_out(h, mask)), mask)


def _fill_padding(x: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Overwrite the masked-out frames of x [B, C, T] as end padding would: with the last
    valid frame (replicate) or zeros, so a padded batch item looks to the encoder like the
    clip padded on its own."""
    if mode == "zero":
        return x * mask[:, None, :].to(x.dtype)
    T = x.shape[-1]
    t = torch.arange(T, device=x.device).expand_as(mask)
    last = torch.where(mask, t, torch.full_like(t, -1)).cummax(dim=1).values.clamp(min=0)
    return torch.gather(x, 2, last[:, None, :].expand_as(x))


class SequenceVAE(nn.Module):
    """A KL-VAE on one modality's channels-first sequences [B, C, T], any T.

    encode pads T at the end to a multiple of the factor (pad_mode) and returns the
    posterior over [B, latent, ceil(T / factor)]; decode(z, length) crops back to length.
    """

    def __init__(self, cfg: VAEConfig, channels: int, base: int):
        super().__init__()
        self.channels = channels
        self.factor = cfg.factor
        self.pad_mode = cfg.pad_mode
        self.encoder = Encoder(cfg, channels, base)
        self.decoder = Decoder(cfg, channels, base)

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> DiagonalGaussian:
        B, C, T = x.shape
        if C != self.channels:
            raise ValueError(f"expected {self.channels} channels, got input {tuple(x.shape)}")
        if T == 0:
            raise ValueError("cannot encode an empty sequence (T = 0)")
        latent_mask = None
        if mask is not None and not bool(mask.all()):
            mask = mask.bool()
            x = _fill_padding(x, mask, self.pad_mode)
            latent_mask = downsample_mask(mask, self.factor)
            if bool(latent_mask.all()):
                # every latent frame is real: the unmasked (faster, fused) path is exact
                latent_mask = None
        pad = -(-T // self.factor) * self.factor - T
        if pad:
            x = F.pad(x, (0, pad), mode="replicate" if self.pad_mode == "replicate" else "constant")
        # each item's frames: its valid frames plus their end padding to a multiple of factor
        enc_mask = None if latent_mask is None else latent_mask.repeat_interleave(self.factor, dim=1)
        mean, logvar = self.encoder(x, enc_mask)
        return DiagonalGaussian(mean, logvar, latent_mask)

    def decode(
        self, z: torch.Tensor, length: int | None = None, latent_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = self.decoder(z, latent_mask)
        return x if length is None else x[..., :length]


# ---------------------------------------------------------------------------------------
# the pair
# ---------------------------------------------------------------------------------------


class BiCoRVAE(nn.Module):
    """The music VAE, the motion VAE and the rhythmic contrastive loss that aligns them.

    Stage 1 trains `music`, stage 2 freezes it and trains `motion` and `contrast` (the
    steps are in train/vae_steps.py). Both VAEs downsample time by the same factor, so
    encode_music(mel) and encode_motion(pose) of one clip give latents of equal length.
    """

    def __init__(self, cfg: VAEConfig | None = None, contrast: RhythmicContrastConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or VAEConfig()
        self.music = SequenceVAE(cfg, cfg.mel_channels, cfg.base_channels)
        self.motion = SequenceVAE(cfg, 2 * cfg.num_joints, cfg.motion_base_channels or cfg.base_channels)
        self.contrast = RhythmicContrast(contrast or RhythmicContrastConfig(), cfg.latent_channels)
        self.config_extra: dict = {}  # the rest of config.json (preset, steps, val metrics) once loaded

    @property
    def factor(self) -> int:
        return self.cfg.factor

    def latent_length(self, T: int) -> int:
        """Latent frames for T input frames: ceil(T / factor)."""
        return self.cfg.latent_length(T)

    def latent_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """Frame mask [B, T] -> latent mask [B, ceil(T / factor)]."""
        return downsample_mask(mask, self.factor)

    # music: [B, 80, T] natural-log mel
    def encode_music(self, mel: torch.Tensor, mask: torch.Tensor | None = None) -> DiagonalGaussian:
        return self.music.encode((mel - self.cfg.mel_shift) / self.cfg.mel_scale, mask)

    def decode_music(
        self, z: torch.Tensor, length: int | None = None, latent_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.music.decode(z, length, latent_mask) * self.cfg.mel_scale + self.cfg.mel_shift

    # motion: [B, T, 14, 2] -> channels [B, 28, T] ordered (joint 0 x, joint 0 y, joint 1 x, ...)
    def encode_motion(self, pose: torch.Tensor, mask: torch.Tensor | None = None) -> DiagonalGaussian:
        B, T, J, D = pose.shape
        return self.motion.encode(pose.reshape(B, T, J * D).transpose(1, 2), mask)

    def decode_motion(
        self, z: torch.Tensor, length: int | None = None, latent_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = self.motion.decode(z, length, latent_mask)  # [B, 28, T]
        B, _, T = x.shape
        return x.transpose(1, 2).reshape(B, T, self.cfg.num_joints, 2)

    # -- persistence: safetensors weights + a JSON config, no pickle -----------------------
    def save_pretrained(self, path, extra: dict | None = None) -> None:
        """Write `model.safetensors` and `config.json` into the folder `path` atomically."""
        save_pretrained(
            self, path, {"vae": self.cfg.to_dict(), "contrast": self.contrast.cfg.to_dict(), **(extra or {})}
        )

    @classmethod
    def from_pretrained(cls, path, map_location: str = "cpu") -> BiCoRVAE:
        """Load a finished run (its folder, e.g. runs/vae/, or the model.safetensors file)."""
        cfg, state = load_pretrained(path, map_location)
        model = cls(VAEConfig.from_dict(cfg["vae"]), RhythmicContrastConfig.from_dict(cfg.get("contrast", {})))
        model.load_state_dict(state)
        model.config_extra = {k: v for k, v in cfg.items() if k not in ("vae", "contrast")}
        return model.eval()

    def stage_parameters(self, stage: int):
        """Parameters each training stage optimises: 1 -> music VAE; 2 -> motion VAE and
        the contrastive heads/temperature (if any)."""
        if stage == 1:
            return list(self.music.parameters())
        if stage == 2:
            return list(self.motion.parameters()) + list(self.contrast.parameters())
        raise ValueError(f"stage must be 1 or 2, not {stage}")
