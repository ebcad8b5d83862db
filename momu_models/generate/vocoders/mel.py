"""Our mel and a neural vocoder's: the Slaney filter bank and `MelAdapter` (ours -> a checkpoint's layout)."""

from __future__ import annotations

import math

import numpy as np

from momu_data.timebase import FMAX, FMIN, HOP, LOG_FLOOR, N_FFT, N_MELS, SR, WIN


def slaney_filters(sr: float, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    """librosa's Slaney-normalised mel filter bank [n_mels, n_fft // 2 + 1] (the one HiFi-GAN, BigVGAN and we use)."""
    import librosa

    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=False, norm="slaney")


class MelAdapter:
    """Our log-mel (16 kHz, centred frames at 62.5 fps) -> a vocoder's log-mel.

    HiFi-GAN / BigVGAN training mels (meldataset.py) are magnitude STFTs of audio padded by
    (n_fft - hop) / 2 with center=False, so their frame j is centred at j*hop + hop/2 samples,
    and the generator writes frame j's audio to samples [j*hop, (j+1)*hop). We resample our
    mel in time (linear, on the log) at exactly those centre times.

    Filters: when the target bank has our band edges and bin count (HiFi-GAN V1, BigVGAN
    22 kHz 80-band fmax 8k), the Slaney filters are the same functions of Hz and only the
    amplitude differs. Otherwise each target filter (as a function of Hz) is fitted as a
    non-negative combination of ours (a fixed [n_target, 80] matrix); target bands above our
    8 kHz get nothing, which is right: 16 kHz audio has no content there.

    Amplitude: the same sound gives mel values that depend on sample rate, n_fft and window
    length. For a broadband (noise-like) spectrum the ratio target/ours is
    (n_fft_t / n_fft) * sqrt(win_t * SR / (WIN * sr_t)) (mel = sum over FFT bins of
    filter * |X|; bins are sr/n_fft apart and E|X|^2 grows with win * sr); for a pure tone it
    is 1. `offset` is added to the log-mel; docs/vocoder.md measures which works best.
    """

    def __init__(self, h: dict, offset: float | str = "auto"):
        self.sr = int(h["sampling_rate"])
        self.hop = int(h["hop_size"])
        self.n_fft = int(h.get("n_fft", 1024))
        self.win = int(h.get("win_size", self.n_fft))
        self.n_mels = int(h["num_mels"])
        fmin = float(h.get("fmin", 0) or 0)
        fmax = h.get("fmax")
        fmax = float(fmax) if fmax is not None else self.sr / 2
        self.matrix = None
        if not (self.n_mels == N_MELS and fmin == FMIN and abs(fmax - FMAX) < 1e-6):
            self.matrix = self._transfer(self.sr, self.n_fft, self.n_mels, fmin, fmax)
        if offset == "auto":
            offset = self.broadband_offset(self.sr, self.n_fft, self.win)
        self.offset = float(offset)

    @staticmethod
    def broadband_offset(sr: int, n_fft: int, win: int) -> float:
        return math.log((n_fft / N_FFT) * math.sqrt(win * SR / (WIN * sr)))

    @staticmethod
    def _transfer(sr, n_fft, n_mels, fmin, fmax) -> np.ndarray:
        from scipy.optimize import nnls

        # Slaney filter values are functions of Hz (peak 2 / bandwidth) whatever the FFT
        # size, so both banks are compared on one fine frequency grid as they are; the
        # FFT-resolution part of the scale is the amplitude offset's job.
        grid = np.linspace(0, max(sr, SR) / 2, 4097)
        ours = slaney_filters(SR, N_FFT, N_MELS, FMIN, FMAX)
        theirs = slaney_filters(sr, n_fft, n_mels, fmin, fmax)
        f_o = np.linspace(0, SR / 2, ours.shape[1])
        f_t = np.linspace(0, sr / 2, theirs.shape[1])
        A = np.stack([np.interp(grid, f_o, row, right=0.0) for row in ours], axis=1)
        W = np.zeros((n_mels, N_MELS))
        inside = grid <= FMAX
        for i, row in enumerate(theirs):
            target = np.interp(grid, f_t, row, right=0.0)
            W[i], _ = nnls(A, target)
            # Least squares does not conserve area; a Slaney filter's area is its response to
            # a flat spectrum, so rescale to keep the area of the target's part inside our band
            # (else broadband levels come out ~10 % high for a 100-band 0-12 kHz bank).
            fit = (A @ W[i]).sum()  # uniform grid: sums are areas up to the same factor
            if fit > 0:
                W[i] *= (target * inside).sum() / fit
        return W.astype(np.float32)

    def n_frames(self, T: int) -> int:
        # Enough target frames to cover T*HOP output samples at 16 kHz, plus one so the
        # resampler back to 16 kHz has real signal at the very end.
        return int(math.ceil(T * HOP / SR * self.sr / self.hop)) + 1

    def __call__(self, mel: np.ndarray) -> np.ndarray:  # [B, 80, T] -> [B, n_mels_t, J]
        T = mel.shape[-1]
        J = self.n_frames(T)
        # Fractional index into our frames of each target frame centre: (j*hop + hop/2) / sr seconds.
        pos = (np.arange(J) * self.hop + self.hop / 2) / self.sr * (SR / HOP)
        pos = np.clip(pos, 0, T - 1)
        i0 = np.floor(pos).astype(int)
        i1 = np.minimum(i0 + 1, T - 1)
        w = (pos - i0).astype(np.float32)
        x = mel[..., i0] * (1 - w) + mel[..., i1] * w
        if self.matrix is not None:
            lin = np.einsum("nm,bmt->bnt", self.matrix, np.exp(x))
            x = np.log(np.maximum(lin, LOG_FLOOR))
        # Both conventions floor at log(1e-5): keep the floor after the shift.
        return np.maximum(x + self.offset, math.log(LOG_FLOOR)).astype(np.float32)
