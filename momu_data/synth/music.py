"""Procedural music with known beats: drums, bass and chords in a few dance styles (numpy only).

A song is a fixed tempo grid: beat k sits at `offset + k * 60 / tempo` seconds, and every
beat carries a percussive hit (a kick or a snare, plus a hi-hat or chord stab on weak
beats), so an onset detector has a sharp transient to find on every beat. Off-beat hits
(hi-hats, syncopated snares, clave) make the music less trivial than a metronome but are
quieter than the on-beat hits, so the beats stay the strongest onsets.

Styles vary the meter, drum pattern, chord progression, bass line and timbre:

- four_on_the_floor: house/disco, kick on every beat, clap on 2 and 4, off-beat hats and bass.
- hiphop: backbeat, kick on 1 and 3 (plus syncopated extra kicks), snare on 2 and 4,
  swung eighth-note hats, long bass notes and soft electric-piano chords.
- waltz: 3/4, "oom-pah-pah": kick and bass on 1, brush snare and chord stabs on 2 and 3.
- latin: dembow/reggaeton-like, kick on every beat, syncopated snare (3-3-2), son clave
  on a woodblock, congas, a tumbao-like bass and montuno-like chord stabs.

Everything is synthesised additively or from noise drawn from the caller's numpy
Generator, so a seed reproduces the waveform sample for sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DEFAULT_SR = 22050
TEMPO_RANGE = (80.0, 160.0)
STYLES = ("four_on_the_floor", "hiphop", "waltz", "latin")
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
STEPS_PER_BEAT = 4  # patterns are written on a sixteenth-note grid

# Chord progressions as (semitones above the key root, quality), one chord per bar.
PROGRESSIONS = {
    "I-V-vi-IV": ((0, "maj"), (7, "maj"), (9, "min"), (5, "maj")),
    "vi-IV-I-V": ((9, "min"), (5, "maj"), (0, "maj"), (7, "maj")),
    "I-IV-V-IV": ((0, "maj"), (5, "maj"), (7, "maj"), (5, "maj")),
    "i-VI-III-VII": ((0, "min"), (8, "maj"), (3, "maj"), (10, "maj")),
    "i-iv-v-i": ((0, "min"), (5, "min"), (7, "min"), (0, "min")),
    "i-VII-VI-V": ((0, "min"), (10, "maj"), (8, "maj"), (7, "maj")),
    "ii7-V7-Imaj7-vi7": ((2, "min7"), (7, "dom7"), (0, "maj7"), (9, "min7")),
    "i7-iv7": ((0, "min7"), (5, "min7"), (0, "min7"), (5, "min7")),
    "I-IV-I-V": ((0, "maj"), (5, "maj"), (0, "maj"), (7, "maj")),
}
CHORD_INTERVALS = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
    "dom7": (0, 4, 7, 10),
}


@dataclass(frozen=True)
class StyleSpec:
    beats_per_bar: int
    # instrument -> alternatives; each alternative is a tuple of (step, velocity) for one bar
    drums: dict
    progressions: tuple[str, ...]
    bass: tuple  # alternatives of ((step, length_steps, interval), ...)
    chords: tuple  # alternatives of ((step, length_steps), ...)
    chord_env: str  # "stab" (short decay, an onset) or "pad" (slow attack, no onset)
    swing: float = 0.0  # fraction of a sixteenth by which odd eighth-note steps are delayed


def _hits(steps, vel):
    return tuple((s, vel) for s in steps)


STYLE_SPECS = {
    "four_on_the_floor": StyleSpec(
        beats_per_bar=4,
        drums={
            "kick": (_hits((0, 4, 8, 12), 1.0),),
            "clap": (_hits((4, 12), 0.75),),
            "hat": (_hits((2, 6, 10, 14), 0.5), _hits(range(0, 16, 2), 0.35) + _hits((2, 6, 10, 14), 0.2)),
            "open_hat": ((), _hits((2, 10), 0.35)),
        },
        progressions=("I-V-vi-IV", "vi-IV-I-V", "i-VI-III-VII", "I-IV-V-IV"),
        bass=(
            ((2, 2, 0), (6, 2, 0), (10, 2, 0), (14, 2, 12)),
            ((0, 1, 0), (2, 2, 12), (6, 2, 12), (8, 1, 0), (10, 2, 12), (14, 2, 7)),
        ),
        chords=(((0, 3), (6, 2), (12, 3)), ((2, 2), (6, 2), (10, 2), (14, 2)), ((0, 4), (8, 4))),
        chord_env="stab",
    ),
    "hiphop": StyleSpec(
        beats_per_bar=4,
        drums={
            # Syncopated extra kicks sit an eighth away from the next beat: a kick one
            # sixteenth before the snare would mask the snare for the onset detector.
            "kick": (
                _hits((0, 8), 1.0) + _hits((10,), 0.7),
                _hits((0, 8), 1.0) + _hits((14,), 0.6),
                _hits((0, 8), 1.0) + _hits((6, 10), 0.55),
            ),
            "snare": (_hits((4, 12), 0.9),),
            "hat": (_hits(range(0, 16, 2), 0.35), _hits(range(0, 16, 2), 0.3) + _hits((7, 15), 0.2)),
        },
        progressions=("i7-iv7", "ii7-V7-Imaj7-vi7", "i-VI-III-VII", "i-iv-v-i"),
        bass=(((0, 6, 0), (8, 3, 0), (11, 4, 7)), ((0, 3, 0), (7, 2, 0), (8, 6, 0))),
        chords=(((0, 16),), ((0, 8), (8, 8))),
        chord_env="pad",
        swing=0.33,
    ),
    "waltz": StyleSpec(
        beats_per_bar=3,
        drums={
            "kick": (_hits((0,), 1.0),),
            "brush": (_hits((4, 8), 0.85),),
            "hat": (_hits((0, 4, 8), 0.3), _hits((0, 4, 8), 0.3) + _hits((2, 6, 10), 0.15)),
        },
        progressions=("I-IV-I-V", "I-V-vi-IV", "i-iv-v-i", "ii7-V7-Imaj7-vi7"),
        bass=(((0, 4, 0),), ((0, 4, 0), (8, 4, 7))),
        chords=(((4, 3), (8, 3)), ((0, 2), (4, 3), (8, 3))),
        chord_env="stab",
    ),
    "latin": StyleSpec(
        beats_per_bar=4,
        drums={
            "kick": (_hits((0, 4, 8, 12), 1.0),),
            # Syncopation on the "and"s (an eighth from the beats): broadband hits one
            # sixteenth before a beat smear into the beat's onset at fast tempi.
            "snare": (_hits((6, 14), 0.45), _hits((6, 10, 14), 0.4)),
            "hat": (_hits(range(0, 16, 2), 0.3),),
            "clave": (_hits((0, 3, 6, 10, 12), 0.4), _hits((2, 4, 8, 11, 14), 0.4)),
            "conga": (_hits((2, 5, 10, 13), 0.45), _hits((2, 6, 9, 14), 0.45)),
        },
        progressions=("i-iv-v-i", "I-IV-V-IV", "i-VII-VI-V", "I-V-vi-IV"),
        bass=(((0, 2, 0), (6, 2, 7), (8, 2, 0), (14, 2, 7)), ((0, 3, 0), (5, 3, 7), (8, 3, 0), (13, 3, 7))),
        chords=(((2, 2), (5, 2), (8, 2), (10, 2), (13, 2)), ((0, 2), (2, 2), (6, 2), (10, 2), (14, 2))),
        chord_env="stab",
    ),
}


@dataclass
class Song:
    audio: np.ndarray  # float32 mono in [-1, 1]
    sr: int
    style: str
    tempo_bpm: float
    beats_per_bar: int
    beats: np.ndarray  # seconds, every beat inside the song
    downbeats: np.ndarray  # seconds, first beat of each bar
    key: str
    progression: str
    timbre: dict = field(default_factory=dict)

    @property
    def period(self) -> float:
        return 60.0 / self.tempo_bpm


# ---------------------------------------------------------------------------------------
# Instruments: each returns a mono float64 event starting at its onset sample.


def _t(sr: int, seconds: float) -> np.ndarray:
    return np.arange(int(seconds * sr)) / sr


def _highpass_noise(rng, n: int, order: int) -> np.ndarray:
    # Repeated first differences tilt white noise towards high frequencies (+6 dB/octave
    # per difference): cymbal-like without a filter design.
    x = rng.standard_normal(n + order)
    for _ in range(order):
        x = np.diff(x)
    return x / (np.abs(x).max() + 1e-9)


def kick(sr, rng, vel, tm):
    t = _t(sr, 0.45)
    # Pitch sweeps from f0 down to f1: the fast sweep is the "thump", the click the attack.
    f = tm["kick_f1"] + (tm["kick_f0"] - tm["kick_f1"]) * np.exp(-t / 0.035)
    body = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / tm["kick_decay"])
    click = _highpass_noise(rng, t.size, 1) * np.exp(-t / 0.012) * 0.5
    return vel * (body + click)


def snare(sr, rng, vel, tm):
    t = _t(sr, 0.3)
    noise = _highpass_noise(rng, t.size, 1) * np.exp(-t / tm["snare_decay"])
    tone = np.sin(2 * np.pi * tm["snare_tone"] * t) * np.exp(-t / 0.05)
    return vel * (0.8 * noise + 0.5 * tone)


def brush(sr, rng, vel, tm):
    # A softer, longer, darker snare for the waltz; still a clear attack.
    t = _t(sr, 0.35)
    env = np.minimum(t / 0.002, 1.0) * np.exp(-t / 0.09)
    return vel * (
        0.7 * _highpass_noise(rng, t.size, 1) * env
        + 0.4 * np.sin(2 * np.pi * tm["snare_tone"] * t) * np.exp(-t / 0.04)
    )


def clap(sr, rng, vel, tm):
    # Three quick noise bursts then a tail, like several hands slightly out of sync.
    t = _t(sr, 0.3)
    env = np.zeros_like(t)
    for d in (0.0, 0.011, 0.022):
        td = t - d
        env += np.where(td >= 0, np.exp(-np.maximum(td, 0) / 0.006), 0.0)
    env += np.where(t >= 0.022, np.exp(-np.maximum(t - 0.022, 0) / 0.09), 0.0) * 0.6
    return vel * 0.9 * _highpass_noise(rng, t.size, 1) * env


def hat(sr, rng, vel, tm, open_=False):
    t = _t(sr, 0.35 if open_ else 0.08)
    decay = 0.12 if open_ else tm["hat_decay"]
    return vel * _highpass_noise(rng, t.size, 2) * np.exp(-t / decay)


def clave(sr, rng, vel, tm):
    t = _t(sr, 0.08)
    env = np.exp(-t / 0.018)
    return vel * env * (np.sin(2 * np.pi * tm["clave_f"] * t) + 0.3 * np.sin(2 * np.pi * 2.7 * tm["clave_f"] * t))


def conga(sr, rng, vel, tm):
    t = _t(sr, 0.25)
    f = tm["conga_f"] * (1 + 0.15 * np.exp(-t / 0.02))
    return vel * np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / 0.08)


TABLE_SIZE = 4096


def wavetable(rng, bright: float, odd_only: bool, harmonics: int = 10) -> np.ndarray:
    """One period of a band-limited additive waveform (harmonic k at amplitude
    exp(-(k-1)/bright)/k, random phases), padded by one sample for interpolation.

    Oscillators read this table instead of summing sines per sample: 10x cheaper, and
    the steep roll-off keeps the harmonics that would alias at 22 kHz inaudible.
    """
    ph = np.arange(TABLE_SIZE) / TABLE_SIZE
    y = np.zeros(TABLE_SIZE)
    for k in range(1, harmonics + 1):
        if odd_only and k % 2 == 0:
            continue
        y += np.exp(-(k - 1) / bright) / k * np.sin(2 * np.pi * k * ph + rng.uniform(0, 2 * np.pi))
    y /= np.abs(y).max()
    return np.append(y, y[0])


def _osc(table, sr, freq, n, phase0=0.0):
    x = (phase0 + freq * np.arange(n) / sr) % 1.0 * TABLE_SIZE
    i = x.astype(np.int64)
    frac = x - i
    return table[i] + frac * (table[i + 1] - table[i])


def bass_note(sr, rng, freq, dur, vel, tm):
    n = int((dur + 0.04) * sr)
    t = np.arange(n) / sr
    y = _osc(tm["bass_table"], sr, freq, n)
    # A 4 ms attack keeps the bass from adding clicks of its own; release after dur.
    env = np.minimum(t / 0.004, 1.0) * np.exp(-t / tm["bass_decay"])
    env *= np.clip((dur + 0.04 - t) / 0.04, 0.0, 1.0)
    return vel * y * env


def chord(sr, rng, freqs, dur, vel, tm, env_kind):
    n = int((dur + 0.1) * sr)
    t = np.arange(n) / sr
    y = np.zeros(n)
    for f in freqs:
        # Two slightly detuned voices per note: a chorus-like beating, less synthetic.
        for detune in (1.0, 1.0 + tm["chord_detune"]):
            y += _osc(tm["chord_table"], sr, f * detune, n, rng.random())
    y /= 2 * len(freqs)
    if env_kind == "pad":
        # Slow attack: the pad colours the harmony without adding onsets of its own.
        env = np.minimum(t / tm["pad_attack"], 1.0) * np.exp(-t / 1.5)
    else:
        env = np.minimum(t / 0.003, 1.0) * np.exp(-t / tm["stab_decay"])
    env *= np.clip((dur + 0.1 - t) / 0.1, 0.0, 1.0)
    return vel * y * env


def _midi_hz(m):
    return 440.0 * 2.0 ** ((np.asarray(m, dtype=np.float64) - 69) / 12)


def _add(buf, onset_s, event, sr, gain):
    i = int(round(onset_s * sr))
    if i >= buf.size or i < 0:
        return
    j = min(buf.size, i + event.size)
    buf[i:j] += gain * event[: j - i]


def _timbre(rng, style):
    tm = {
        "kick_f0": rng.uniform(130, 180),
        "kick_f1": rng.uniform(45, 62),
        "kick_decay": rng.uniform(0.12, 0.22),
        "snare_tone": rng.uniform(160, 240),
        "snare_decay": rng.uniform(0.07, 0.14),
        "hat_decay": rng.uniform(0.015, 0.035),
        "clave_f": rng.uniform(1800, 2600),
        "conga_f": rng.uniform(190, 320),
        "bass_bright": rng.uniform(1.0, 4.0),
        "bass_square": bool(rng.random() < 0.4),
        "bass_decay": rng.uniform(0.25, 0.8),
        "chord_bright": rng.uniform(0.6, 2.5),
        "chord_detune": rng.uniform(0.001, 0.006),
        "stab_decay": rng.uniform(0.12, 0.35),
        "pad_attack": rng.uniform(0.08, 0.25),
    }
    if style == "waltz":
        tm["kick_decay"] *= 1.3  # a rounder, bass-drum-like "oom"
    tm["bass_table"] = wavetable(rng, tm["bass_bright"], tm["bass_square"])
    tm["chord_table"] = wavetable(rng, tm["chord_bright"], False)
    return tm


def make_song(
    rng: np.random.Generator,
    seconds: float,
    sr: int = DEFAULT_SR,
    style: str | None = None,
    tempo_bpm: float | None = None,
) -> Song:
    """Generate `seconds` of music. Style and tempo are drawn from rng unless given."""
    if style is None:
        style = STYLES[int(rng.integers(len(STYLES)))]
    if style not in STYLE_SPECS:
        raise ValueError(f"unknown style {style!r}; choose from {STYLES}")
    spec = STYLE_SPECS[style]
    if tempo_bpm is None:
        tempo_bpm = float(rng.uniform(*TEMPO_RANGE))
    tempo_bpm = round(float(tempo_bpm), 2)  # the ground truth is exactly this tempo
    period = 60.0 / tempo_bpm
    step = period / STEPS_PER_BEAT
    # A short silence before the first beat: onset detectors need some lead-in, and the
    # dancer starts from a still pose.
    offset = round(float(rng.uniform(0.25, 0.6)), 4)

    n = int(round(seconds * sr))
    beats = offset + period * np.arange(max(0, int(np.ceil((seconds - offset) / period))))
    beats = beats[beats < seconds]
    bpb = spec.beats_per_bar
    downbeats = beats[::bpb]

    tm = _timbre(rng, style)
    pick = {inst: alts[int(rng.integers(len(alts)))] for inst, alts in spec.drums.items()}
    bass_pat = spec.bass[int(rng.integers(len(spec.bass)))]
    chord_pat = spec.chords[int(rng.integers(len(spec.chords)))]
    prog_name = spec.progressions[int(rng.integers(len(spec.progressions)))]
    prog = PROGRESSIONS[prog_name]
    key = int(rng.integers(12))
    bass_root = 36 + key if key >= 4 else 48 + key  # E1..D#2 range: MIDI 40-51
    chord_root = bass_root + 24

    drums = {
        "kick": (kick, 1.0),
        "snare": (snare, 0.55),
        "clap": (clap, 0.55),
        "brush": (brush, 0.6),
        "hat": (hat, 0.15),
        "clave": (clave, 0.22),
        "conga": (conga, 0.35),
    }
    buf = np.zeros(n, dtype=np.float64)
    steps_per_bar = bpb * STEPS_PER_BEAT
    n_bars = int(np.ceil((seconds - offset) / (period * bpb))) + 1

    def step_time(bar, s):
        t = offset + (bar * steps_per_bar + s) * step
        if spec.swing and s % 2 == 1:
            t += spec.swing * step
        return t

    for bar in range(n_bars):
        # Small random velocity variation: a drum machine played by a human-ish hand.
        for inst, hits in pick.items():
            for s, vel in hits:
                v = vel * rng.uniform(0.9, 1.05)
                if inst == "open_hat":
                    ev = hat(sr, rng, v, tm, open_=True)
                    gain = 0.2
                else:
                    fn, gain = drums[inst]
                    ev = fn(sr, rng, v, tm)
                _add(buf, step_time(bar, s), ev, sr, gain)
        root_iv, quality = prog[bar % len(prog)]
        for s, length, iv in bass_pat:
            f = _midi_hz(bass_root + root_iv + iv)
            _add(buf, step_time(bar, s), bass_note(sr, rng, f, length * step, 1.0, tm), sr, 0.32)
        notes = chord_root + root_iv + np.array(CHORD_INTERVALS[quality])
        freqs = _midi_hz(notes)
        for s, length in chord_pat:
            ev = chord(sr, rng, freqs, length * step, 1.0, tm, spec.chord_env)
            _add(buf, step_time(bar, s), ev, sr, 0.3 if spec.chord_env == "stab" else 0.35)

    # A quiet noise bed (about -40 dB below the peak, like a room or a record's hiss).
    # Onset detectors work on log spectra: rising from digital silence (the lead-in, or
    # a quiet band between hits) looks like an enormous onset and, after normalisation,
    # dwarfs every later beat. The bed bounds how far a band can fall between hits.
    peak = np.abs(buf).max()
    # It runs at a constant level from the first sample: a fade-in would itself be an
    # onset on a log scale.
    buf += rng.standard_normal(n) * (0.01 * peak)
    # Fade the last 20 ms so the cut at `seconds` does not click; normalise the peak.
    fade = min(n, int(0.02 * sr))
    if fade:
        buf[n - fade :] *= np.linspace(1.0, 0.0, fade)
    peak = np.abs(buf).max()
    if peak > 0:
        buf *= 0.89 / peak
    return Song(
        audio=buf.astype(np.float32),
        sr=sr,
        style=style,
        tempo_bpm=tempo_bpm,
        beats_per_bar=bpb,
        beats=beats,
        downbeats=downbeats,
        key=NOTE_NAMES[key] + ("m" if prog[0][1].startswith("min") else ""),
        progression=prog_name,
        timbre={
            k: (round(v, 4) if isinstance(v, float) else v) for k, v in tm.items() if not isinstance(v, np.ndarray)
        },
    )
