"""Envelope sync: does one signal's accents follow the other's, without picking beats?

The beat scores (beats.py) compare peak-picked beat times, so they hinge on the peak
picker's threshold, and at 2-3 beats per second nearly every 1 s bin holds a beat whatever
the motion does. The sync score compares the envelopes the beats are picked from:

- music: the log-mel flux, the summed positive frame-to-frame difference of the 80-bin
  log-mel (momu_data.features.log_mel), one value per mel frame (62.5 frames/s);
- motion: the kinematic amplitude (eq. 2, momu_data.features.kinematic_amplitude) of the
  pose sequence resampled to the mel frame rate.

sync = the peak, over lags within +-max_lag_s (0.1 s: 6 frames each way at 62.5 frames/s),
of the normalised cross-correlation of the two envelopes. It needs no threshold: 1 when one
envelope is the other delayed by at most max_lag_s, about 0 for independent accents (about
0.1 for unrelated smooth envelopes of 6 s, the best of 13 lags), about 0.55 for a real dance
against its own music. Pure numpy on arrays; see docs/metrics.md ("Envelope sync").
"""

from __future__ import annotations

import numpy as np

from momu_data.features import kinematic_amplitude, log_mel, resample_to_fps
from momu_data.timebase import FPS, SR

DEFAULT_MAX_LAG_S = 0.1


def mel_flux(mel) -> np.ndarray:
    """Onset envelope [T] of a log-mel [n_mels, T]: the summed positive difference of each
    frame from the previous one (0 for the first frame)."""
    return np.concatenate([[0.0], np.maximum(np.diff(mel, axis=1), 0).sum(0)])


def music_envelope(y: np.ndarray, sr: int = SR) -> np.ndarray:
    """Log-mel flux [T] of mono 16 kHz audio, at the mel frame rate (FPS)."""
    return mel_flux(log_mel(y, sr))


def motion_envelope(pose: np.ndarray, fps: float = FPS) -> np.ndarray:
    """Kinematic amplitude [T'] of a [T, J, 2] motion sampled at fps, resampled to the mel
    frame rate (FPS) first so that it lines up with music_envelope."""
    return kinematic_amplitude(resample_to_fps(pose, fps, FPS))


def _standardise(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return (x - x.mean()) / (x.std() + 1e-8)


def lagged_correlation(a, b, max_lag: int) -> np.ndarray:
    """Normalised cross-correlation [2 max_lag + 1] of two envelopes at lags -max_lag..max_lag
    frames: both are cut to the shorter length n and standardised (zero mean, unit variance
    over the n frames); entry max_lag + k is the mean of a[t + k] * b[t] over the frames where
    both exist. A positive peak lag means a's accents come after b's. A constant envelope
    correlates 0 with everything."""
    n = min(len(a), len(b))
    if n < 2:
        raise ValueError(f"envelopes need at least 2 frames, got {n}")
    if max_lag < 0:
        raise ValueError(f"max_lag must be >= 0, got {max_lag}")
    max_lag = min(int(max_lag), n - 1)
    a, b = _standardise(a[:n]), _standardise(b[:n])
    return np.array(
        [np.mean(a[max(0, k) : n + min(0, k)] * b[max(0, -k) : n - max(0, k)]) for k in range(-max_lag, max_lag + 1)]
    )


def sync_correlation(a, b, fps: float = FPS, max_lag_s: float = DEFAULT_MAX_LAG_S) -> float:
    """Envelope sync of two envelopes sampled at fps: the peak of lagged_correlation within
    +-max_lag_s (rounded to whole frames). Symmetric in a and b."""
    return float(lagged_correlation(a, b, int(round(max_lag_s * fps))).max())
