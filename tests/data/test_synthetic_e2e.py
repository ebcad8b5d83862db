"""The embedded default end to end: synthetic videos -> real mediapipe extraction ->
shards, checked against the ground truth (keypoints and beats)."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from momu_data.cli.data import app
from momu_data.extract import load_item
from momu_data.synth.verify import evaluate_folder
from momu_models.evaluate.metrics.beats import tolerance_scores

runner = CliRunner()

pytestmark = pytest.mark.slow  # the real pose model over synthetic videos


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    r = runner.invoke(app, ["synth", "--n", "2", "--seconds", "5", "--out", str(root / "videos"), "--seed", "3"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app, ["extract", str(root / "videos"), "--out", str(root / "data"), "--clip-seconds", "2.5", "-j", "2"]
    )
    assert r.exit_code == 0, r.output
    return root


def test_one_worker_extracts_what_two_workers_do(synthetic, tmp_path):
    """-j 1 runs in this process with its libraries' thread defaults, -j 2 in workers with a
    core each (momu_data.parallel): the same arrays and records. BLAS runs with 2 threads
    here, as on a 2-core machine without OMP_NUM_THREADS (conftest sets it to 1): its float32
    sums differ in the last bit from 1 thread's unless extraction keeps BLAS to one."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=2, user_api="blas"):
        r = runner.invoke(
            app, ["extract", str(synthetic / "videos"), "--out", str(tmp_path), "--clip-seconds", "2.5", "-j", "1"]
        )
    assert r.exit_code == 0, r.output
    for v in pq.read_table(synthetic / "data" / "videos.parquet").to_pylist():
        one, two = load_item(tmp_path, v["id"]), load_item(synthetic / "data", v["id"])
        assert one.keys() == two.keys()
        for k in one:
            np.testing.assert_array_equal(one[k], two[k], err_msg=f"{v['id']}: {k}")
        recs = [json.loads((d / "items" / f"{v['id']}.json").read_text()) for d in (tmp_path, synthetic / "data")]
        assert recs[0]["views"] == recs[1]["views"]


def test_extracted_keypoints_match_ground_truth(synthetic):
    res = evaluate_folder(synthetic / "videos", synthetic / "data")
    assert len(res["videos"]) == 2
    assert res["mean"]["person_frac"] == 1.0
    # measured 0.98-1.0 / 0.997-1.0 on synthetic videos (docs/synth.md)
    assert res["mean"]["pck@0.1"] >= 0.9 and res["mean"]["pck@0.2"] >= 0.97


def test_kinematic_beats_and_onsets_match_ground_truth_beats(synthetic):
    videos = pq.read_table(synthetic / "data" / "videos.parquet").to_pylist()
    assert [v["status"] for v in videos] == ["ok", "ok"]
    for v in videos:
        f = load_item(synthetic / "data", v["id"])
        rec = json.loads((synthetic / "data" / "items" / f"{v['id']}.json").read_text())["views"][0]
        gt = json.loads((synthetic / "videos" / f"{v['id']}.gt.json").read_text())
        beats = np.asarray(gt["beats"]) - rec["t0"]
        dur = f["pose"].shape[0] / 62.5
        kin = tolerance_scores(f["kin_beats"], beats, dur, 0.1)
        assert kin.bcs >= 0.8 and kin.bhs >= 0.8, (v["id"], kin)
        ons = tolerance_scores(f["onsets"], beats, dur, 0.1)
        assert ons.bhs >= 0.9, (v["id"], ons)  # every beat has an onset; off-beat hats lower precision


def test_shards_from_synthetic_data(synthetic, tmp_path):
    r = runner.invoke(app, ["shard", str(synthetic / "data"), "--out", str(tmp_path / "shards"), "--split", "50/50/0"])
    assert r.exit_code == 0, r.output
    man = pq.read_table(tmp_path / "shards" / "manifest.parquet").to_pylist()
    assert len(man) == 4 and {m["split"] for m in man} == {"train", "val"}
    assert all(m["frames"] == 156 for m in man)  # 2.5 s clips: round(2.5 * 62.5) = 156 frames
    r = runner.invoke(app, ["inspect", str(tmp_path / "shards"), "--plot", str(tmp_path / "clip.png")])
    assert r.exit_code == 0 and (tmp_path / "clip.png").stat().st_size > 10_000
