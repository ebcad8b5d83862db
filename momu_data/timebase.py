"""The time base shared by every part of the toolkit: 16 kHz audio, 80-bin log-mels at 62.5
frames/s, and the onset detector of appendix B.4. Constants only; the features are computed
in momu_data.features.

The mel follows appendix B.2 (16 kHz, 80 filters, n_fft 1024, hop 256, Hann window 1024).
The paper does not give the magnitude, filter norm, band edges or log; we use the HiFi-GAN
convention (magnitude spectrum, Slaney-normalised filters over 0-8 kHz, natural log of
max(x, 1e-5)) so that a HiFi-GAN-style vocoder can invert it. Frames are centred
(librosa's default): frame t covers the audio around t * HOP / SR seconds, and a signal of
n samples gives 1 + n // HOP frames.
"""

from __future__ import annotations

SR = 16000
N_FFT = 1024
HOP = 256
WIN = 1024
N_MELS = 80
FMIN = 0.0
FMAX = 8000.0
FPS = SR / HOP  # 62.5 mel frames per second: the toolkit's time base
LOG_FLOOR = 1e-5

# Appendix B.4: the onset detector every beat metric of the paper uses.
ONSET_KWARGS = dict(wait=1, delta=0.2, pre_avg=3, post_avg=3, pre_max=3, post_max=3)


def num_frames(num_samples: int) -> int:
    """Mel frames for a signal of num_samples (centred framing)."""
    return 1 + num_samples // HOP
