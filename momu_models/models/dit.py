"""The MoMu-Diffusion denoiser: a concatenation DiT ("FFT", Feed-Forward Transformer).

Section 4 of the paper: the noisy latent, the embedded condition latent and the embedded
diffusion timestep are concatenated along TIME, padded to a maximum length, given positional
embeddings, run through Transformer blocks, truncated back to the noisy latent's frames and
projected to the output latent with a Conv1d (table 9: kernel 5). The hyper-parameters of
table 9 (condition embedding 1024, 20 input channels, hidden 576, 8 heads, 4 blocks, 1000
steps) are exactly those of Make-An-Audio 2's ``ConcatDiT`` (which the paper lists among its
resources); its block is a FastSpeech-style FFT block whose feed-forward part is a gated
Conv1d (kernel 9), and that is what makes the table's 158M parameters add up. We follow it.

Token layout (one sequence per sample)::

    [ t | c_0 .. c_{Lc-1} (pad to max_len) | x_0 .. x_{L-1} (pad to max_len) ]
    position id:  0 | 1 .. Lc                | 1 + max_len .. max_len + L

Each segment is conceptually padded to ``max_len`` frames. We never materialise the padding
up to ``max_len``: tokens take the position id they would have in the fully padded sequence
and padding inside a batch is excluded as attention keys and zeroed before every
convolution, which gives the same outputs as padding to ``max_len`` at a fraction of the cost.
Because a frame's position id depends only on its index, frame i of the condition and frame i
of the noisy latent are always ``max_len`` positions apart, so the (frame-aligned) alignment
is a fixed offset the model can learn, whatever the clip length.

Embeddings:
- noisy latent x_t [B, C, L]: Conv1d(C -> hidden, kernel 5), as Make-An-Audio 2's proj_in;
- condition latent [B, Cc, Lc]: per frame Linear(Cc -> cond_dim) then the ConditionEmbedder
  MLP (Linear(cond_dim -> hidden), GELU, Linear(hidden -> hidden), LayerNorm); per-frame so
  padding cannot leak into it. ``cond_dim`` is table 9's "conditional embedding" (1024);
- classifier-free guidance: a learned null embedding [hidden] replaces every condition token
  of the samples whose condition is dropped (``drop_cond``) or when no condition is given;
- timestep: sinusoidal features (256) -> Linear -> SiLU -> Linear -> one token.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from momu_models.models.pretrained import load_pretrained, save_pretrained


@dataclass(frozen=True)
class DiTConfig:
    in_channels: int = 20  # noisy latent channels (table 9 "input channels")
    cond_channels: int = 20  # condition latent channels (the other modality's latent)
    out_channels: int = 20  # predicted epsilon channels
    cond_dim: int = 1024  # table 9 "dimension of conditional embedding"
    hidden: int = 576  # table 9 "dimension of hidden representation"
    heads: int = 8
    depth: int = 4  # FFT blocks
    ff_mult: int = 4  # FFN inner width = ff_mult * hidden (Make-An-Audio 2: 4)
    ff_kernel: int = 9  # FFN Conv1d kernel (FastSpeech / Make-An-Audio 2: 9)
    in_kernel: int = 5  # x_t embedding Conv1d kernel
    out_kernel: int = 5  # table 9 "kernel size of Conv1d projection network"
    max_len: int = 960  # max latent frames per segment (x and condition each)
    dropout: float = 0.0
    # "aligned": frame i of the condition and frame i of the noisy latent share position id
    # 1 + i and are told apart by a learned segment embedding; "offset": the literal padded
    # layout, frame i of x at 1 + max_len + i. See the module docstring and docs/diffusion.md.
    positions: str = "offset"
    # Also add each embedded condition frame to the noisy-latent token of the same frame
    # (a zero-initialised Linear, so it starts as the plain concatenation and a model trained
    # without it loads unchanged). A deviation from the paper for short CPU budgets: with only
    # the concatenation, the model must learn through attention that frame i of x goes with
    # frame i of the condition; see docs/diffusion.md "Frame-aligned condition".
    frame_cond: bool = False
    time_freq_dim: int = 256  # sinusoidal timestep features before the MLP
    # The diffusion process this denoiser is trained for (table 9: 1000 steps). The schedule is
    # Make-An-Audio 2's / latent diffusion's scaled-linear one; see diffusion.Diffusion.
    num_timesteps: int = 1000
    beta_schedule: str = "scaled_linear"
    beta_start: float = 0.00085
    beta_end: float = 0.012

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DiTConfig:
        return cls(**d)


# "paper": table 9. max_len 960 latent frames = 30.7 s at 31.25 latent frames/s (62.5 mel
# frames/s downsampled 2x by the VAE, table 8), enough for the paper's 10-30 s generations.
# "small": a CPU demo (trainable in minutes on 2 cores: about 1 M parameters, ~1 s per
# training step of 16 x 128 frames on one slow core), 10.2 s windows at 31.25 frames/s.
# "tiny": unit tests (a forward pass takes milliseconds).
# Both CPU presets add the frame-aligned condition (frame_cond): within a CPU budget the
# plain concatenation learns the condition's style but not its beat (docs/diffusion.md).
PRESETS: dict[str, DiTConfig] = {
    "paper": DiTConfig(),
    "small": DiTConfig(
        cond_dim=192, hidden=96, heads=4, depth=4, ff_mult=2, ff_kernel=3, max_len=320, frame_cond=True
    ),
    "tiny": DiTConfig(cond_dim=32, hidden=32, heads=2, depth=2, ff_mult=2, ff_kernel=3, max_len=48, frame_cond=True),
}


def make_config(preset: str = "paper", **overrides) -> DiTConfig:
    """A preset with some fields replaced, e.g. make_config("small", max_len=160)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown DiT preset {preset!r}; choose from {sorted(PRESETS)}")
    return replace(PRESETS[preset], **overrides)


