"""`momu-eval beats --kind music` gives LORIS's numbers on the same files.

The reference implementation is a minimal port, written here, of the scorer LORIS's
repository ships (OpenGVLab/LORIS, beats_scores.py): librosa.load at its default rate,
appendix B.4's onset_detect, one bin per started second (an onset at t marks bin trunc(t)),
the reference's bins cut to the generated clip's number, hit / total with 0 for an empty
denominator, means over pairs, np.std(ddof=1), F1 of the means. The audio is made up here
(clicks, tones, silence) and written as 16 kHz WAV, as the toolkit writes generated music.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from momu_models.evaluate.alignment import evaluate_beats
from momu_models.evaluate.files import MusicScorer, load_music_as_librosa

SR_FILE = 16000


# ---- the reference: LORIS's scorer, ported ------------------------------------------------


def loris_bins(path: Path, sr: int) -> tuple[list[int], np.ndarray]:
    import librosa

    x, _ = librosa.load(str(path), sr=sr)
    onsets = librosa.onset.onset_detect(
        y=x, sr=sr, wait=1, delta=0.2, pre_avg=3, post_avg=3, pre_max=3, post_max=3, units="time"
    )
    bins = [0] * int(np.ceil(len(x) / sr))
    for t in onsets:
        bins[int(np.trunc(t))] = 1
    return bins, onsets


def loris_pair(gt: list[int], syn: list[int]) -> tuple[float, float, tuple[int, int, int]]:
    gt = gt[: len(syn)]
    assert len(gt) == len(syn)  # LORIS asserts it: a reference never has fewer bins here
    total, cover = sum(gt), sum(syn)
    hit = sum(1 for g, s in zip(gt, syn) if g == 1 and s == 1)
    return (hit / cover if cover else 0), (hit / total if total else 0), (total, cover, hit)


def loris_scores(pairs: list[tuple[Path, Path]], sr: int = 22050) -> dict:
    cover_sum = hit_sum = 0
    covers, hits, counts, onsets = [], [], [], []
    for gen, ref in pairs:
        (gt, _), (syn, syn_onsets) = loris_bins(ref, sr), loris_bins(gen, sr)
        c, h, n = loris_pair(gt, syn)
        onsets.append(syn_onsets)
        cover_sum += c
        hit_sum += h
        covers.append(c)
        hits.append(h)
        counts.append(n)
    cover, hit = cover_sum / len(pairs), hit_sum / len(pairs)
    return {
        "BCS": cover,
        "CSD": np.std(covers, ddof=1),
        "BHS": hit,
        "HSD": np.std(hits, ddof=1),
        "F1": 2 * cover * hit / (cover + hit),
        "pairs": list(zip(covers, hits, counts)),
        "onsets": onsets,
    }


# ---- made-up music ----------------------------------------------------------------------


def clicks(times, seconds: float, seed: int) -> np.ndarray:
    """Decaying 1.5 kHz bursts at the given times over faint noise."""
    y = 2e-3 * np.random.default_rng(seed).standard_normal(int(seconds * SR_FILE))
    t = np.arange(int(0.03 * SR_FILE)) / SR_FILE
    burst = np.sin(2 * np.pi * 1500 * t) * np.exp(-t / 0.006)
    for c in times:
        i = int(round(c * SR_FILE))
        seg = y[i : i + burst.size]
        seg += burst[: seg.size]
    return 0.5 * y


def tones(starts, pitches, seconds: float, seed: int) -> np.ndarray:
    """Plucked tones (a fundamental and two harmonics, exponential decay) at the given times."""
    y = 1e-3 * np.random.default_rng(seed).standard_normal(int(seconds * SR_FILE))
    for s, f in zip(starts, pitches):
        i = int(round(s * SR_FILE))
        t = np.arange(y.size - i) / SR_FILE
        partials = sum(a * np.sin(2 * np.pi * k * f * t) for k, a in ((1, 0.5), (2, 0.25), (3, 0.12)))
        y[i:] += partials * np.exp(-t / 0.15)
    return 0.4 * y


def write_wav(path: Path, y: np.ndarray) -> Path:
    import soundfile as sf

    sf.write(str(path), np.clip(y, -1, 1), SR_FILE, subtype="PCM_16")
    return path


REF_CLICKS = [0.4, 1.3, 2.6, 3.1, 4.75, 6.2]


@pytest.fixture(scope="module")
def music(tmp_path_factory) -> tuple[Path, Path, list[str]]:
    root = tmp_path_factory.mktemp("loris")
    gen, ref = root / "gen", root / "ref"
    gen.mkdir()
    ref.mkdir()
    jitter = np.random.default_rng(0).uniform(-0.03, 0.03, len(REF_CLICKS))
    melody = np.arange(0.3, 7.9, 0.5)
    notes = 220 * 2 ** (np.random.default_rng(1).integers(0, 12, melody.size) / 12)
    other = 330 * 2 ** (np.random.default_rng(2).integers(0, 12, melody.size) / 12)
    items = {
        # in time: the same clicks, 30 ms of jitter, other noise; 7.3 s (a partial last bin)
        "a_in_time": (clicks(REF_CLICKS + jitter, 7.3, 1), clicks(REF_CLICKS, 7.3, 2)),
        # generated tones half a second late, 7.5 s; the reference 7.9 s with a click at 7.7 s,
        # after the generated clip's end but inside its last bin (bin 7): LORIS counts it
        "b_late": (tones(np.array(REF_CLICKS) + 0.5, [440] * 6, 7.5, 3), clicks(REF_CLICKS + [7.7], 7.9, 4)),
        # generated silence: no beats, BCS 0 and BHS 0
        "c_silent": (np.zeros(int(5.0 * SR_FILE)), clicks(REF_CLICKS[:4], 5.0, 5)),
        # the same rhythm in other pitches, the reference longer than the generated clip
        "d_melody": (tones(melody[:-1], other[:-1], 7.6, 6), tones(melody, notes, 8.2, 7)),
    }
    for stem, (g, r) in items.items():
        write_wav(gen / f"{stem}.wav", g)
        write_wav(ref / f"{stem}.wav", r)
    return gen, ref, sorted(items)


@pytest.mark.parametrize(("scorer", "sr"), [(MusicScorer.loris, 22050), ("16k", 16000)])
def test_beats_equal_loris_scorer(music, scorer, sr):
    """The default scorer is LORIS's (22,050 Hz); --scorer 16k is the same scorer at 16 kHz."""
    gen, ref, stems = music
    expected = loris_scores([(gen / f"{s}.wav", ref / f"{s}.wav") for s in stems], sr=sr)
    res = evaluate_beats(gen, ref, "music") if scorer == MusicScorer.loris else evaluate_beats(gen, ref, scorer=scorer)
    assert res["scorer"] == MusicScorer(scorer).value and res["onset_sr"] == sr and res["n"] == len(stems)
    rows = {p["stem"]: p for p in res["pairs"]}
    for stem, (cover, hit, (total, n_cover, n_hit)), onsets in zip(stems, expected["pairs"], expected["onsets"]):
        row = rows[stem]
        assert row["generated_beats_s"] == [round(float(t), 4) for t in onsets], stem  # detected at the same rate
        assert (row["n_reference"], row["n_generated"], row["n_matched"]) == (total, n_cover, n_hit), stem
        assert (row["BCS"], row["BHS"]) == (100 * cover, 100 * hit), stem
    for k in ("BCS", "CSD", "BHS", "HSD", "F1"):
        assert res[k] == pytest.approx(100 * expected[k], rel=1e-12, abs=1e-12), k
    # the edge cases are really exercised, not trivially equal
    assert rows["c_silent"]["n_generated"] == 0 and rows["c_silent"]["BCS"] == rows["c_silent"]["BHS"] == 0
    late = rows["b_late"]
    assert any(t >= late["duration_s"] for t in late["reference_beats_s"])  # in the generated clip's last bin
    assert late["n_reference"] == 7
    assert 0 < res["BCS"] < 100 and 0 < res["BHS"] < 100 and res["CSD"] > 0
    json.dumps(res)  # JSON-ready


def test_scorer_reads_wav_as_librosa_load(tmp_path):
    import librosa
    import soundfile as sf

    rng = np.random.default_rng(3)
    mono = write_wav(tmp_path / "mono.wav", clicks(REF_CLICKS, 3.0, 8))
    stereo = tmp_path / "stereo.wav"
    sf.write(str(stereo), 0.3 * rng.uniform(-1, 1, (44100 * 2, 2)), 44100, subtype="PCM_24")
    for path in (mono, stereo):
        expected, _ = librosa.load(str(path))
        ours = load_music_as_librosa(path, 22050)
        assert ours.dtype == expected.dtype and ours.shape == expected.shape
        assert np.array_equal(ours, expected), path
