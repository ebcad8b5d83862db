"""Features of music and motion: the 16 kHz 80-bin log-mel and onsets of music (appendix
B.2, B.4), and the rhythm of motion: the motion directogram (eq. 1), the kinematic amplitude
indicator (eq. 2) and kinematic beats.

Following Davis & Agrawala (2018), the directogram is a histogram of joint motion by
direction: each joint's first difference between frames is put into one of K angular
bins by its angle with the x-axis and contributes its length (eq. 1). The kinematic
amplitude is the directogram's positive flux, summed over bins (eq. 2), like spectral
flux for audio, then scaled to [0, 1]: motion starting or speeding up in some direction, not
deceleration (the sign eq. 2 leaves open; measured in docs/data.md, "Kinematic beats").
Kinematic beats are its peaks, picked with the peak picker and settings the paper uses for
music onsets, their windows converted from the onset detector's frames to the envelope's so
that they last as long in seconds: both modalities are judged alike. All functions are
pure numpy on [T, 14, 2] poses at the mel time base
(62.5 frames/s) unless told otherwise.
"""

from __future__ import annotations

import numpy as np

from momu_data.timebase import FMAX, FMIN, FPS, HOP, LOG_FLOOR, N_FFT, N_MELS, ONSET_KWARGS, SR, WIN

DEFAULT_BINS = 8


_LIBROSA_READY = False


def _librosa():
    """librosa, with the functions it compiles with numba (the mel filter bank, onset
    strength, the peak picker) compiled or loaded once per process under a file lock in
    NUMBA_CACHE_DIR. Two processes compiling into an empty cache at once can read each
    other's half-written entries and crash (a segfault in the peak picker, reproduced with
    two extraction workers on a fresh clone); with the lock one compiles and the other waits,
    then loads the finished cache."""
    global _LIBROSA_READY
    import librosa

    if _LIBROSA_READY:
        return librosa
    import fcntl
    import os
    import tempfile
    from pathlib import Path

    folder = Path(os.environ.get("NUMBA_CACHE_DIR") or tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".momu-numba.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            y = np.random.default_rng(0).standard_normal(SR).astype(np.float32)
            S = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS)
            env = librosa.onset.onset_strength(S=librosa.power_to_db(S), sr=SR)
            librosa.onset.onset_detect(onset_envelope=env, sr=SR, units="time", **ONSET_KWARGS)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    _LIBROSA_READY = True
    return librosa


def warm_up() -> None:
    """Compile (or load) librosa's numba functions into NUMBA_CACHE_DIR now. On an empty
    cache that takes 40 s of one core here, and the first extraction worker to need them
    would hold the others up for as long (they wait on the cache's lock): `make demo` runs
    this while it draws the synthetic videos instead."""
    _librosa()


