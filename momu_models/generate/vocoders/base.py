"""The vocoder contract: our log-mel [80, T] (62.5 frames/s) -> float32 16 kHz audio of exactly T * 256 samples."""

from __future__ import annotations

import abc

import numpy as np
import torch

from momu_data.timebase import HOP, N_MELS, SR


class VocoderError(RuntimeError):
    """A vocoder cannot be built: the message is the one-line reason and what to do."""


class Vocoder(abc.ABC):
    """Log-mel [80, T] (numpy) or [B, 80, T] (numpy/torch) -> float32 16 kHz audio, T*256 samples."""

    name: str = "base"
    sample_rate: int = SR

    def __call__(self, log_mel) -> np.ndarray:
        if isinstance(log_mel, torch.Tensor):
            log_mel = log_mel.detach().to("cpu", torch.float32).numpy()
        mel = np.asarray(log_mel, dtype=np.float32)
        single = mel.ndim == 2
        if single:
            mel = mel[None]
        if mel.ndim != 3 or mel.shape[1] != N_MELS:
            raise ValueError(
                f"expected a log-mel [{N_MELS}, T] or [B, {N_MELS}, T], got shape {tuple(np.shape(log_mel))}"
            )
        if not np.isfinite(mel).all():
            raise ValueError("log-mel contains NaN or inf")
        n = mel.shape[-1] * HOP
        if mel.shape[-1] == 0:
            out = np.zeros((mel.shape[0], 0), dtype=np.float32)
        else:
            out = np.asarray(self._synthesise(mel), dtype=np.float32)
            # Exact length contract: each backend lands within a few samples of T*256
            # (STFT centring, resampler edges); trim or zero-pad the tail.
            if out.shape[-1] >= n:
                out = out[:, :n]
            else:
                out = np.pad(out, ((0, 0), (0, n - out.shape[-1])))
        out = np.ascontiguousarray(out, dtype=np.float32)
        return out[0] if single else out

    @abc.abstractmethod
    def _synthesise(self, mel: np.ndarray) -> np.ndarray:
        """[B, 80, T] float32 log-mel -> [B, about T*256] audio at 16 kHz (the caller trims/pads)."""

    def __repr__(self) -> str:
        return f"<Vocoder {self.name} @ {self.sample_rate} Hz>"
