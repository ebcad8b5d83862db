"""Griffin-Lim: our mel -> linear magnitude -> fast Griffin-Lim; no weights, always available.

Two engines run the same algorithm (Perraudin et al.'s fast Griffin-Lim with momentum, as
`librosa.griffinlim`): "torch" (default) iterates with torch.stft / torch.istft on the whole
batch at once, on the cores torch is given, and needs no librosa import (~3 s cold in a fresh
process); "librosa" calls `librosa.griffinlim`. On the same magnitudes they reach the same
log-mel L1 (tests/generate/test_vocoder.py); only the random initial phase differs.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from momu_data.timebase import FMAX, FMIN, HOP, N_FFT, N_MELS, SR, WIN
from momu_models.generate.vocoders.base import Vocoder
from momu_models.generate.vocoders.mel import slaney_filters

# Griffin-Lim iterations. Measured on 4 x 10 s of real music (docs/vocoder.md): log-mel L1
# 0.137 / 0.127 / 0.123 / 0.122 at 16 / 32 / 64 / 100 iterations; the time is linear in
# n_iter. 32 is where doubling stops paying (-3 % L1 for 2x time).
GRIFFINLIM_N_ITER = 32


class GriffinLimVocoder(Vocoder):
    """Mel -> linear magnitude -> Griffin-Lim (librosa), on exactly `momu_data.features.log_mel`'s convention.

    inverse="pinv" (default) maps the mel to a magnitude spectrogram with the clipped
    pseudo-inverse of our Slaney filter bank; "nnls" uses librosa's
    `feature.inverse.mel_to_stft` (non-negative least squares). Measured on real music they
    give the same log-mel L1 after Griffin-Lim (0.127 at 32 iterations) while NNLS costs
    ~0.2 s per second of audio and the pseudo-inverse ~0.001 s.
    """

    name = "griffinlim"

    def __init__(
        self,
        n_iter: int = GRIFFINLIM_N_ITER,
        seed: int = 0,
        inverse: str = "pinv",
        engine: str = "torch",
        device: str | torch.device = "cpu",
    ):
        if inverse not in ("pinv", "nnls"):
            raise ValueError(f"inverse must be 'pinv' or 'nnls', got {inverse!r}")
        if engine not in ("torch", "librosa"):
            raise ValueError(f"engine must be 'torch' or 'librosa', got {engine!r}")
        if engine == "librosa" or inverse == "nnls":
            import librosa  # noqa: F401  (fail here, not on first call)
        self.engine = engine
        self.n_iter = int(n_iter)
        self.seed = seed
        self.inverse = inverse
        self.device = torch.device(device)  # where the torch engine iterates (the GPU of a CUDA generation)
        self._pinv = None

    def _magnitude(self, mel_lin: np.ndarray) -> np.ndarray:
        import librosa

        if self.inverse == "nnls":
            return librosa.feature.inverse.mel_to_stft(
                mel_lin,
                sr=SR,
                n_fft=N_FFT,
                power=1.0,
                fmin=FMIN,
                fmax=FMAX,
                htk=False,
                norm="slaney",
            )
        if self._pinv is None:
            self._pinv = np.linalg.pinv(slaney_filters(SR, N_FFT, N_MELS, FMIN, FMAX).astype(np.float64))
        return np.maximum(self._pinv @ mel_lin, 0.0)

    def _magnitudes(self, mel: np.ndarray) -> np.ndarray:
        """[B, 80, T] log-mel -> [B, 513, T + 1] linear magnitudes."""
        # exp undoes the natural log; values at the 1e-5 floor become ~1e-5, i.e. silence.
        mags = np.stack([self._magnitude(np.exp(m.astype(np.float64))) for m in mel])
        # T*256 samples hold T+1 centred frames; repeat the last magnitude frame so
        # Griffin-Lim's STFT/ISTFT round trip has the shape of the output we return.
        return np.concatenate([mags, mags[..., -1:]], axis=-1)

    def _synthesise(self, mel: np.ndarray) -> np.ndarray:
        mags = self._magnitudes(mel)
        length = mel.shape[-1] * HOP
        if self.engine == "torch":
            return griffinlim_torch(mags, self.n_iter, self.seed, length, device=self.device)
        import librosa

        outs = []
        for mag in mags:
            # A fixed seed makes the random initial phase, hence the output, reproducible.
            with warnings.catch_warnings():
                # Clips under 4 frames are shorter than n_fft; librosa warns about its own
                # internal STFT, which the caller cannot act on. The output is still valid.
                warnings.filterwarnings("ignore", message="n_fft=.*is too large for input signal")
                y = librosa.griffinlim(
                    mag,
                    n_iter=self.n_iter,
                    hop_length=HOP,
                    win_length=WIN,
                    n_fft=N_FFT,
                    window="hann",
                    center=True,
                    momentum=0.99,
                    init="random",
                    random_state=self.seed,
                    length=length,
                )
            outs.append(y.astype(np.float32))
        return np.stack(outs)


def griffinlim_torch(
    mags: np.ndarray, n_iter: int, seed: int, length: int, momentum: float = 0.99, device="cpu"
) -> np.ndarray:
    """Fast Griffin-Lim (the algorithm of `librosa.griffinlim`: random initial phase, then
    n_iter rounds of ISTFT -> STFT with momentum on the rebuilt spectrum) on magnitudes
    [B, N_FFT // 2 + 1, frames], with our STFT (Hann window WIN, hop HOP, centred, zero
    padding), in float32 on `device` (torch's threads on the CPU). Returns [B, length]
    float32 audio."""
    # non_blocking: copies from the host are queued, not waited for; the loop below reads
    # nothing back from the device either (see _istft), so on a GPU the host waits only for
    # the audio at the end.
    S = torch.from_numpy(np.ascontiguousarray(mags, dtype=np.float32)).to(device, non_blocking=True)
    window = torch.hann_window(WIN)
    # torch.stft cannot take a frame longer than its (padded) input: very short clips get
    # a zero tail for the iterations (at least N_FFT samples), cut again at the end (their
    # output is still valid).
    istft = _istft(window, S.device, S.shape[-1], max(length, N_FFT))
    window = window.to(S.device, non_blocking=True)
    # Each item's initial phase from its own generator with the same seed, drawn on the CPU:
    # an item gets the same audio whatever else is in the batch and whatever the device.
    phase = torch.stack([torch.rand(S.shape[1:], generator=torch.Generator().manual_seed(seed)) for _ in S])
    phase = phase.to(S.device, non_blocking=True)
    angles = torch.polar(torch.ones_like(S), 2 * np.pi * phase)
    rebuilt = torch.zeros_like(angles)
    with torch.no_grad():
        for _ in range(n_iter):
            previous = rebuilt
            rebuilt = torch.stft(
                istft(S * angles), N_FFT, HOP, WIN, window, center=True, pad_mode="constant", return_complex=True
            )
            rebuilt = rebuilt[..., : S.shape[-1]]
            angles = rebuilt - (momentum / (1 + momentum)) * previous
            angles = angles / (angles.abs() + 1e-16)
        return istft(S * angles)[..., :length].cpu().numpy()


def _istft(window: torch.Tensor, device, frames: int, n: int):
    """spec [B, N_FFT // 2 + 1, frames] on `device` -> audio [B, n]: torch.istft(spec, N_FFT,
    HOP, WIN, window, center=True, length=n) as an overlap-add whose window envelope is
    computed and checked (NOLA) once, from the CPU `window`. torch.istft checks it at every
    call by reading a value back, which on a GPU would make each Griffin-Lim iteration wait."""
    F = torch.nn.functional
    total = N_FFT + HOP * (frames - 1)
    start = N_FFT // 2
    left = (N_FFT - WIN) // 2
    window = F.pad(window, (left, N_FFT - WIN - left))  # centred in the frame, as torch.istft does

    def overlap_add(cols: torch.Tensor) -> torch.Tensor:  # [B, frames, N_FFT] -> [B, total]
        # the overlap-add torch.istft itself runs (the adjoint of Tensor.unfold)
        return torch.ops.aten.unfold_backward(cols, [cols.shape[0], total], 1, N_FFT, HOP)

    env = overlap_add((window * window).expand(1, frames, N_FFT).contiguous())[0, start : start + n]
    if env.abs().min() < 1e-11:  # on the host, once
        raise ValueError("the Griffin-Lim window does not overlap-add to a positive envelope (NOLA)")
    # past the signal's end (clips under N_FFT samples): zeros, as torch.istft pads (and warns)
    inv_env = F.pad(1 / env, (0, n - env.shape[0]), value=1.0).to(device, non_blocking=True)
    window = window.to(device, non_blocking=True)

    def istft(spec: torch.Tensor) -> torch.Tensor:
        y = overlap_add(torch.fft.irfft(spec.transpose(1, 2), n=N_FFT, dim=-1) * window)[:, start : start + n]
        return F.pad(y, (0, n - y.shape[-1])) * inv_env

    return istft