def directogram(pose: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Motion directogram [T, bins] of a pose sequence [T, J, 2] (eq. 1).

    Row t aggregates the motion from frame t-1 to t; row 0 repeats row 1 so that the
    output is frame-aligned with the input and starts without a spurious jump.
    """
    pose = np.asarray(pose, dtype=np.float64)
    if pose.ndim != 3 or pose.shape[-1] != 2:
        raise ValueError(f"directogram expects poses [T, J, 2], got {pose.shape}")
    T = pose.shape[0]
    out = np.zeros((T, bins), dtype=np.float64)
    if T < 2:
        return out.astype(np.float32)
    d = np.diff(pose, axis=0)  # [T-1, J, 2]
    mag = np.hypot(d[..., 0], d[..., 1])
    ang = np.mod(np.arctan2(d[..., 1], d[..., 0]), 2 * np.pi)
    k = np.minimum((ang / (2 * np.pi) * bins).astype(np.int64), bins - 1)
    rows = np.broadcast_to(np.arange(T - 1)[:, None], k.shape)
    np.add.at(out[1:], (rows, k), mag)
    out[0] = out[1]
    return out.astype(np.float32)


def kinematic_flux(dgram: np.ndarray) -> np.ndarray:
    """Unnormalised kinematic amplitude [T]: summed positive bin-wise differences (eq. 2)."""
    dgram = np.asarray(dgram, dtype=np.float64)
    flux = np.zeros(dgram.shape[0], dtype=np.float64)
    if dgram.shape[0] > 1:
        flux[1:] = np.maximum(np.diff(dgram, axis=0), 0.0).sum(axis=1)
    return flux


def normalise01(x: np.ndarray) -> np.ndarray:
    """Min-max scale to [0, 1]; a constant signal becomes all zeros."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return x.astype(np.float32)
    lo, hi = float(x.min()), float(x.max())
    if hi - lo <= 1e-12:
        return np.zeros_like(x, dtype=np.float32)
    return ((x - lo) / (hi - lo)).astype(np.float32)


# A spike is a peak more than SPIKE_RATIO times as tall as the next tallest. Real dances stay
# far under it (Dance with Melody mocap, 127 clips of 10 s: at most 2.12; synthetic dances
# 1.13); a one-frame tracking glitch or a decoder artefact goes far past it. Peaks closer than
# SPIKE_GAP frames count as one (a one-frame jump gives two high flux frames: there and back);
# peaks under SPIKE_FLOOR of the tallest are the float32 rounding noise of a still body (about
# 1e-6 of a beat), not peaks.
SPIKE_RATIO = 3.0
SPIKE_GAP = 2
SPIKE_FLOOR = 1e-4


def clip_spikes(envelope: np.ndarray) -> np.ndarray:
    """The envelope with a single spike lowered to its next tallest peak.

    Min-max scaling (normalise01, and librosa's peak picker) measures every peak against the
    tallest one: one outlier frame, ten times any beat, would squash all real beats under the
    picker's delta and erase them. Envelopes without such a spike come back unchanged, and so
    do envelopes with fewer than three peaks (a lone beat is not an outlier)."""
    from scipy.ndimage import maximum_filter1d

    env = np.asarray(envelope, dtype=np.float64)
    if env.size < 3 or float(env.max()) <= 0:
        return env
    tops = np.flatnonzero(env == maximum_filter1d(env, 2 * SPIKE_GAP + 1, mode="nearest"))
    keep = [tops[0]]
    for t in tops[1:]:
        if t - keep[-1] > SPIKE_GAP:
            keep.append(t)
    heights = np.sort(env[keep])[::-1]
    heights = heights[heights >= SPIKE_FLOOR * heights[0]]
    if heights.size < 3 or heights[0] <= SPIKE_RATIO * heights[1]:
        return env
    return np.minimum(env, heights[1])


def amplitude_from_flux(flux: np.ndarray) -> np.ndarray:
    """Kinematic flux -> kinematic amplitude in [0, 1]: spikes clipped, then min-max scaled."""
    return normalise01(clip_spikes(flux))


def kinematic_amplitude(pose: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Kinematic amplitude indicator [T] in [0, 1] of a pose sequence [T, J, 2]."""
    return amplitude_from_flux(kinematic_flux(directogram(pose, bins)))


# librosa.onset.onset_detect's default hop: the frame in which appendix B.4's peak-picking
# windows (ONSET_KWARGS: wait, pre/post_avg, pre/post_max) are counted for music.
ONSET_HOP = 512


def picker_settings(fps: float, onset_sr: int = SR) -> dict:
    """ONSET_KWARGS for an envelope sampled at fps: each window (a frame count) converted so
    that it lasts as long in seconds as for music onsets detected at onset_sr, rounded to
    whole frames, at least one; delta (a height) unchanged.

    At the 62.5 fps time base: 16 kHz onsets (31.25 frames/s) give pre/post windows of 6
    frames (96 ms) and wait 2; LORIS's 22,050 Hz (43.07 frames/s) gives 4 frames (64 ms for
    its 69.7 ms) and wait 1."""
    scale = fps * ONSET_HOP / onset_sr
    return {k: (v if k == "delta" else max(1, int(round(v * scale)))) for k, v in ONSET_KWARGS.items()}


def beats_from_envelope(envelope: np.ndarray, fps: float = FPS, onset_sr: int = SR) -> np.ndarray:
    """Peak times (s) of an envelope sampled at fps, with the paper's onset peak picker, its
    windows as long in seconds as for music onsets detected at onset_sr (picker_settings):
    the rate of the music the beats are compared with (the data's onsets: 16 kHz)."""
    librosa = _librosa()

    env = np.asarray(envelope, dtype=np.float32)
    if env.size < 2 or float(env.max() - env.min()) <= 1e-12:
        return np.zeros(0, dtype=np.float64)
    # sr/hop only convert frames to seconds here: time = frame * hop / sr = frame / fps.
    if abs(fps - FPS) < 1e-9:
        sr, hop = SR, HOP
    else:
        sr, hop = int(round(fps * 1000)), 1000
    return librosa.onset.onset_detect(
        onset_envelope=env, sr=sr, hop_length=hop, units="time", **picker_settings(fps, onset_sr)
    )


def resample_to_fps(seq: np.ndarray, fps_in: float, fps_out: float = FPS) -> np.ndarray:
    """Linearly resample a sequence [T, ...] from fps_in to fps_out (same duration)."""
    seq = np.asarray(seq, dtype=np.float64)
    if abs(fps_in - fps_out) < 1e-9 or seq.shape[0] < 2:
        return seq.astype(np.float32)
    t_in = np.arange(seq.shape[0]) / fps_in
    n_out = int(np.floor(t_in[-1] * fps_out)) + 1
    t_out = np.arange(n_out) / fps_out
    flat = seq.reshape(seq.shape[0], -1)
    out = np.stack([np.interp(t_out, t_in, flat[:, i]) for i in range(flat.shape[1])], axis=1)
    return out.reshape((n_out,) + seq.shape[1:]).astype(np.float32)


def kinematic_beats(pose: np.ndarray, fps: float = FPS, bins: int = DEFAULT_BINS, onset_sr: int = SR) -> np.ndarray:
    """Kinematic beat times (s) of a pose sequence [T, J, 2] sampled at fps; onset_sr: as in
    beats_from_envelope."""
    pose = resample_to_fps(pose, fps, FPS)
    return beats_from_envelope(kinematic_amplitude(pose, bins), FPS, onset_sr)


def clip_beats(pose: np.ndarray, audio: np.ndarray) -> dict:
    """The beat labels of one clip, computed on that clip alone: {"kinematic": kinematic
    beats of its pose [T, J, 2] at the 62.5 fps time base, "onsets": music onsets of its
    16 kHz audio}, seconds from the clip's start. Both detectors scale their envelope over
    what they are given, so these differ from a whole video's beats cut to the clip; they
    are what `momu-eval` computes on the clip (its music_beats and motion_beats call
    onsets and kinematic_beats), and what the shards store in beats.json."""
    return {
        "kinematic": kinematic_beats(np.asarray(pose, dtype=np.float32), FPS, onset_sr=SR).astype(np.float64),
        "onsets": onsets(np.asarray(audio, dtype=np.float32), SR).astype(np.float64),
    }


# Long signals are transformed in blocks of this many seconds: a whole 20-minute STFT would
# hold ~0.5 GB of complex spectra at once, blocks keep the transient flat in length.
BLOCK_SECONDS = 60.0


def blockwise_frames(fn, y: np.ndarray, hop: int, n_fft: int, block_seconds: float = BLOCK_SECONDS, sr: int = SR):
    """fn(y) for a centred-frame transform fn (signal -> [..., 1 + len // hop] frames), computed
    on overlapping blocks of the signal and joined. Every frame sees the same samples (and the
    same edge padding) as in fn(y), so the frames equal fn(y)'s; only memory differs."""
    n = len(y)
    total = 1 + n // hop
    step = max(1, int(block_seconds * sr) // hop)
    if total <= step:
        return fn(y)
    half = n_fft // 2
    parts = []
    for f0 in range(0, total, step):
        f1 = min(f0 + step, total)
        s = max(0, (f0 * hop - half) // hop * hop)  # a multiple of hop: block frames stay on the grid
        e = n if f1 == total else min(n, (f1 - 1) * hop + half)
        out = fn(y[s:e])
        parts.append(out[..., f0 - s // hop : f1 - s // hop])
    return np.concatenate(parts, axis=-1)


def log_mel(y: np.ndarray, sr: int = SR) -> np.ndarray:
    """Log-mel spectrogram [80, 1 + len(y) // 256] (float32) of mono 16 kHz audio."""
    if sr != SR:
        raise ValueError(f"log_mel expects {SR} Hz audio, got {sr} Hz; resample first")
    y = np.asarray(y, dtype=np.float32)
    return blockwise_frames(_log_mel, y, HOP, N_FFT)


def _log_mel(y: np.ndarray) -> np.ndarray:
    librosa = _librosa()

    mel = librosa.feature.melspectrogram(
        y=y,
        sr=SR,
        n_fft=N_FFT,
        hop_length=HOP,
        win_length=WIN,
        window="hann",
        center=True,
        pad_mode="reflect",
        power=1.0,
        n_mels=N_MELS,
        fmin=FMIN,
        fmax=FMAX,
        htk=False,
        norm="slaney",
    )
    return np.log(np.maximum(mel, LOG_FLOOR)).astype(np.float32)


def onsets(y: np.ndarray, sr: int = SR) -> np.ndarray:
    """Music onset times in seconds, exactly as appendix B.4 computes them."""
    librosa = _librosa()

    y = np.asarray(y, dtype=np.float32)
    if y.size == 0:
        return np.zeros(0, dtype=np.float64)
    # librosa's onset_detect(y=...) in steps, the mel power spectrogram in blocks (see
    # blockwise_frames): its dB scale is relative to the whole signal's maximum (top_db).
    hop, n_fft = 512, 2048  # librosa's defaults for the onset envelope
    power = blockwise_frames(
        lambda seg: np.abs(librosa.feature.melspectrogram(y=seg, sr=sr, n_fft=n_fft, hop_length=hop)),
        y,
        hop,
        n_fft,
        sr=sr,
    )
    env = librosa.onset.onset_strength(S=librosa.power_to_db(power), sr=sr, n_fft=n_fft, hop_length=hop)
    return librosa.onset.onset_detect(onset_envelope=env, sr=sr, hop_length=hop, units="time", **ONSET_KWARGS)
