"""Metrics and momu-eval: beat alignment, envelope sync, Fréchet distance, FAD embedders,
diversity, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from momu_data import features
from momu_data import timebase as audio
from momu_models.evaluate import files as EF
from momu_models.evaluate.metrics import beats as B
from momu_models.evaluate.metrics import diversity as D
from momu_models.evaluate.metrics import fad as F
from momu_models.evaluate.metrics import frechet as FR
from momu_models.evaluate.metrics import sync as S

SR = audio.SR


def clicks(times, dur: float, seed: int = 0) -> np.ndarray:
    """A click track: 20 ms decaying 1 kHz bursts at the given times over faint noise."""
    y = np.zeros(int(round(dur * SR)), np.float32)
    t = np.arange(int(0.02 * SR)) / SR
    burst = (np.sin(2 * np.pi * 1000 * t) * np.exp(-t / 0.004)).astype(np.float32)
    for c in times:
        i = int(round(c * SR))
        seg = y[i : i + burst.size]
        seg += burst[: seg.size]
    y += 1e-4 * np.random.default_rng(seed).standard_normal(y.size).astype(np.float32)
    return 0.5 * y


def dance(beats, dur: float, fps: float, seed: int = 0) -> np.ndarray:
    """A [T, 14, 2] motion at rest except for a short sideways jerk starting at each beat."""
    T = int(round(dur * fps))
    base = np.random.default_rng(seed).uniform(0, 1, (14, 2)).astype(np.float32)
    vel = np.zeros((T, 2), np.float32)
    for k, b in enumerate(beats):
        i = int(round(b * fps))
        vel[i : i + 3] = [0.05 * (-1) ** k, 0.0]
    return base[None] + np.cumsum(vel, axis=0)[:, None, :]


BEATS_A = [0.5, 3.5, 6.5]  # one click every 3 s: bins 0, 3, 6
BEATS_SHIFTED = [2.0, 5.0, 8.0]  # the same shifted by 1.5 s: bins 2, 5, 8, none shared
DUR = 9.5


@pytest.fixture(scope="module")
def click_onsets():
    return features.onsets(clicks(BEATS_A, DUR)), features.onsets(clicks(BEATS_SHIFTED, DUR))


# ---- binned beat scores -----------------------------------------------------------------


def test_binned_by_hand():
    # generated bins {0, 1, 3} (0.1 and 0.5 share bin 0; 5.0 is past the 4 s clip),
    # reference bins {0, 2} (4.5 past the end) -> matched {0}.
    s = B.binned_scores([0.1, 0.5, 1.2, 3.9, 5.0], [0.3, 2.5, 4.5], duration=4.0)
    assert (s.n_generated, s.n_reference, s.n_matched) == (3, 2, 1)
    assert s.bcs == pytest.approx(1 / 3)
    assert s.bhs == pytest.approx(1 / 2)
    assert s.f1 == pytest.approx(0.4)


def test_binned_edges():
    # A beat exactly at the end of the clip lies outside [0, duration).
    assert B.binned_scores([4.0], [4.0], 4.0).n_generated == 0
    # A partial last bin counts: 2.5 s -> bins [0,1), [1,2), [2,2.5).
    assert B.beat_bins([2.4], 2.5).tolist() == [False, False, True]
    # Several beats in one bin count once; identical lists score 1 / 1.
    s = B.binned_scores([1.1, 1.2, 1.9], [1.5], 3.0)
    assert (s.n_generated, s.n_matched, s.bcs, s.bhs) == (1, 1, 1.0, 1.0)
    # Bins of other widths: 0.6 s is the start of the fourth 0.2 s bin, not the third.
    assert B.beat_bins([0.6], 1.0, bin_s=0.2).tolist() == [False, False, False, True, False]


def test_binned_reference_cut_to_the_generated_bins():
    # LORIS cuts the reference's bins to the generated clip's number: a reference beat after
    # the generated clip's end (2.5 s) but inside its last bin [2, 3) counts, one in bin 3 not.
    s = B.binned_scores([0.5], [0.5, 2.7, 3.2], 2.5)
    assert (s.n_generated, s.n_reference, s.n_matched) == (1, 2, 1) and s.bhs == 0.5
    assert B.beat_bins([2.7, 3.2], 2.5).tolist() == [False, False, True]
    # a shorter reference (where LORIS's script stops) has no beats in the bins it lacks
    s = B.binned_scores([0.5, 3.5], [0.5], 4.0)
    assert (s.n_generated, s.n_reference, s.n_matched, s.bcs, s.bhs) == (2, 1, 1, 0.5, 1.0)
    assert B.n_bins(2.5) == 3 and B.n_bins(3.0) == 3 and B.n_bins(0.2) == 1


def test_binned_empty_lists():
    # LORIS conventions: no generated beats -> BCS 0; no reference beats -> BHS 0.
    s = B.binned_scores([], [1.0], 4.0)
    assert (s.bcs, s.bhs, s.f1) == (0.0, 0.0, 0.0)
    s = B.binned_scores([1.0], [], 4.0)
    assert (s.bcs, s.bhs, s.f1) == (0.0, 0.0, 0.0)
    s = B.binned_scores([], [], 4.0)
    assert (s.bcs, s.bhs, s.f1) == (0.0, 0.0, 0.0)
    # Beats only past the end are no beats at all.
    s = B.binned_scores([5.0, 6.0], [0.5], 4.0)
    assert (s.n_generated, s.bcs, s.bhs) == (0, 0.0, 0.0)


def test_aggregate_by_hand():
    scores = [B.PairScore(1 / 3, 1 / 2, 3, 2, 1), B.PairScore(1.0, 1.0, 2, 2, 2), B.PairScore(0.0, 0.0, 0, 1, 0)]
    res = B.aggregate(scores)
    bcs = np.array([100 / 3, 100.0, 0.0])
    assert res["BCS"] == pytest.approx(bcs.mean())
    assert res["CSD"] == pytest.approx(math.sqrt(((bcs - bcs.mean()) ** 2).sum() / 2))
    assert res["BHS"] == pytest.approx(50.0)
    assert res["HSD"] == pytest.approx(50.0)  # std of [50, 100, 0] with ddof=1
    assert res["F1"] == pytest.approx(2 * bcs.mean() * 50 / (bcs.mean() + 50))
    assert res["n"] == 3
    one = B.aggregate([B.PairScore(0.5, 0.25, 2, 4, 1)])
    assert one["BCS"] == 50.0 and one["BHS"] == 25.0 and one["n"] == 1
    assert math.isnan(one["CSD"]) and math.isnan(one["HSD"])
    with pytest.raises(ValueError):
        B.aggregate([])


# ---- tolerance variant ------------------------------------------------------------------


def test_tolerance_by_hand():
    # 0.95<->1.02 and 2.0<->2.02 hit; 2.05 finds 2.02 already taken; 3.5 has nothing near.
    s = B.tolerance_scores([0.95, 2.0, 2.05, 3.5], [1.02, 2.02, 3.0], 4.0, tol=0.1)
    assert (s.n_generated, s.n_reference, s.n_matched) == (4, 3, 2)
    assert s.bcs == pytest.approx(0.5) and s.bhs == pytest.approx(2 / 3)
    # One-to-one: two generated beats cannot share one reference beat.
    assert B.match_within([1.0, 1.01], [1.0], 0.1) == 1
    # Greedy sweep finds the maximum matching.
    assert B.match_within([1.0, 1.15], [1.08, 1.2], 0.1) == 2
    # Exactly tol away is a hit; across a bin edge still a hit (binned: a miss).
    assert B.match_within([1.0], [1.1], 0.1) == 1
    assert B.tolerance_scores([0.98], [1.02], 2.0, 0.1).bcs == 1.0
    assert B.binned_scores([0.98], [1.02], 2.0).bcs == 0.0
    # Same edge cases as the binned metric, beats past the end dropped.
    assert B.tolerance_scores([], [1.0], 2.0, 0.1).bcs == 0.0
    s = B.tolerance_scores([1.0, 2.5], [1.0, 2.5], 2.0, 0.1)
    assert (s.n_generated, s.bcs, s.bhs) == (1, 1.0, 1.0)
    assert B.pair_scores([0.98], [1.02], 2.0, tolerance=0.1).bcs == 1.0
    assert B.method_name(0.1) == "tolerance-0.1s" and B.method_name() == "bins-1s"


# ---- envelope sync ----------------------------------------------------------------------


def test_lagged_correlation_by_hand():
    # a = [0 1 0 0], b = [0 0 1 0]: both standardise to sqrt(3) at the accent, -1/sqrt(3) elsewhere.
    # lag -1 pairs a[t-1] with b[t]: (1/3 + 3 + 1/3) / 3; lag 0: (1/3 - 1 - 1 + 1/3) / 4; lag 1: (-1 + 1/3 - 1) / 3
    a, b = [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]
    np.testing.assert_allclose(S.lagged_correlation(a, b, 1), [11 / 9, -1 / 3, -5 / 9], rtol=1e-6)
    # b's accent comes one frame after a's: the peak is at lag -1 (within +-0.1 s at 10 frames/s), and only there
    assert S.sync_correlation(a, b, fps=10.0, max_lag_s=0.1) == pytest.approx(11 / 9, rel=1e-6)
    assert S.sync_correlation(a, b, fps=10.0, max_lag_s=0.0) == pytest.approx(-1 / 3, rel=1e-6)
    assert S.sync_correlation(b, a, fps=10.0) == S.sync_correlation(a, b, fps=10.0)  # symmetric
    # lags are capped at the shorter envelope; a constant envelope correlates 0
    assert S.lagged_correlation(a, b[:3], 10).shape == (5,)
    assert S.sync_correlation(a, np.ones(4), fps=10.0) == 0.0
    with pytest.raises(ValueError, match="at least 2 frames"):
        S.lagged_correlation([1.0], [1.0, 2.0], 1)


def test_sync_correlation_of_shifted_and_independent_envelopes():
    rng = np.random.default_rng(0)
    fps = 62.5  # +-0.1 s = +-6 frames
    pulses = np.zeros(400)
    pulses[10 + rng.choice(380, 40, replace=False)] = 1.0  # none in the first and last 10 frames
    for k in (-3, 0, 3, 6):
        # the same accents k frames later: the peak is at lag -k, and it is ~1 (the overlap drops k frames)
        corr = S.lagged_correlation(pulses, np.roll(pulses, k), 6)
        assert int(np.argmax(corr)) - 6 == -k and corr.max() == pytest.approx(1.0, abs=0.02)
        assert S.sync_correlation(pulses, np.roll(pulses, k), fps) == corr.max()
    # 10 frames (0.16 s) later is outside the window; independent accents correlate ~0
    assert S.sync_correlation(pulses, np.roll(pulses, 10), fps) < 0.3
    other = np.zeros(400)
    other[rng.choice(400, 40, replace=False)] = 1.0
    assert S.sync_correlation(pulses, other, fps) < 0.3
    noise = rng.standard_normal((2, 4000))
    assert abs(S.sync_correlation(noise[0], noise[1], fps)) < 0.1


def test_envelopes_of_signals():
    # mel_flux: a step up in every band at frame 5 is one onset of height 80 x step
    mel = np.zeros((80, 10))
    mel[:, 5:] = 2.0
    flux = S.mel_flux(mel)
    assert flux.shape == (10,) and flux[5] == 160.0 and flux.sum() == 160.0
    y = clicks(BEATS_A, DUR)
    assert S.music_envelope(y).shape == (1 + y.size // 256,)  # one value per mel frame
    pose = dance(BEATS_A, DUR, fps=30.0)
    env = S.motion_envelope(pose, 30.0)
    assert env.shape == (int(np.floor((pose.shape[0] - 1) / 30.0 * audio.FPS)) + 1,)
    np.testing.assert_allclose(S.motion_envelope(pose, audio.FPS), features.kinematic_amplitude(pose), atol=1e-6)
    # a dance on the clicks follows the music's envelope; the same dance 1.5 s late does not
    late = S.motion_envelope(dance(BEATS_SHIFTED, DUR, fps=30.0), 30.0)
    assert S.sync_correlation(env, S.music_envelope(y)) > 0.5 > 0.1 > S.sync_correlation(late, S.music_envelope(y))


# ---- click tracks through the paper's onset detector ------------------------------------


def test_click_track_against_itself(click_onsets):
    on, _ = click_onsets
    assert len(on) == 3 and np.allclose(on, BEATS_A, atol=0.05)
    s = B.binned_scores(on, on, DUR)
    assert (100 * s.bcs, 100 * s.bhs, 100 * s.f1) == (100.0, 100.0, 100.0)
    assert B.tolerance_scores(on, on, DUR, 0.1).f1 == 1.0


def test_click_track_shifted_by_more_than_a_bin(click_onsets):
    on, shifted = click_onsets
    s = B.binned_scores(shifted, on, DUR)
    assert s.n_generated == 3 and s.n_reference == 3
    assert (s.bcs, s.bhs, s.f1) == (0.0, 0.0, 0.0)
    assert B.tolerance_scores(shifted, on, DUR, 0.1).f1 == 0.0
    # A 50 ms shift stays inside a 0.1 s tolerance.
    near = features.onsets(clicks([b + 0.05 for b in BEATS_A], DUR))
    assert B.tolerance_scores(near, on, DUR, 0.1).f1 == 1.0


def test_motion_beats_follow_the_jerks():
    pose = dance(BEATS_A, DUR, fps=30.0)
    kb = B.motion_beats(pose, 30.0)
    assert np.allclose(kb, BEATS_A, atol=0.06)
    assert np.array_equal(B.motion_beats(pose, 30.0, onset_sr=22050), kb)  # beats 3 s apart: any window


def test_kinematic_picker_windows_last_as_long_as_the_music_detectors():
    # appendix B.4's windows (3 frames, wait 1) are frames of 512 samples: 96 ms at 16 kHz,
    # 69.7 ms at 22,050 Hz; at the 62.5 fps time base that is 6 frames / 4 frames (64 ms)
    assert features.picker_settings(audio.FPS, 16000) == dict(
        wait=2, delta=0.2, pre_avg=6, post_avg=6, pre_max=6, post_max=6
    )
    assert features.picker_settings(audio.FPS, 22050) == dict(
        wait=1, delta=0.2, pre_avg=4, post_avg=4, pre_max=4, post_max=4
    )
    assert features.picker_settings(31.25, 16000)["pre_max"] == 3  # the music detector's own frames
    # two accents 80 ms (5 frames) apart: one beat when the windows span 96 ms, two at 64 ms
    env = np.zeros(120, np.float32)
    env[40], env[45], env[100] = 1.0, 0.9, 1.0
    assert features.beats_from_envelope(env, audio.FPS, 16000).tolist() == [0.64, 1.6]
    assert features.beats_from_envelope(env, audio.FPS, 22050).tolist() == [0.64, 0.72, 1.6]


# ---- Fréchet distance -------------------------------------------------------------------


def test_frechet_1d_closed_form():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 2.0, 400), rng.normal(-1.0, 0.5, 300)
    want = (a.mean() - b.mean()) ** 2 + (a.std(ddof=1) - b.std(ddof=1)) ** 2
    assert FR.frechet_from_features(a, b) == pytest.approx(want, rel=1e-9)


def test_frechet_diagonal_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    want = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()  # 5 + 2 = 7
    assert FR.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(want)
    assert want == pytest.approx(7.0)


def test_frechet_identical_and_singular():
    x = np.random.default_rng(1).normal(size=(200, 8))
    assert abs(FR.frechet_from_features(x, x)) < 1e-6
    # Fewer samples than dimensions: singular covariances still give a finite number.
    small = np.random.default_rng(2).normal(size=(5, 16))
    d = FR.frechet_from_features(small, small + 1.0)
    assert np.isfinite(d) and d == pytest.approx(16.0, abs=1e-3)
    with pytest.raises(ValueError):
        FR.frechet_from_features(x[:1], x)


# ---- diversity --------------------------------------------------------------------------


def test_intra_diversity_by_hand():
    groups = {
        "a": [[0, 0], [3, 4], [6, 8]],  # distances 5, 10, 5 -> 20/3
        "b": [[0, 0], [0, 1]],  # 1
        "c": [[9, 9]],  # one sample: no pair, skipped
    }
    assert D.intra_diversity(groups) == pytest.approx((20 / 3 + 1) / 2)
    assert D.intra_diversity([np.array(groups["a"])]) == pytest.approx(20 / 3)
    with pytest.raises(ValueError):
        D.intra_diversity({"c": [[1, 2]]})


def test_inter_diversity_by_hand():
    x = [[0.0], [1.0], [3.0], [6.0]]
    cond = ["a", "a", "b", "b"]
    # cross pairs: |0-3|, |0-6|, |1-3|, |1-6| = 3, 6, 2, 5 -> mean 4; 200 asked, 4 exist.
    assert D.inter_diversity(x, cond, n_pairs=200) == pytest.approx(4.0)
    pairs = D.sample_cross_pairs(cond, n_pairs=3, seed=0)
    assert len({tuple(p) for p in pairs.tolist()}) == 3
    assert all(cond[i] != cond[j] for i, j in pairs)
    assert D.inter_diversity(x, cond, n_pairs=3, seed=5) == D.inter_diversity(x, cond, n_pairs=3, seed=5)
    # Without conditions every sample is its own: all 6 pairs of 4 points.
    assert D.inter_diversity(x, None) == pytest.approx((1 + 3 + 6 + 2 + 5 + 3) / 6)
    with pytest.raises(ValueError):
        D.inter_diversity(x, ["a"] * 4)
    g = D.group_by_condition(x, cond)
    assert list(g) == ["a", "b"] and g["b"].tolist() == [[3.0], [6.0]]


def test_inter_diversity_many_samples_samples_distinct_pairs():
    # 3000 single-sample conditions: ~4.5 M cross pairs, drawn by rejection sampling.
    pairs = D.sample_cross_pairs(np.arange(3000), n_pairs=200, seed=0)
    assert pairs.shape == (200, 2)
    assert (pairs[:, 0] < pairs[:, 1]).all()
    assert len({tuple(p) for p in pairs.tolist()}) == 200


# ---- FAD embedders ----------------------------------------------------------------------


def test_vggish_shapes_random_init():
    import torch

    torch.manual_seed(0)
    y = clicks(np.arange(0.1, 2.0, 0.25), 2.0)
    ex = F.vggish_examples(y)
    assert ex.shape == (2, 1, 96, 64)  # 198 frames of 10 ms -> two 0.96 s patches
    mel = F.vggish_mel_matrix(257)
    assert mel.shape == (257, 64) and not mel[0].any()
    emb = F.VGGishEmbedder(model=F.build_vggish().eval())
    out = emb.embed(y)
    assert out.shape == (2, 128) and np.isfinite(out).all()
    assert emb.embed(y[: int(0.5 * SR)]).shape == (0, 128)


def test_vggish_weights_errors(tmp_path):
    import torch

    with pytest.raises(F.EmbedderError, match="not found.*vggish-10086976.pth"):
        F.load_vggish(tmp_path / "missing.pth")
    with pytest.raises(F.EmbedderError, match="--vggish-weights"):
        F.get_embedder("vggish")
    bad = tmp_path / "bad.pth"
    torch.save({"foo.weight": torch.zeros(1)}, bad)
    with pytest.raises(F.EmbedderError, match="does not fit VGGish"):
        F.load_vggish(bad)
    with pytest.raises(F.EmbedderError, match="unknown embedder"):
        F.get_embedder("openl3")
    # A torchaudio-style file (features_network / embedding_network, "module." prefixes, a
    # wrapped state_dict, the PCA post-processor's tensors) loads as the same network.
    ref = F.build_vggish()
    sd = {
        "module." + k.replace("features.", "features_network.").replace("embeddings.", "embedding_network."): v
        for k, v in ref.state_dict().items()
    }
    sd["pproc._pca_matrix"] = torch.zeros(2)
    wrapped = tmp_path / "torchaudio_style.pth"
    torch.save({"state_dict": sd}, wrapped)
    loaded = F.load_vggish(wrapped)
    for k, v in ref.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k


def test_logmel_stats_fad_is_labelled():
    emb = F.get_embedder("logmel-stats")
    a = [clicks(np.arange(0.1, 4, 0.3), 4.0, seed=s) for s in range(3)]
    b = [clicks(np.arange(0.2, 4, 0.7), 4.0, seed=10 + s) for s in range(3)]
    e = emb.embed(a[0])
    assert e.shape == (4, 160)  # 251 mel frames -> four 60-frame windows
    ga = np.concatenate([emb.embed(y) for y in a])
    gb = np.concatenate([emb.embed(y) for y in b])
    res = F.fad_from_embeddings(ga, gb, emb)
    assert res["metric"] == "FAD[logmel-stats]" and res["embedder"] == "logmel-stats"
    assert res["FAD[logmel-stats]"] == res["value"] > 0
    assert res["rank_deficient"]  # 12 windows, 160 dimensions
    assert abs(F.fad_from_embeddings(ga, ga, emb)["value"]) < 1e-3
    assert F.clip_embedding(a[0], emb).shape == (160,)


# ---- CLI --------------------------------------------------------------------------------


def _write_wav(path: Path, y: np.ndarray) -> None:
    import soundfile as sf

    sf.write(str(path), y, SR, subtype="FLOAT")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    for d in ("gen", "ref", "motion", "lonely"):
        (root / d).mkdir()
    _write_wav(root / "ref" / "a.wav", clicks(BEATS_A, DUR, seed=1))
    _write_wav(root / "ref" / "b.wav", clicks(BEATS_A, DUR, seed=2))
    _write_wav(root / "gen" / "a.wav", clicks(BEATS_A, DUR, seed=3))  # in time
    _write_wav(root / "gen" / "b.wav", clicks(BEATS_SHIFTED, DUR, seed=4))  # 1.5 s late
    np.save(root / "motion" / "a.npy", dance(BEATS_A, DUR, fps=30.0))
    (root / "motion" / "a.json").write_text(json.dumps({"fps": 30.0}))
    np.save(root / "motion" / "b.npy", dance(BEATS_SHIFTED, DUR, fps=60.0))  # fps from --fps
    _write_wav(root / "lonely" / "zzz.wav", clicks(BEATS_A, 2.0))
    return root


def _run(*args):
    from typer.testing import CliRunner

    from momu_models.cli.eval import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_beats_music(files, tmp_path):
    out = tmp_path / "beats.json"
    plots = tmp_path / "plots"
    r = _run("beats", files / "gen", "--reference", files / "ref", "--json", out, "--plot", plots)
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    assert res["kind"] == "music" and res["method"] == "bins-1s" and res["n"] == 2
    assert res["BCS"] == pytest.approx(50.0) and res["BHS"] == pytest.approx(50.0)
    assert res["CSD"] == pytest.approx(100 / math.sqrt(2)) and res["HSD"] == pytest.approx(100 / math.sqrt(2))
    assert res["F1"] == pytest.approx(50.0)
    rows = {p["stem"]: p for p in res["pairs"]}
    assert (rows["a"]["BCS"], rows["a"]["BHS"], rows["b"]["BCS"], rows["b"]["BHS"]) == (100, 100, 0, 0)
    assert rows["a"]["n_generated"] == 3 and rows["a"]["duration_s"] == pytest.approx(DUR)
    assert sorted(p.name for p in plots.iterdir()) == ["a.png", "b.png"]
    assert "BCS" in r.output and "HSD" in r.output


def test_cli_beats_motion_and_tolerance(files, tmp_path):
    out = tmp_path / "motion.json"
    r = _run(
        "beats",
        files / "motion",
        "-r",
        files / "ref",
        "--kind",
        "motion",
        "--fps",
        "60",
        "--tolerance",
        "0.1s",
        "--json",
        out,
    )
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    assert res["kind"] == "motion" and res["method"] == "tolerance-0.1s" and res["unit"] == "beats"
    rows = {p["stem"]: p for p in res["pairs"]}
    assert rows["a"]["fps"] == 30.0 and rows["b"]["fps"] == 60.0  # sidecar, then --fps
    assert rows["a"]["BCS"] == 100 and rows["a"]["BHS"] == 100
    assert rows["b"]["BCS"] == 0 and rows["b"]["BHS"] == 0
    assert {"BCS", "CSD", "BHS", "HSD", "F1", "n"} <= set(res)


def test_cli_beats_sync(files, tmp_path):
    out = tmp_path / "sync.json"
    r = _run("beats", files / "gen", "-r", files / "ref", "--sync", "--per-pair", "--json", out)
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    rows = {p["stem"]: p for p in res["pairs"]}
    # a: the same clicks as its reference (other noise); b: 1.5 s late, outside +-0.1 s
    assert rows["a"]["sync"] > 0.9 and abs(rows["b"]["sync"]) < 0.1
    assert res["sync"] == pytest.approx((rows["a"]["sync"] + rows["b"]["sync"]) / 2)
    assert res["sync_sd"] == pytest.approx(abs(rows["a"]["sync"] - rows["b"]["sync"]) / math.sqrt(2))
    assert res["sync_max_lag_s"] == 0.1 and "sync SD" in r.output
    r = _run(
        "beats", files / "motion", "-r", files / "ref", "--kind", "motion", "--fps", "60", "--sync", "--json", out
    )
    assert r.exit_code == 0, r.output
    rows = {p["stem"]: p for p in json.loads(out.read_text())["pairs"]}
    assert rows["a"]["sync"] > 0.5 and abs(rows["b"]["sync"]) < 0.1
    r = _run("beats", files / "gen" / "a.wav", "-r", files / "ref" / "a.wav", "--sync", "--json", out)
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text())["sync_sd"] is None  # one pair: no SD
    # without --sync the output has no sync at all
    r = _run("beats", files / "gen", "-r", files / "ref", "--per-pair", "--json", tmp_path / "plain.json")
    res = json.loads((tmp_path / "plain.json").read_text())
    assert "sync" not in res and "sync" not in res["pairs"][0] and "sync" not in r.output.replace(str(tmp_path), "")


def test_cli_single_pair_has_null_sd(files, tmp_path):
    out = tmp_path / "one.json"
    r = _run("beats", files / "gen" / "a.wav", "-r", files / "ref" / "a.wav", "--json", out)
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    assert res["n"] == 1 and res["CSD"] is None and res["HSD"] is None and res["BCS"] == 100


def test_cli_errors(files, tmp_path):
    r = _run("beats", files / "lonely", "-r", files / "ref")
    assert r.exit_code == 1 and "no pairs found" in r.output
    (tmp_path / "gen").mkdir()
    for s in ("a", "extra"):
        (tmp_path / "gen" / f"{s}.wav").write_bytes((files / "gen" / "a.wav").read_bytes())
    r = _run("beats", tmp_path / "gen", "-r", files / "ref")
    assert r.exit_code == 1 and "unpaired generated stems" in r.output and "extra" in r.output
    r = _run("beats", files / "motion", "-r", files / "ref", "--kind", "motion")
    assert r.exit_code == 1 and "no fps" in r.output and "b.json" in r.output
    r = _run("beats", files / "motion", "-r", files / "ref")
    assert r.exit_code == 1 and "--kind motion" in r.output
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.wav").write_bytes(b"not audio at all")
    r = _run("beats", tmp_path / "junk", "-r", files / "ref")
    assert r.exit_code == 1 and "a.wav" in r.output and "unreadable" in r.output
    r = _run("fad", files / "gen", "-r", files / "ref", "--embedder", "vggish")
    assert r.exit_code == 1 and "--vggish-weights" in r.output
    r = _run("beats", files / "gen", "-r", files / "ref", "--tolerance", "abc")
    assert r.exit_code == 2 and "cannot read 'abc'" in r.output  # a usage error, as typer reports them


def test_parse_tolerance():
    assert EF.parse_tolerance("0.1s") == 0.1 and EF.parse_tolerance(" 100ms ") == pytest.approx(0.1)
    assert EF.parse_tolerance("0.25") == 0.25 and EF.parse_tolerance(None) is None
    with pytest.raises(ValueError, match="write e.g. 0.1s"):
        EF.parse_tolerance("1 min")


def test_cli_fad_logmel(files, tmp_path):
    out = tmp_path / "fad.json"
    r = _run("fad", files / "gen", "--reference", files / "ref", "--json", out)
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    assert res["metric"] == "FAD[logmel-stats]" and res["FAD[logmel-stats]"] == res["value"]
    assert res["n_generated_files"] == 2 and res["n_generated_windows"] == 18
    assert math.isfinite(res["value"]) and "FAD[logmel-stats]" in r.output


def test_cli_plot_command(files, tmp_path):
    r = _run("plot", files / "motion", "-r", files / "ref", "--out", tmp_path / "p", "--kind", "motion", "--fps", "60")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["a.png", "b.png"]


# ---- motion metrics: Mean KLD, FID, diversity (hand-made inputs) ------------------------

from momu_models.evaluate.metrics import motion as MM  # noqa: E402


def test_kl_divergence_by_hand():
    p, q = [0.5, 0.5], [0.9, 0.1]
    # 0.5 ln(0.5/0.9) + 0.5 ln(0.5/0.1) = 0.5 (-0.5877867 + 1.6094379)
    assert MM.kl_divergence(p, q) == pytest.approx(0.5108256, abs=1e-7)
    # the other direction: 0.9 ln(1.8) + 0.1 ln(0.2)
    assert MM.kl_divergence(q, p) == pytest.approx(0.3680642, abs=1e-7)
    assert MM.kl_divergence(p, p) == 0.0
    assert MM.kl_divergence([1.0, 0.0], [0.5, 0.5]) == pytest.approx(math.log(2))  # 0 log 0 = 0
    assert MM.kl_divergence([0.5, 0.5], [1.0, 0.0]) == math.inf
    np.testing.assert_allclose(MM.kl_divergence([p, q], [q, q]), [0.5108256, 0.0], atol=1e-7)
    with pytest.raises(ValueError, match="shape"):
        MM.kl_divergence([0.5, 0.5], [1.0, 0.0, 0.0])


def test_mean_kld_from_logits_by_hand():
    ref = np.array([[0.0, 0.0], [0.0, 0.0], [3.0, 1.0]])  # softmax [.5 .5], [.5 .5], [e^2/(1+e^2), ...]
    gen = np.array([[math.log(9), 0.0], [5.0, 5.0], [3.0, 1.0]])  # [.9 .1], [.5 .5], identical
    kl = MM.pairwise_kld(ref, gen)
    np.testing.assert_allclose(kl, [0.5108256, 0.0, 0.0], atol=1e-7)
    assert MM.mean_kld(ref, gen) == pytest.approx(0.5108256 / 3, abs=1e-7)
    assert MM.mean_kld(gen, ref) == pytest.approx(0.3680642 / 3, abs=1e-7)  # KL(p_ref || p_gen), not symmetric
    assert MM.mean_kld([[1000.0, 0.0]], [[1000.0, 0.0]]) == 0.0  # stable for large logits
    assert MM.mean_kld([[1000.0, 0.0]], [[0.0, 0.0]]) == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="one shape"):
        MM.mean_kld(np.zeros((2, 3)), np.zeros((3, 3)))


def test_motion_fid_and_diversity_scores_by_hand():
    # 1-D: means 1 and 4, sample variances 2 and 2: d = 9 + 2 + 2 - 2 sqrt(4) = 9
    res = MM.motion_fid([[0.0], [2.0]], [[3.0], [5.0]])
    assert res["FID"] == pytest.approx(9.0) and res["dim"] == 1 and not res["rank_deficient"]
    x = np.random.default_rng(0).standard_normal((6, 3))
    assert MM.motion_fid(x, x)["FID"] == pytest.approx(0.0, abs=1e-6)
    d = MM.diversity_scores([[0.0], [1.0], [10.0]], ["a", "a", "b"])
    # inter: pairs (0, 10), (1, 10) -> 9.5; intra: condition a -> |0 - 1| = 1
    assert d["inter"] == d["Diversity"] == pytest.approx(9.5) and d["intra"] == pytest.approx(1.0)
    assert d["n_pairs"] == 2 and d["n_conditions"] == 2
    one = MM.diversity_scores([[0.0], [3.0]], ["a", "a"])
    assert one["inter"] is None and one["intra"] == pytest.approx(3.0)
    alone = MM.diversity_scores([[0.0], [3.0], [4.0]])  # no conditions: all different, no intra
    assert alone["inter"] == pytest.approx((3 + 4 + 1) / 3) and alone["intra"] is None


def test_condition_ids_from_stems():
    from momu_models.evaluate.files import condition_of, generated_kinds

    assert condition_of("song_dance_s0_3") == "song" and generated_kinds("song_dance_s0_3") == ("motion",)
    assert condition_of("my_video_music_s12_0") == "my_video" and generated_kinds("my_video_music_s12_0") == ("music",)
    assert condition_of("joint_s0_1") == "joint_s0_1" and generated_kinds("joint_s0_1") == ("music", "motion")
    assert condition_of("clip7_s2") == "clip7"
    assert condition_of("plain") == "plain" and condition_of("my_dance_clip") == "my_dance_clip"


# ---- momu-eval motion / diversity / all -------------------------------------------------


def _motion(path: Path, pose: np.ndarray, fps: float) -> None:
    np.save(path, pose)
    path.with_suffix(".json").write_text(json.dumps({"fps": fps}))


@pytest.fixture(scope="module")
def runs(files, tmp_path_factory):
    """ref/: music a, b (clicks on BEATS_A) and their motions (dances on BEATS_A);
    runs/ours: momu-generate-style names, with the input files momu-generate also writes;
    runs/base: the reference motions themselves; clf/: a random tiny classifier."""
    import torch

    from momu_models.models.motion_encoder import PRESETS, MotionClassifier

    root = tmp_path_factory.mktemp("all")
    ref, ours, base = root / "ref", root / "runs" / "ours", root / "runs" / "base"
    for d in (ref, ours, base):
        d.mkdir(parents=True)
    for s in ("a", "b"):
        (ref / f"{s}.wav").write_bytes((files / "ref" / f"{s}.wav").read_bytes())
        _motion(ref / f"{s}.npy", dance(BEATS_A, DUR, 30.0, seed=ord(s)), 30.0)
        _motion(base / f"{s}.npy", np.load(ref / f"{s}.npy"), 30.0)
    # motion-to-music: music generated for the dance videos a and b (the .npy is their input)
    (ours / "a_music_s0_0.wav").write_bytes((files / "gen" / "a.wav").read_bytes())  # in time
    (ours / "b_music_s0_0.wav").write_bytes((files / "gen" / "b.wav").read_bytes())  # 1.5 s late
    _motion(ours / "a_music_s0_0.npy", dance(BEATS_SHIFTED, DUR, 62.5), 62.5)
    # music-to-motion: two dances for music a (in time), one for b (late); the .wav is the input
    for k in range(2):
        _motion(ours / f"a_dance_s0_{k}.npy", dance(BEATS_A, DUR, 30.0, seed=10 + k), 30.0)
        (ours / f"a_dance_s0_{k}.wav").write_bytes((files / "gen" / "b.wav").read_bytes())
    _motion(ours / "b_dance_s0_0.npy", dance(BEATS_SHIFTED, DUR, 30.0, seed=12), 30.0)
    from momu_models.models.motion_encoder import motion_features

    torch.manual_seed(0)
    clf = MotionClassifier(PRESETS["tiny"], ["x", "y", "z"])
    # A random encoder gives these similar dances similar features; a sharper head centred on
    # their mean makes the predictions differ between clips, so the KLD is worth checking.
    mean = motion_features(clf, [np.load(p) for p in sorted(root.rglob("*.npy"))], 30.0).mean(0)
    with torch.no_grad():
        clf.head.weight.mul_(20.0)
        clf.head.bias.copy_(-clf.head.weight @ torch.from_numpy(mean))
    clf.save_pretrained(root / "clf")
    return root


def test_cli_all_end_to_end(runs, files, tmp_path):
    from momu_models.models.motion_encoder import encode_motions, load_classifier

    out, md = tmp_path / "all.json", tmp_path / "all.md"
    r = _run("all", runs / "runs", "-r", runs / "ref", "--classifier", runs / "clf", "--json", out, "--markdown", md)
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    rows = {m["name"]: m for m in res["methods"]}
    assert list(rows) == ["base", "ours"]
    ours, base = rows["ours"], rows["base"]
    # the inputs momu-generate writes beside each sample are not scored
    assert ours["n_generated_music"] == 2 and ours["n_generated_motion"] == 3
    # motion-to-music: a in time (100), b 1.5 s late (0), as `momu-eval beats`
    m2m = ours["motion2music"]
    assert (m2m["BCS"], m2m["BHS"], m2m["F1"]) == (50.0, 50.0, 50.0)
    assert m2m["CSD"] == pytest.approx(100 / math.sqrt(2))
    fad = F.fad_from_files(
        [files / "gen" / "a.wav", files / "gen" / "b.wav"],
        [files / "ref" / "a.wav", files / "ref" / "b.wav"],
        F.get_embedder(),
    )
    assert m2m["FAD[logmel-stats]"] == pytest.approx(fad["value"])
    # music-to-motion beats: two dances in time with music a, one late for b
    m2d = ours["music2motion"]
    assert m2d["BCS"] == pytest.approx(200 / 3) and m2d["BHS"] == pytest.approx(200 / 3)
    assert base["music2motion"]["BCS"] == 100.0 and base["motion2music"] == {}
    # motion metrics against a direct computation with the same classifier
    model = load_classifier(runs / "clf")
    gen = [np.load(runs / "runs" / "ours" / f"{s}.npy") for s in ("a_dance_s0_0", "a_dance_s0_1", "b_dance_s0_0")]
    ref = [np.load(runs / "ref" / f"{s}.npy") for s in ("a", "b")]
    gf, gl = encode_motions(model, gen, 30.0)
    rf, rl = encode_motions(model, ref, 30.0)
    assert m2d["Mean KLD"] == pytest.approx(MM.mean_kld(rl[[0, 0, 1]], gl), rel=1e-6)
    assert m2d["Mean KLD"] > 0.01
    assert m2d["FID"] == pytest.approx(FR.frechet_from_features(gf, rf), rel=1e-6)
    inter = (np.linalg.norm(gf[0] - gf[2]) + np.linalg.norm(gf[1] - gf[2])) / 2
    assert m2d["Diversity"] == pytest.approx(inter, rel=1e-6)
    assert ours["details"]["motion"]["intra_diversity"] == pytest.approx(np.linalg.norm(gf[0] - gf[1]), rel=1e-6)
    # the reference against itself: Mean KLD 0, FID 0
    assert base["music2motion"]["Mean KLD"] == 0.0 and base["music2motion"]["FID"] == pytest.approx(0, abs=1e-6)
    assert any("no generated music" in n for n in base["notes"])
    text = md.read_text()
    assert "| Method | BCS↑ | CSD | BHS↑ | HSD | F1↑ | FAD[logmel-stats]↓ | Diversity[logmel-stats]↑ |" in text
    assert "| Method | BCS↑ | CSD | BHS↑ | HSD | F1↑ | FID↓ | Diversity↑ | Mean KLD↓ |" in text
    assert "| ours | 50.0 | 70.7 | 50.0 | 70.7 | 50.0 |" in text and "| base | – |" in text


def test_cli_all_skips_what_it_cannot_compute(runs, tmp_path):
    out = tmp_path / "all.json"
    r = _run("all", runs / "runs" / "ours", "--json", out)  # no reference, no classifier
    assert r.exit_code == 0, r.output
    (m,) = json.loads(out.read_text())["methods"]
    assert set(m["motion2music"]) == {"Diversity[logmel-stats]"} and m["music2motion"] == {}
    assert any("no --reference" in n for n in m["notes"]) and any("no --classifier" in n for n in m["notes"])
    assert "no --classifier" in r.output
    r = _run("all", tmp_path / "nothing")
    assert r.exit_code == 1 and r.output.startswith("error: ") and len(r.output.strip().splitlines()) == 1


def test_cli_motion_and_diversity(runs, files, tmp_path):
    out = tmp_path / "m.json"
    r = _run("motion", runs / "runs" / "ours", "-r", runs / "ref", "-c", runs / "clf", "--json", out)
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    assert res["n_generated"] == 3 and res["n_conditions"] == 2 and res["Mean KLD"] > 0
    assert [p["reference"] for p in res["pairs"]] == ["a", "a", "b"]
    r = _run("motion", runs / "runs" / "ours")
    assert r.exit_code == 1 and "--classifier" in r.output
    r = _run("motion", runs / "runs" / "ours", "-c", runs / "ref")
    assert r.exit_code == 1 and "no model.safetensors" in r.output
    out = tmp_path / "d.json"
    r = _run("diversity", files / "gen", "--json", out)
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    emb = F.get_embedder()
    a, b = (F.clip_embedding(EF.load_music(files / "gen" / f"{s}.wav"), emb) for s in ("a", "b"))
    assert res["metric"] == "Diversity[logmel-stats]" and res["intra_diversity"] is None
    assert res["inter_diversity"] == pytest.approx(float(np.linalg.norm(a - b)), rel=1e-5)
    r = _run("diversity", runs / "runs" / "ours", "--kind", "motion", "-c", runs / "clf", "--json", out)
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    assert res["conditions"] == {"a_dance_s0_0": "a", "a_dance_s0_1": "a", "b_dance_s0_0": "b"}
    assert res["intra_diversity"] > 0 and res["inter_diversity"] > 0


def test_edge_speed_ratios_on_known_motion():
    from momu_models.diffusion import window_seams, window_starts
    from momu_models.evaluate.metrics import edge_speed_ratios, joint_speed, speed_profile

    pose = np.zeros((101, 14, 2))
    pose[:, :, 0] = 0.01 * np.arange(101)[:, None]  # every joint moves 0.01 per frame
    assert np.allclose(joint_speed(pose), 0.01)
    r = edge_speed_ratios(joint_speed(pose), seams=[50])
    assert r == pytest.approx({"first": 1.0, "last": 1.0, "seam@50": 1.0})
    pose[0, :, 0] -= 0.05  # the first step is 6x as fast: the first 6 steps average 11/6
    r = edge_speed_ratios(joint_speed(pose))
    assert r["first"] == pytest.approx(11 / 6) and r["last"] == pytest.approx(1.0)
    assert np.allclose(speed_profile([pose, pose]), joint_speed(pose) / 0.01)
    # seams: where each overlap of window_starts begins and ends
    assert window_starts(100, 48, 12) == [0, 36, 52]
    assert window_seams(100, 48) == [36, 48, 52, 84]
    assert window_seams(40, 48) == []


def test_cli_all_and_plot_take_the_scorer(runs, files, tmp_path, monkeypatch):
    # `all` scores beats with the scorer it is given, like `beats` (default: LORIS's)
    out = tmp_path / "all.json"
    r = _run("all", runs / "runs" / "ours", "-r", runs / "ref", "--scorer", "16k", "--json", out)
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    (m,) = res["methods"]
    assert (
        res["beats_scorer"] == "16k"
        and m["details"]["motion2music_beats"]["scorer"] == m["details"]["music2motion_beats"]["scorer"] == "16k"
    )
    assert (m["motion2music"]["BCS"], m["motion2music"]["BHS"]) == (50.0, 50.0)  # clicks: as at 22,050 Hz
    assert _run("all", runs / "runs" / "ours", "--scorer", "44k").exit_code == 2
    # `plot` draws the beats of the scorer it is given
    import momu_models.cli.eval as E

    seen = []
    real = E.evaluate_beats
    monkeypatch.setattr(E, "evaluate_beats", lambda *a, **kw: seen.append(kw.get("scorer")) or real(*a, **kw))
    for extra in ([], ["--scorer", "16k"]):
        r = _run("plot", files / "gen", "-r", files / "ref", "--out", tmp_path / "p", *extra)
        assert r.exit_code == 0, r.output
    assert seen == ["loris", "16k"] and sorted(p.name for p in (tmp_path / "p").iterdir()) == ["a.png", "b.png"]
