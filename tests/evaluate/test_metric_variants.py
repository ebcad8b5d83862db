"""The field's beat metrics (`momu-eval beats --metric`): loris, tolerance, d2m, bas-bailando,
bas-aist, each on a click track, a shifted click track and an empty track, with the values
computed by hand in the comments (docs/metrics.md, "Which beat metric")."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from momu_models.evaluate.metrics import beat_variants as V
from momu_models.evaluate.metrics import beats as B

SIGMA = V.BAS_SIGMA_S  # 0.05 s: sigma^2 = 9 frames^2 at 60 fps
R = [0.5, 1.5, 2.5, 3.5]  # reference (music) beats, 60 BPM
DUR = 4.0  # the generated clip's length: bins 0..3
E_HALF = math.exp(-0.5)  # a beat one sigma (0.05 s) away


def stop_dance(stops, dur: float, fps: float, joints: int = 14) -> np.ndarray:
    """[T, J, 2]: every joint glides along x with a step of (0.01 + the time to the nearest
    stop) per frame: the joint speed has a strict minimum exactly at each stop frame."""
    T = int(round(dur * fps))
    t = np.arange(T - 1) / fps
    step = np.min(np.abs(t[:, None] - np.asarray(stops)[None, :]), axis=1) + 0.01
    pose = np.zeros((T, joints, 2), np.float32)
    pose[:, :, 0] = np.concatenate([[0.0], np.cumsum(step)])[:, None]
    return pose


def clicks(times, dur: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """20 ms decaying 1 kHz bursts at the given times over faint noise."""
    y = np.zeros(int(round(dur * sr)), np.float32)
    t = np.arange(int(0.02 * sr)) / sr
    burst = (np.sin(2 * np.pi * 1000 * t) * np.exp(-t / 0.004)).astype(np.float32)
    for c in times:
        i = int(round(c * sr))
        seg = y[i : i + burst.size]
        seg += burst[: seg.size]
    return 0.5 * y + 1e-4 * np.random.default_rng(seed).standard_normal(y.size).astype(np.float32)


# ---- names ------------------------------------------------------------------------------


def test_parse_metrics_and_kinds():
    assert V.parse_metrics(None) == ["loris"]
    assert V.parse_metrics(None, tolerance=0.2) == ["tolerance"]  # --tolerance alone, as before
    assert V.parse_metrics("all") == ["loris", "tolerance", "bas-bailando", "bas-aist", "d2m"]
    assert V.parse_metrics(" BAS-AIST, loris,bas-aist ") == ["bas-aist", "loris"]
    with pytest.raises(ValueError, match="unknown beat metric 'bas'.*loris, tolerance"):
        V.parse_metrics("loris,bas")
    with pytest.raises(ValueError, match="no metric named"):
        V.parse_metrics(" , ")
    assert V.for_kind(V.parse_metrics("all"), "music") == ["loris", "tolerance", "d2m"]
    assert V.primary_metric(["bas-aist", "tolerance", "loris"]) == "tolerance"
    assert V.primary_metric(["bas-aist"]) == "loris"
    assert V.primary_tolerance(["tolerance"]) == 0.1 and V.primary_tolerance(["loris", "tolerance"], 0.2) is None


def test_aist_tempo_from_names():
    # FACT's rule: mBR/mPO/.../mJB k -> 80 + 10 k BPM; mHO k -> 110 + 5 k
    assert V.aist_tempo("mBR0") == 80.0 and V.aist_tempo("mJB5") == 130.0
    assert V.aist_tempo("gBR_sBM_c01_d04_mHO2_ch01") == 120.0
    assert V.aist_tempo("mLH4_dance_s0_1") == 120.0
    assert V.aist_tempo("song") is None and V.aist_tempo("xmBR0") is None and V.aist_tempo("mXX1") is None


# ---- loris, tolerance, d2m on beat times --------------------------------------------------


@pytest.mark.parametrize(
    "gen, loris, tol, d2m",
    [
        # click track: 4 beats in bins 0-3 on both sides, all within 0.1 s
        (R, (100, 100, 100), (100, 100, 100), (100, 100)),
        # shifted by one sigma (0.05 s): same bins, every beat still within 0.1 s
        ([t + 0.05 for t in R], (100, 100, 100), (100, 100, 100), (100, 100)),
        # shifted half a beat (0.5 s): 1, 2, 3 (4.0 is past the clip); bins 1-3 of the
        # reference's 0-3 -> loris BCS 3/3, BHS 3/4, F1 2 * 1 * 0.75 / 1.75; no beat within
        # 0.1 s; d2m BCS 3 / 4 bins, BHS 3 / 4
        ([t + 0.5 for t in R], (100, 75, 600 / 7), (0, 0, 0), (75, 75)),
        # empty track: nothing generated -> every score 0 (d2m: 0 / 4)
        ([], (0, 0, 0), (0, 0, 0), (0, 0)),
        # one beat, at 1.5 s: bin 1 of 0-3 -> BCS 1/1, BHS 1/4, F1 2 * 0.25 / 1.25; d2m 1/4, 1/4
        ([1.5], (100, 25, 40), (100, 25, 40), (25, 25)),
        # beats and off-beats (4.0 is past the clip: 7 beats): every bin -> loris 100; 4 of the
        # 7 within 0.1 s -> BCS 4/7, BHS 4/4, F1 2 (4/7) / (11/7) = 8/11; d2m 4 bins / 4 bins
        (sorted(R + [1.0, 2.0, 3.0, 4.0]), (100, 100, 100), (400 / 7, 100, 800 / 11), (100, 100)),
    ],
)
def test_matching_metrics_by_hand(gen, loris, tol, d2m):
    s = V.pair_metrics(["loris", "tolerance", "d2m"], gen, R, DUR)
    got = {m: V.pair_row(m, x) for m, x in s.items()}
    assert [got["loris"][k] for k in ("BCS", "BHS", "F1")] == pytest.approx(loris)
    assert [got["tolerance"][k] for k in ("BCS", "BHS", "F1")] == pytest.approx(tol)
    assert [got["d2m"][k] for k in ("BCS", "BHS")] == pytest.approx(d2m) and "F1" not in got["d2m"]


def test_d2m_exceeds_100_and_counts_beats_with_a_tolerance():
    ref = [0.5, 2.5]  # bins 0, 2
    gen = [0.5, 1.5, 2.5, 3.5]  # bins 0-3
    # d2m: B_c / B_t = 4 / 2 bins = 200 %, B_a / B_t = 2 / 2; loris: 2 / 4 and 2 / 2
    d = V.d2m_scores(gen, ref, DUR)
    assert (d.bcs, d.bhs, d.n_generated, d.n_reference, d.n_matched) == (2.0, 1.0, 4, 2, 2)
    lo = B.binned_scores(gen, ref, DUR)
    assert (lo.bcs, lo.bhs, lo.f1) == (0.5, 1.0, pytest.approx(2 / 3))  # F1 2 * 0.5 / 1.5
    # with a tolerance d2m counts beats: 7 generated (beats and off-beats; 4.0 is past the
    # clip) over 4 reference = 175 %, 4 matched within 0.1 s / 4 = 100 %
    dense = sorted(R + [1.0, 2.0, 3.0, 4.0])
    d = V.d2m_scores(dense, R, DUR, tolerance=0.1)
    assert (d.bcs, d.bhs, d.n_generated, d.n_reference, d.n_matched) == (1.75, 1.0, 7, 4, 4)
    # no reference beat: 0, as LORIS's `x / total if total else 0`
    assert V.d2m_scores(gen, [], DUR).bcs == 0.0


# ---- Beat Align Scores on beat times ------------------------------------------------------


@pytest.mark.parametrize(
    "motion, bailando, aist",
    [
        (R, 1.0, 1.0),  # click track: every distance 0 -> exp(0)
        ([t + 0.05 for t in R], E_HALF, E_HALF),  # one sigma late: exp(-0.05^2 / (2 0.05^2))
        ([t + 0.5 for t in R], math.exp(-50), math.exp(-50)),  # half a beat: exp(-0.25 / 0.005)
        ([], 0.0, 0.0),  # empty track: nothing to match -> 0
    ],
)
def test_bas_by_hand(motion, bailando, aist):
    assert V.bas_bailando(R, motion) == pytest.approx(bailando, rel=1e-12, abs=0)
    assert V.bas_aist(R, motion) == pytest.approx(aist, rel=1e-12, abs=0)


def test_bas_definitions_differ_in_what_they_average():
    # one stop, on the second music beat: Bailando averages over the 4 music beats
    # (1 + 3 beats >= 1 s away, exp(-1 / 0.005) ~ 0) -> 1/4; AIST++ over the 1 kinematic beat -> 1
    assert V.bas_bailando(R, [1.5]) == pytest.approx(0.25, abs=1e-12)
    assert V.bas_aist(R, [1.5]) == pytest.approx(1.0)
    # stops on every beat and every off-beat: Bailando 1, AIST++ 4 of 8 -> 0.5
    dense = sorted(R + [1.0, 2.0, 3.0, 4.0])
    assert V.bas_bailando(R, dense) == pytest.approx(1.0)
    assert V.bas_aist(R, dense) == pytest.approx(0.5, abs=1e-12)
    # no music beats: 0 for both (the sources raise or divide by zero)
    assert V.bas_bailando([], R) == 0.0 and V.bas_aist([], R) == 0.0
    with pytest.raises(ValueError):
        V.beat_align_score(R, R, over="both")


# ---- kinematic beats of each source, and BAS from a pose ----------------------------------


def test_kinematic_beats_of_each_source():
    stops = [0.5, 1.5, 2.5, 3.5]
    pose = stop_dance(stops, DUR, 60.0)
    # Bailando: the speed between frames i and i + 1 at index i -> the stops themselves
    np.testing.assert_allclose(V.kinematic_beats_bailando(pose, 60.0), stops, atol=1e-12)
    # AIST++: the same speed at index i + 1 -> one frame (1/60 s) later
    np.testing.assert_allclose(V.kinematic_beats_aist(pose, 60.0), np.add(stops, 1 / 60), atol=1e-12)
    # at 62.5 fps, stops on frames 30, 95, 155, 220 (0.48 ... 3.52 s), one frame = 16 ms
    stops = [0.48, 1.52, 2.48, 3.52]
    pose = stop_dance(stops, DUR, 62.5)
    np.testing.assert_allclose(V.kinematic_beats_bailando(pose, 62.5), stops, atol=1e-12)
    np.testing.assert_allclose(V.kinematic_beats_aist(pose, 62.5), np.add(stops, 0.016), atol=1e-12)
    # the frame-rate conversions: order 10 frames at 60 fps = 1/6 s
    assert (V.aist_order(60.0), V.aist_order(62.5), V.aist_order(30.0), V.aist_order(3.0)) == (10, 10, 5, 1)
    # empty track: a body at rest has no strict minimum
    still = np.zeros((240, 14, 2), np.float32)
    assert V.kinematic_beats_bailando(still, 60.0).size == 0 and V.kinematic_beats_aist(still, 60.0).size == 0


@pytest.mark.parametrize(
    "stops, music, bailando, aist",
    [
        # click track: Bailando's beats sit on the music beats -> 1; AIST++'s are one frame
        # late: exp(-(1/60)^2 / (2 (1/20)^2)) = exp(-1/18)
        (R, R, 1.0, math.exp(-1 / 18)),
        # the dance 0.05 s late: Bailando exp(-0.5); AIST++ (0.05 + 1/60 = 1/15 s late):
        # exp(-(1/15)^2 / (2 (1/20)^2)) = exp(-8/9)
        ([t + 0.05 for t in R], R, E_HALF, math.exp(-8 / 9)),
        # the music 0.05 s late instead: AIST++'s one-frame lag now helps, 1/30 s:
        # exp(-(1/30)^2 / (2 (1/20)^2)) = exp(-2/9)
        (R, [t + 0.05 for t in R], E_HALF, math.exp(-2 / 9)),
        # empty music track
        (R, [], 0.0, 0.0),
    ],
)
def test_bas_of_a_pose_by_hand(stops, music, bailando, aist):
    pose = stop_dance(stops, DUR, 60.0)
    b, a = V.bas_pair("bas-bailando", music, pose, 60.0), V.bas_pair("bas-aist", music, pose, 60.0)
    assert b.value == pytest.approx(bailando, rel=1e-9) and a.value == pytest.approx(aist, rel=1e-9)


def test_bas_uses_the_music_beats_inside_the_motion():
    pose = stop_dance([0.5, 1.5], 2.0, 60.0)  # 120 frames
    music = [0.5, 1.5, 1.99, 2.5]  # 1.99 s: frame 119.4, inside T = 120 but not T - 1 = 119 speed frames
    b = V.bas_pair("bas-bailando", music, pose, 60.0)
    a = V.bas_pair("bas-aist", music, pose, 60.0)
    assert b.music_beats.tolist() == [0.5, 1.5] and b.value == pytest.approx(1.0)
    assert a.music_beats.tolist() == [0.5, 1.5, 1.99]
    # AIST++ averages over its 2 kinematic beats (one frame late) whatever the music count
    assert a.value == pytest.approx(math.exp(-1 / 18), rel=1e-9)


def test_summaries():
    bas = [V.BASScore(v, np.zeros(0), np.zeros(0)) for v in (1.0, 0.5)]
    s = V.summarise("bas-aist", bas)
    assert (s["BAS"], s["BAS_SD"], s["n"], s["averaged_over"]) == (
        0.75,
        pytest.approx(0.5 / math.sqrt(2)),
        2,
        "kinematic beats",
    )
    assert math.isnan(V.summarise("bas-bailando", bas[:1])["BAS_SD"])
    d = V.summarise("d2m", [V.d2m_scores([0.5, 1.5, 2.5, 3.5], [0.5, 2.5], DUR), V.d2m_scores(R, R, DUR)])
    assert (d["BCS"], d["BHS"], d["unit"]) == (150.0, 100.0, "bins") and "F1" not in d
    loris = V.summarise("loris", [B.binned_scores(R, R, DUR), B.binned_scores([], R, DUR)])
    assert loris == {**loris, **B.aggregate([B.binned_scores(R, R, DUR), B.binned_scores([], R, DUR)])}
    assert loris["label"] == "loris (bins-1s)" and loris["unit"] == "bins"
    tol = V.summarise("tolerance", [B.tolerance_scores(R, R, DUR, 0.1)])
    assert (tol["label"], tol["unit"], tol["BCS"]) == ("tolerance (±0.1 s)", "beats", 100.0)


# ---- music beats of each source (beat_track: numba compiles it on a fresh cache) ----------


@pytest.mark.slow
def test_music_beats_of_each_source_on_a_click_track():
    times = np.arange(0.5, 6.0, 0.5)  # 120 BPM
    y = clicks(times, 6.0)
    for beats in (V.music_beats_bailando(y, 16000), V.music_beats_aist(y, 16000, start_bpm=120)):
        inner = beats[(beats > 0.9) & (beats < 5.1)]
        # every inner click found, on the 60 fps grid, within two frames of the click
        assert len(inner) == 9
        np.testing.assert_allclose(inner, times[1:10], atol=2 / 60)
        np.testing.assert_allclose(inner * 60, np.round(inner * 60), atol=1e-9)
    assert V.music_beats_aist(np.zeros(0, np.float32), 16000).size == 0


# ---- CLI --------------------------------------------------------------------------------


def _run(*args):
    from typer.testing import CliRunner

    from momu_models.cli.eval import app

    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture()
def fake_music_beats(monkeypatch):
    """Both sources' music beats are R whatever the audio (beat_track itself is tested above,
    marked slow); records the start_bpm the AIST++ extraction was given."""
    seen = []
    monkeypatch.setattr(V, "music_beats_bailando", lambda y, sr=V.BAS_SR: np.array(R))
    monkeypatch.setattr(
        V, "music_beats_aist", lambda y, sr=V.BAS_SR, start_bpm=None: seen.append(start_bpm) or np.array(R)
    )
    return seen


def _motion(path: Path, pose: np.ndarray, fps: float) -> None:
    np.save(path, pose)
    path.with_suffix(".json").write_text(json.dumps({"fps": fps}))


def test_cli_beats_every_metric(tmp_path, fake_music_beats):
    import soundfile as sf

    gen, ref = tmp_path / "gen", tmp_path / "ref"
    gen.mkdir(), ref.mkdir()
    for stem in ("mBR0", "mHO2"):
        sf.write(str(ref / f"{stem}.wav"), clicks(R, DUR), 16000, subtype="FLOAT")
    _motion(gen / "mBR0.npy", stop_dance(R, DUR, 60.0), 60.0)  # stops on the beats
    _motion(gen / "mHO2.npy", stop_dance([t + 0.05 for t in R], DUR, 60.0), 60.0)  # 0.05 s late
    out = tmp_path / "beats.json"
    r = _run("beats", gen, "-r", ref, "--kind", "motion", "--metric", "all", "--per-pair", "--json", out)
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    assert res["metrics"] == ["loris", "tolerance", "bas-bailando", "bas-aist", "d2m"]
    assert sorted(fake_music_beats) == [80.0, 120.0]  # the AIST names' tempi reach beat_track
    by = res["by_metric"]
    # BAS as hand-computed in test_bas_of_a_pose_by_hand, then mean and sample SD of two pairs
    assert by["bas-bailando"]["BAS"] == pytest.approx((1 + E_HALF) / 2, rel=1e-9)
    assert by["bas-bailando"]["BAS_SD"] == pytest.approx((1 - E_HALF) / math.sqrt(2), rel=1e-9)
    assert by["bas-aist"]["BAS"] == pytest.approx((math.exp(-1 / 18) + math.exp(-8 / 9)) / 2, rel=1e-9)
    # the top-level figures are loris's (the primary); d2m shares its counts
    assert (res["BCS"], res["BHS"], res["method"]) == (by["loris"]["BCS"], by["loris"]["BHS"], "bins-1s")
    for p in res["pairs"]:
        lo, d2 = p["metrics"]["loris"], p["metrics"]["d2m"]
        assert d2["BHS"] == lo["BHS"] and d2["BCS"] == pytest.approx(100 * lo["n_generated"] / lo["n_reference"])
    assert "Beat metrics side by side" in r.output and "bas-aist" in r.output
    # BAS on generated music is refused in one line; an unknown name is a usage error
    r = _run("beats", ref, "-r", ref, "--metric", "bas-aist")
    assert r.exit_code == 1 and r.output.startswith("error: bas-aist") and len(r.output.strip().splitlines()) == 1
    r = _run("beats", ref, "-r", ref, "--metric", "loris,nope")
    assert r.exit_code == 2 and "unknown beat metric 'nope'" in r.output


def test_cli_all_reports_the_metrics_side_by_side(tmp_path, fake_music_beats):
    import soundfile as sf

    ref, ours = tmp_path / "ref", tmp_path / "runs" / "ours"
    ref.mkdir(), ours.mkdir(parents=True)
    sf.write(str(ref / "mBR0.wav"), clicks(R, DUR), 16000, subtype="FLOAT")
    _motion(ours / "mBR0_dance_s0_0.npy", stop_dance(R, DUR, 60.0), 60.0)
    out, md = tmp_path / "all.json", tmp_path / "all.md"
    r = _run("all", tmp_path / "runs", "-r", ref, "--metric", "loris,bas-aist,d2m", "--json", out, "--markdown", md)
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    (m,) = res["methods"]
    assert res["beats_metrics"] == ["loris", "bas-aist", "d2m"]
    side = m["beats_by_metric"]["music2motion"]
    assert list(side) == ["loris", "bas-aist", "d2m"] and side["bas-aist"]["BAS"] == pytest.approx(math.exp(-1 / 18))
    assert m["music2motion"]["BCS"] == side["loris"]["BCS"]  # the paper-style columns: loris
    text = md.read_text()
    assert "### Music-to-motion beats by metric (generated motion)" in text
    assert "| Method | metric | BCS | CSD | BHS | HSD | F1 | BAS | BAS SD | n |" in text
    assert "| ours | bas-aist | – | – | – | – | – | 0.946 | n/a | 1 |" in text
    assert "| ours | loris (bins-1s) |" in text and "| ours | d2m (bins-1s) |" in text
