"""Rhythmic contrastive learning between motion and music latents (section 3.2, eq. 3-4).

For every motion-music latent pair we sample a few clip windows (start/end in latent
frames), give each window a kinematic amplitude category from the clip-wise maximum of
the kinematic amplitude indicator (eq. 2, given at the mel frame rate), max-pool the
motion and music latents of each window over time into one vector (eq. 3) and train a
symmetric InfoNCE (eq. 4): the motion and music windows of the same time span are the
positive pair; a window is a negative only if it lies at another time (another pair, or
no temporal overlap within the pair) AND in another amplitude category. Windows of the
same category at other times are left out of the denominator, which is the paper's point:
random negatives often share the rhythm of the positive and should not be pushed apart.

Everything here works on channels-first latents [B, C, T'] and knows nothing about the
VAEs except the temporal downsampling factor between mel frames and latent frames.
Choices the paper leaves open are listed in docs/bicor_vae.md.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class RhythmicContrastConfig:
    window: int = 16  # window length in latent frames (0.51 s at factor 2)
    windows_per_pair: int = 8  # windows sampled per motion-music pair and step
    num_categories: int = 4  # uniform bins of the window's max amplitude on [0, 1]
    temperature: float = 0.1  # InfoNCE temperature (initial value if learnable)
    learnable_temperature: bool = False
    proj_dim: int = 0  # >0: per-modality linear projection heads to this width
    rhythmic_negatives: bool = True  # False: plain temporal contrast (every other window is a negative)
    min_temperature: float = 0.01  # clamp for a learnable temperature, keeps logits bounded
    max_temperature: float = 1.0

    def __post_init__(self):
        if self.window < 1 or self.windows_per_pair < 1 or self.num_categories < 1:
            raise ValueError(f"window, windows_per_pair and num_categories must be >= 1: {self}")
        if not self.min_temperature <= self.temperature <= self.max_temperature:
            raise ValueError(
                f"temperature {self.temperature} outside [{self.min_temperature}, {self.max_temperature}]"
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RhythmicContrastConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# ---------------------------------------------------------------------------------------
# masks and windows
# ---------------------------------------------------------------------------------------


def downsample_mask(mask: torch.Tensor, factor: int) -> torch.Tensor:
    """Frame mask [B, T] -> latent mask [B, ceil(T / factor)]: a latent frame is valid when
    any of the `factor` input frames it covers is valid (so a clip of n valid frames has
    exactly ceil(n / factor) valid latent frames, matching the encoder's end padding)."""
    B, T = mask.shape
    Tp = -(-T // factor) * factor
    m = F.pad(mask.bool(), (0, Tp - T), value=False)
    return m.view(B, Tp // factor, factor).any(dim=-1)


def sample_windows(
    lengths: torch.Tensor, window: int, k: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Stratified random window starts [B, k] (latent frames) for clips of `lengths` [B].

    The admissible starts 0..L-window are split into k equal strata and one start is drawn
    uniformly in each, so windows spread over the whole clip and do not overlap whenever
    the clip is long enough (L >= k * window). A clip shorter than the window gets start 0
    and a truncated window (see pool_windows).
    """
    lengths = lengths.long()
    span = (lengths - window + 1).clamp(min=1).to(torch.float64)  # admissible starts
    u = torch.rand(
        lengths.shape[0],
        k,
        generator=generator,
        dtype=torch.float64,
        device=generator.device if generator is not None else lengths.device,
    )
    u = u.to(lengths.device)
    strata = torch.arange(k, device=lengths.device, dtype=torch.float64)
    starts = torch.floor((strata[None] + u) / k * span[:, None]).long()
    return torch.minimum(starts, (span.long() - 1)[:, None]).clamp(min=0)


def _window_index(starts: torch.Tensor, window: int, length: torch.Tensor, limit: int):
    """Frame indices [B, K, window] of each window, clamped into range, and which of them
    are real frames of the clip (inside [start, start+window) and before length)."""
    idx = starts[..., None] + torch.arange(window, device=starts.device)
    valid = idx < length[:, None, None]
    return idx.clamp(max=max(limit - 1, 0)), valid


def pool_windows(latent: torch.Tensor, starts: torch.Tensor, window: int, lengths: torch.Tensor) -> torch.Tensor:
    """Max-pool latent [B, C, T'] over each window (eq. 3) -> [B, K, C].

    Frames past a clip's length are excluded from the max; a window with no valid frame
    (an empty clip) pools to zeros and is marked invalid by the caller.
    """
    B, C, T = latent.shape
    idx, valid = _window_index(starts, window, lengths, T)  # [B, K, W]
    K = starts.shape[1]
    g = torch.gather(latent, 2, idx.reshape(B, 1, K * window).expand(B, C, K * window))
    g = g.view(B, C, K, window).permute(0, 2, 3, 1)  # [B, K, W, C]
    g = g.masked_fill(~valid[..., None], float("-inf"))
    pooled = g.amax(dim=2)
    return torch.where(torch.isfinite(pooled), pooled, torch.zeros_like(pooled))


def window_max_amplitude(
    amp: torch.Tensor, starts: torch.Tensor, window: int, factor: int, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Clip-wise maximum kinematic amplitude [B, K] of latent windows.

    amp [B, T] is at the mel frame rate; latent window [s, s+window) covers mel frames
    [s*factor, (s+window)*factor), cut at T and at the mask.
    """
    B, T = amp.shape
    a = amp.float()
    if mask is not None:
        a = a.masked_fill(~mask.bool(), float("-inf"))
    Tp = -(-T // factor) * factor
    # max over each latent frame's mel frames first, then over the window's latent frames
    a = F.pad(a, (0, Tp - T), value=float("-inf")).view(B, Tp // factor, factor).amax(-1)
    lat_len = torch.full((B,), a.shape[1], device=a.device, dtype=torch.long)
    idx, valid = _window_index(starts, window, lat_len, a.shape[1])
    w = torch.gather(a, 1, idx.view(B, -1)).view_as(idx).masked_fill(~valid, float("-inf"))
    m = w.amax(-1)
    return torch.where(torch.isfinite(m), m, torch.zeros_like(m))


def amplitude_category(max_amp: torch.Tensor, num_categories: int) -> torch.Tensor:
    """Category of each window: uniform bins of [0, 1], the top bin closed (1.0 -> last)."""
    c = torch.floor(max_amp.clamp(0.0, 1.0) * num_categories).long()
    return c.clamp(max=num_categories - 1)


def window_categories(
    amp: torch.Tensor,
    starts: torch.Tensor,
    window: int,
    factor: int,
    num_categories: int,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Amplitude category [B, K] of each latent window (amp at the mel rate, [B, T])."""
    return amplitude_category(window_max_amplitude(amp, starts, window, factor, mask), num_categories)


def contrast_mask(
    starts: torch.Tensor, categories: torch.Tensor, valid: torch.Tensor, window: int, rhythmic: bool = True
) -> torch.Tensor:
    """Which entries of the N x N (N = B*K) window similarity matrix take part in the loss.

    Entry (i, j) compares motion window i with music window j. The diagonal (positives)
    always takes part; an off-diagonal entry is a negative when the two windows are at
    different times -- different pairs, or the same pair without temporal overlap -- and,
    with rhythmic negatives, in different amplitude categories. Invalid windows (empty
    clips) take part nowhere.
    """
    B, K = starts.shape
    pair = torch.arange(B, device=starts.device).repeat_interleave(K)
    s = starts.reshape(-1)
    cat = categories.reshape(-1)
    v = valid.reshape(-1)
    same_pair = pair[:, None] == pair[None, :]
    overlap = (s[:, None] - s[None, :]).abs() < window
    other_time = ~(same_pair & overlap)
    neg = other_time
    if rhythmic:
        neg = neg & (cat[:, None] != cat[None, :])
    eye = torch.eye(B * K, dtype=torch.bool, device=starts.device)
    return (neg | eye) & v[:, None] & v[None, :]


def symmetric_info_nce(
    motion_vec: torch.Tensor, music_vec: torch.Tensor, allowed: torch.Tensor, temperature: torch.Tensor | float
) -> torch.Tensor:
    """Symmetric InfoNCE over cosine similarities (eq. 4).

    motion_vec, music_vec: [N, D]; row i of each is the same time span. allowed [N, N] is
    contrast_mask. The motion->music term is cross-entropy over rows (music candidates for
    each motion window), the music->motion term over columns; the loss is their mean.
    Anchors without any allowed negative carry no contrastive signal and are left out of
    the average; if no anchor has one, the loss is a graph-connected zero.
    """
    # similarities in float32 even under bf16 autocast: a temperature of 0.1 turns bf16's
    # ~3 significant digits into visibly coarse logits
    with torch.autocast(device_type=motion_vec.device.type, enabled=False):
        m = F.normalize(motion_vec.float(), dim=-1)
        a = F.normalize(music_vec.float(), dim=-1)
        logits = (m @ a.t()) / temperature
    logits = logits.masked_fill(~allowed, float("-inf"))
    diag = torch.arange(logits.shape[0], device=logits.device)
    has_pos = allowed[diag, diag]

    def one_way(lg: torch.Tensor, alw: torch.Tensor) -> torch.Tensor:
        idx = diag[has_pos & (alw.sum(dim=1) > 1)]
        if idx.numel() == 0:
            return lg.masked_fill(~alw, 0.0).sum() * 0.0
        return (torch.logsumexp(lg[idx], dim=1) - lg[idx, idx]).mean()

    return 0.5 * (one_way(logits, allowed) + one_way(logits.t(), allowed.t()))


# ---------------------------------------------------------------------------------------
# the loss module (holds the optional projection heads and learnable temperature)
# ---------------------------------------------------------------------------------------


class RhythmicContrast(nn.Module):
    """The rhythmic contrastive loss with its (optional) parameters.

    forward(motion_latent [B,C,T'], music_latent [B,C,T'], amp [B,T], factor, mask [B,T])
    -> scalar loss. amp and mask are at the mel frame rate; factor is the VAEs' temporal
    downsampling factor. Pass a torch.Generator for reproducible window sampling.
    """

    def __init__(self, cfg: RhythmicContrastConfig, latent_channels: int):
        super().__init__()
        self.cfg = cfg
        if cfg.proj_dim > 0:
            self.motion_head = nn.Linear(latent_channels, cfg.proj_dim)
            self.music_head = nn.Linear(latent_channels, cfg.proj_dim)
        else:
            # no heads: the contrast acts on the latents themselves, which is what makes the
            # two latent spaces interchangeable for the diffusion model
            self.motion_head = nn.Identity()
            self.music_head = nn.Identity()
        log_t = torch.tensor(math.log(cfg.temperature))
        if cfg.learnable_temperature:
            self.log_temperature = nn.Parameter(log_t)
        else:
            self.register_buffer("log_temperature", log_t)

    @property
    def temperature(self) -> torch.Tensor:
        c = self.cfg
        return self.log_temperature.exp().clamp(c.min_temperature, c.max_temperature)

    def sample(self, lengths: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return sample_windows(lengths, self.cfg.window, self.cfg.windows_per_pair, generator)

    def forward(
        self,
        motion_latent: torch.Tensor,
        music_latent: torch.Tensor,
        amp: torch.Tensor,
        factor: int,
        mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        starts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        c = self.cfg
        if motion_latent.shape != music_latent.shape:
            raise ValueError(
                f"motion {tuple(motion_latent.shape)} and music {tuple(music_latent.shape)} "
                "latents must have the same shape (same T and downsampling)"
            )
        B, _, Tl = motion_latent.shape
        if mask is None:
            lat_len = torch.full((B,), Tl, dtype=torch.long, device=motion_latent.device)
        else:
            lat_len = downsample_mask(mask, factor)[:, :Tl].sum(dim=1)
        if starts is None:
            starts = self.sample(lat_len, generator)
        cats = window_categories(amp, starts, c.window, factor, c.num_categories, mask)
        valid = (lat_len > 0)[:, None].expand_as(starts)
        m = self.motion_head(pool_windows(motion_latent, starts, c.window, lat_len))
        a = self.music_head(pool_windows(music_latent, starts, c.window, lat_len))
        allowed = contrast_mask(starts, cats, valid, c.window, c.rhythmic_negatives)
        return symmetric_info_nce(
            m.reshape(B * starts.shape[1], -1), a.reshape(B * starts.shape[1], -1), allowed, self.temperature
        )


# ---------------------------------------------------------------------------------------
# validation: motion-to-music window retrieval
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetrievalResult:
    accuracy: float  # fraction of motion windows whose nearest music window is their own
    chance: float  # expected accuracy of random latents: mean over queries of 1 / candidates
    windows: int  # number of motion queries (= music candidates)


@torch.no_grad()
def retrieval_accuracy(
    motion_latent: torch.Tensor,
    music_latent: torch.Tensor,
    window: int,
    latent_mask: torch.Tensor | None = None,
    stride: int | None = None,
) -> RetrievalResult:
    """Motion-to-music retrieval accuracy of latent windows, the alignment figure for
    validation.

    Each clip's valid latent frames are cut into windows of `window` frames every `stride`
    (default: `window`, non-overlapping; a clip shorter than one window gives one short
    window), each window is max-pooled over time as in training, and every motion window
    queries all music windows of the batch by cosine similarity. Accuracy is the fraction
    whose best match is the music window of the same clip and time; chance is 1 / (number
    of music windows).
    """
    if motion_latent.shape != music_latent.shape:
        raise ValueError("motion and music latents must have the same shape")
    stride = stride or window
    B, C, T = motion_latent.shape
    if latent_mask is None:
        lengths = torch.full((B,), T, dtype=torch.long, device=motion_latent.device)
    else:
        lengths = latent_mask.bool().sum(dim=1)
    m_all, a_all = [], []
    for b in range(B):
        L = int(lengths[b])
        if L == 0:
            continue
        starts = torch.arange(0, max(L - window, 0) + 1, stride, device=motion_latent.device)
        lb = lengths[b : b + 1]
        m_all.append(pool_windows(motion_latent[b : b + 1], starts[None], window, lb)[0])
        a_all.append(pool_windows(music_latent[b : b + 1], starts[None], window, lb)[0])
    if not m_all:
        return RetrievalResult(accuracy=float("nan"), chance=float("nan"), windows=0)
    m = F.normalize(torch.cat(m_all).float(), dim=-1)
    a = F.normalize(torch.cat(a_all).float(), dim=-1)
    n = m.shape[0]
    hit = (m @ a.t()).argmax(dim=1) == torch.arange(n, device=m.device)
    return RetrievalResult(accuracy=float(hit.float().mean()), chance=1.0 / n, windows=n)