def sinusoids(pos: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """[N, dim] sin-cos features of positions (or diffusion steps) pos [N], as in DiT."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=pos.device, dtype=torch.float32) / half)
    args = pos.float()[:, None] * freqs[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class TimestepEmbedder(nn.Module):
    """Scalar diffusion step -> one hidden-size token (sinusoidal features + MLP, as in DiT)."""

    def __init__(self, hidden: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(sinusoids(t, self.freq_dim))


class ConditionEmbedder(nn.Module):
    """Condition latent frames [B, Lc, Cc] -> tokens [B, Lc, hidden], frame by frame."""

    def __init__(self, cond_channels: int, cond_dim: int, hidden: int):
        super().__init__()
        self.proj = nn.Linear(cond_channels, cond_dim)
        self.mlp = nn.Sequential(
            nn.Linear(cond_dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, hidden), nn.LayerNorm(hidden)
        )

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.proj(c))


def segment_taps(segments: tuple[int, ...], kernel: int, device=None) -> torch.Tensor:
    """[kernel, N] float mask of a 'same' convolution over tokens made of `segments` (their
    lengths, in order): tap k of token t (which reads token t + k - kernel // 2) is 1 if that
    token lies in t's own segment, else 0, as if each segment were zero-padded on its own.
    Built on `device` from the Python lengths (no host data copied, nothing read back)."""
    n, p = sum(segments), kernel // 2
    pos = torch.arange(n, device=device)
    seg = torch.zeros(n, dtype=torch.long, device=device)
    for start in itertools.accumulate(segments[:-1]):
        seg += pos >= start
    src = pos[None] + torch.arange(-p, kernel - p, device=device)[:, None]
    inside = (src >= 0) & (src < n)
    return (inside & (seg[src.clamp(0, n - 1)] == seg[None])).float()


# How masked_conv computes a convolution. "matmul": one matrix product over the K shifted
# copies of the tokens (im2col); "conv1d": torch's Conv1d over the segments laid end to end with
# kernel // 2 zeros between them. Same values; "auto" picks matmul on the CPU, where it is the
# faster (a `small` training step of 16 x 128 frames: 0.83 s against 0.93 s of process time on
# one thread), and conv1d on a GPU, where im2col's K copies of every convolution input would
# hold 21 GiB more FFN activations for the backward pass of a `paper` batch of 64 (30 against 9
# GiB in bf16; `python -m benchmarks hot_paths`, docs/diffusion.md, "On the GPU").
CONV_PATHS = ("auto", "matmul", "conv1d")


def conv_path_for(path: str, device: torch.device) -> str:
    """The path "auto" means on `device` (others as given)."""
    if path not in CONV_PATHS:
        raise ValueError(f"unknown convolution path {path!r}; use one of {', '.join(CONV_PATHS)}")
    if path == "auto":
        return "matmul" if device.type == "cpu" else "conv1d"
    return path


def masked_conv(
    conv: nn.Conv1d,
    h: torch.Tensor,
    keep: torch.Tensor | None = None,
    taps: torch.Tensor | None = None,
    *,
    segments: tuple[int, ...] | None = None,
    path: str = "matmul",
) -> torch.Tensor:
    """Apply a 'same' Conv1d to tokens [B, L, D] whose padding (keep False; None: no padding)
    is zeroed first, so a valid frame sees exactly what it would see with no padding
    appended at all. Tokens made of several segments are convolved segment by segment, as if
    each were zero-padded at its ends: a tap that would reach into another segment sees zero.

    path "matmul": one matrix product over the K shifted copies of the tokens (the im2col
    form of the same convolution, with the conv's own weights), the segments given by their
    `taps` (segment_taps): the faster path on the CPU (see CONV_PATHS), and it handles the
    segment borders without splitting the batch. path "conv1d": F.conv1d over the `segments` (their
    lengths) laid end to end with kernel // 2 zeros between them, then the gaps dropped; it
    keeps one copy of the input for the backward pass instead of K (see CONV_PATHS)."""
    if keep is not None:
        h = h * keep[..., None].to(h.dtype)
    K = conv.kernel_size[0]
    if K == 1:
        return F.linear(h, conv.weight[..., 0], conv.bias)
    if path == "conv1d":
        if taps is not None and segments is None:
            raise ValueError("the conv1d path needs the segment lengths (segments=), not taps")
        return _segment_conv1d(conv, h, segments)
    if path != "matmul":
        raise ValueError(f"unknown convolution path {path!r}; use 'matmul' or 'conv1d'")
    p, L = K // 2, h.shape[1]
    hp = F.pad(h, (0, 0, p, p))
    cols = []
    for k in range(K):
        shifted = hp[:, k : k + L]
        if taps is not None and k != p:
            shifted = shifted * taps[k, :, None].to(h.dtype)
        cols.append(shifted)
    w = conv.weight.permute(0, 2, 1).reshape(conv.out_channels, K * conv.in_channels)
    return F.linear(torch.cat(cols, dim=-1), w, conv.bias)


def _segment_conv1d(conv: nn.Conv1d, h: torch.Tensor, segments: tuple[int, ...] | None) -> torch.Tensor:
    """masked_conv's conv1d path on tokens [B, L, D] (padding already zeroed)."""
    p = conv.kernel_size[0] // 2
    if segments is None or len(segments) == 1:
        return F.conv1d(h.transpose(1, 2), conv.weight, conv.bias, padding=p).transpose(1, 2)
    # p zeros between two segments are what both sides' taps would read past their border.
    gap = h.new_zeros(h.shape[0], p, h.shape[2])
    parts, starts, s = [], [], 0
    for i, n in enumerate(segments):
        if i:
            parts.append(gap)
        parts.append(h[:, s : s + n])
        starts.append(s + i * p)
        s += n
    y = F.conv1d(torch.cat(parts, dim=1).transpose(1, 2), conv.weight, conv.bias, padding=p).transpose(1, 2)
    return torch.cat([y[:, a : a + n] for a, n in zip(starts, segments)], dim=1)


class ConvGEGLUFeedForward(nn.Module):
    """FFT feed-forward: Conv1d -> GEGLU gate -> Conv1d, applied per segment with padding zeroed."""

    def __init__(self, dim: int, mult: int, kernel: int, dropout: float):
        super().__init__()
        inner = dim * mult
        self.conv_in = nn.Conv1d(dim, 2 * inner, kernel, padding=kernel // 2)
        self.conv_out = nn.Conv1d(inner, dim, kernel, padding=kernel // 2)
        self.drop = nn.Dropout(dropout)

    def forward(
        self, h: torch.Tensor, keep: torch.Tensor | None, segments: tuple[int, ...], taps, path: str
    ) -> torch.Tensor:
        # The condition and the noisy latent are separate signals: convolving across the
        # boundary between them (or into the time token) would mix unrelated frames, and which
        # frames meet there would depend on how much padding the batch has.
        kw = dict(segments=segments, path=path)
        a, gate = masked_conv(self.conv_in, h, keep, taps, **kw).chunk(2, dim=-1)
        return masked_conv(self.conv_out, self.drop(a * F.gelu(gate)), keep, taps, **kw)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        if dim % heads:
            raise ValueError(f"hidden {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, h: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        B, N, D = h.shape
        q, k, v = self.qkv(h).view(B, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        # Key padding mask: no token may attend to padding. Padded queries still attend to the
        # valid keys (the time token is always valid), so no row is fully masked (no NaNs).
        # No padding (keep None): no mask, so a GPU can use its flash-attention kernel.
        mask = None if keep is None else keep[:, None, None, :]
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        return self.out(o.transpose(1, 2).reshape(B, N, D))


class FFTBlock(nn.Module):
    """Pre-norm Transformer block: self-attention, then the convolutional feed-forward."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.hidden)
        self.attn = SelfAttention(cfg.hidden, cfg.heads, cfg.dropout)
        self.norm2 = nn.LayerNorm(cfg.hidden)
        self.ff = ConvGEGLUFeedForward(cfg.hidden, cfg.ff_mult, cfg.ff_kernel, cfg.dropout)

    def forward(
        self, h: torch.Tensor, keep: torch.Tensor | None, segments: tuple[int, ...], taps, path: str
    ) -> torch.Tensor:
        h = h + self.attn(self.norm1(h), keep)
        return h + self.ff(self.norm2(h), keep, segments, taps, path)


class DiT(nn.Module):
    """Epsilon predictor eps(x_t, t, cond) for latents [B, C, L] (see the module docstring)."""

    def __init__(self, config: DiTConfig | str = "paper"):
        super().__init__()
        cfg = make_config(config) if isinstance(config, str) else config
        self.config = cfg
        self.x_embed = nn.Conv1d(cfg.in_channels, cfg.hidden, cfg.in_kernel, padding=cfg.in_kernel // 2)
        self.c_embed = ConditionEmbedder(cfg.cond_channels, cfg.cond_dim, cfg.hidden)
        self.t_embed = TimestepEmbedder(cfg.hidden, cfg.time_freq_dim)
        self.null_cond = nn.Parameter(torch.randn(cfg.hidden) * 0.02)
        if cfg.positions not in ("aligned", "offset"):
            raise ValueError(f"positions must be 'aligned' or 'offset', not {cfg.positions!r}")
        # Position table, learned as in Make-An-Audio 2 but started from sin-cos so positions
        # that short training crops rarely reach still carry an ordered, smooth signal.
        n_pos = 1 + cfg.max_len if cfg.positions == "aligned" else 1 + 2 * cfg.max_len
        self.pos = nn.Parameter(sinusoids(torch.arange(n_pos), cfg.hidden))
        # Segment embeddings [time, condition, x]: with aligned positions they are the only
        # thing that tells a condition frame from the noisy frame at the same time.
        self.segment = nn.Parameter(torch.randn(3, cfg.hidden) * 0.02) if cfg.positions == "aligned" else None
        self.c_to_x = nn.Linear(cfg.hidden, cfg.hidden) if cfg.frame_cond else None
        self.blocks = nn.ModuleList([FFTBlock(cfg) for _ in range(cfg.depth)])
        self.final_norm = nn.LayerNorm(cfg.hidden)
        # Table 9 lists kernel 5 with padding 3 (L + 2 outputs, cut back to L); padding 2 gives
        # the same centred window directly.
        self.out_proj = nn.Conv1d(cfg.hidden, cfg.out_channels, cfg.out_kernel, padding=cfg.out_kernel // 2)
        self._init_weights()
        self.config_extra: dict = {}  # the rest of config.json (task, latent scales, ...) once loaded
        # How the convolutions run (CONV_PATHS; not part of the config: same values either way).
        self.conv_path = "auto"

    def _init_weights(self) -> None:
        # As DiT / Make-An-Audio 2: xavier linears with zero bias, small-normal timestep MLP.
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.normal_(self.t_embed.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embed.mlp[2].weight, std=0.02)
        if self.c_to_x is not None:
            nn.init.zeros_(self.c_to_x.weight)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor | None = None,
        cond_mask: torch.Tensor | None = None,
        x_mask: torch.Tensor | None = None,
        drop_cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict the noise in x_t.

        x_t [B, C, L]; t [B] (or a scalar) diffusion steps; cond [B, Cc, Lc] or None (None:
        every sample gets the null condition, Lc = L); masks [B, L] / [B, Lc] bool, True =
        valid frame (default all valid; cond_mask defaults to x_mask when Lc == L);
        drop_cond [B] bool: replace those samples' condition by the null embedding
        (classifier-free guidance). Returns eps [B, out_channels, L], zero at padded frames.
        """
        cfg = self.config
        B, _, L = x_t.shape
        dev = x_t.device
        if L > cfg.max_len:
            raise ValueError(f"latent has {L} frames, over max_len {cfg.max_len}; use sliding-window sampling")
        # Every tensor below is made on the latents' device from Python numbers: a forward pass
        # copies nothing from the host and reads nothing back (the sampling loop never waits).
        t = t.to(dev) if isinstance(t, torch.Tensor) else torch.full((B,), t, device=dev)
        if t.ndim == 0:
            t = t.expand(B)
        x_mask = None if x_mask is None else x_mask.bool()

        if cond is None:
            Lc = L
            c_tok = self.null_cond.expand(B, L, -1)
            cond_mask = x_mask if cond_mask is None else cond_mask.bool()
        else:
            Lc = cond.shape[-1]
            if Lc > cfg.max_len:
                raise ValueError(f"condition has {Lc} frames, over max_len {cfg.max_len}")
            c_tok = self.c_embed(cond.transpose(1, 2))
            if drop_cond is not None:
                c_tok = torch.where(drop_cond.to(dev).bool()[:, None, None], self.null_cond.to(c_tok.dtype), c_tok)
            if cond_mask is None:
                cond_mask = x_mask if Lc == L else None
            else:
                cond_mask = cond_mask.bool()
        # Masks only where something is padded; None (all valid) skips the zeroing and lets
        # attention run unmasked.
        keep = None
        if x_mask is not None or cond_mask is not None:
            x_mask = torch.ones(B, L, dtype=torch.bool, device=dev) if x_mask is None else x_mask
            cond_mask = torch.ones(B, Lc, dtype=torch.bool, device=dev) if cond_mask is None else cond_mask
            keep = torch.cat([torch.ones(B, 1, dtype=torch.bool, device=dev), cond_mask, x_mask], dim=1)
        path = conv_path_for(self.conv_path, dev)

        x_tok = masked_conv(self.x_embed, x_t.transpose(1, 2), x_mask, path=path)
        if self.c_to_x is not None:
            if Lc != L:
                raise ValueError(f"frame_cond needs a condition as long as the latent: {Lc} vs {L} frames")
            c_x = self.c_to_x(c_tok)
            x_tok = x_tok + (c_x if x_mask is None else c_x * x_mask[..., None].to(c_x.dtype))
        t_tok = self.t_embed(t)[:, None]
        h = torch.cat([t_tok, c_tok, x_tok], dim=1)
        x_offset = 1 if cfg.positions == "aligned" else 1 + cfg.max_len
        pos_ids = torch.cat(
            [
                torch.zeros(1, dtype=torch.long, device=dev),
                1 + torch.arange(Lc, device=dev),
                x_offset + torch.arange(L, device=dev),
            ]
        )
        h = h + self.pos[pos_ids]
        if self.segment is not None:
            seg_ids = torch.cat(
                [
                    torch.zeros(1, dtype=torch.long, device=dev),
                    torch.ones(Lc, dtype=torch.long, device=dev),
                    torch.full((L,), 2, dtype=torch.long, device=dev),
                ]
            )
            h = h + self.segment[seg_ids]
        segments = (1, Lc, L)
        taps = segment_taps(segments, cfg.ff_kernel, dev) if path == "matmul" else None
        for block in self.blocks:
            h = block(h, keep, segments, taps, path)
        h = self.final_norm(h[:, 1 + Lc :])  # truncate to the noisy latent's frames
        eps = masked_conv(self.out_proj, h, x_mask, path=path).transpose(1, 2)
        return eps if x_mask is None else eps * x_mask[:, None].to(eps.dtype)

    # -- persistence: safetensors weights + a JSON config, no pickle -----------------------
    def save_pretrained(self, path, extra: dict | None = None) -> None:
        """Write `model.safetensors` and `config.json` ({"dit": config, **extra}) into the
        folder `path` atomically."""
        save_pretrained(self, path, {"dit": self.config.to_dict(), **(extra or {})})

    @classmethod
    def from_pretrained(cls, path, map_location: str = "cpu") -> DiT:
        """Load a finished run (its folder or its model.safetensors); the rest of its
        config.json is in `model.config_extra`."""
        cfg, state = load_pretrained(path, map_location)
        model = cls(DiTConfig.from_dict(cfg["dit"]))
        model.load_state_dict(state)
        model.config_extra = {k: v for k, v in cfg.items() if k != "dit"}
        return model.eval()


def load_diffusion(path, map_location: str = "cpu") -> tuple[DiT, dict]:
    """A finished diffusion run (EMA weights) and its config: task, latent scales, bone
    lengths, the VAE's config, ... and the DiT's under "dit" (every field, defaults filled in)."""
    model = DiT.from_pretrained(path, map_location)
    return model, {"dit": model.config.to_dict(), **model.config_extra}
