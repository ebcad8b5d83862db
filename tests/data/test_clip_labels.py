"""A clip's stored beat labels are what the evaluator computes on that clip alone.

Both detectors scale their envelope over what they are given, so onsets detected over a
whole song and then cut lose the quiet parts' onsets; the shards store per-clip labels,
equal to `momu-eval`'s (heldout_clips reads the shards as `momu-eval heldout` does and
detects with music_beats / motion_beats)."""

import json

import numpy as np
import pytest
import soundfile as sf
from media import click_track, make_coco_item
from typer.testing import CliRunner

from momu_data import features
from momu_data.cli.data import app
from momu_data.timebase import HOP, SR

runner = CliRunner()
CLIP = 3.0


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("labels")
    src = root / "src"
    for k in range(2):
        make_coco_item(src, f"d{k}", seconds=9.0, bpm=100 + 20 * k, seed=k)
    # A dynamic song: clicks over silence for one clip, then softer clicks over a noise floor.
    y, _ = click_track(9.0, 100, SR, offset=0.0)
    n = int(CLIP * SR)
    y[n:] = 0.25 * y[n:] + 0.02 * np.random.default_rng(0).standard_normal(y.size - n).astype(np.float32)
    sf.write(src / "d0.wav", y, SR)
    data, out = root / "data", root / "shards"
    args = ["extract", src, "--pose-source", "coco", "--audio", src, "--fps", "30", "--out", data]
    r = runner.invoke(app, [*map(str, args), "--clip-seconds", str(CLIP), "-j", "1"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["shard", str(data), "--out", str(out), "--split", "1/1/1", "--group-by", "clip"])
    assert r.exit_code == 0, r.output
    return data, out


def shard_beats(out) -> dict:
    import webdataset as wds

    tars = sorted(str(p) for p in out.glob("*/*.tar"))
    return {s["__key__"]: s["beats.json"] for s in wds.WebDataset(tars, shardshuffle=False).decode()}


def test_stored_beats_equal_the_evaluators_on_the_clip_alone(shards):
    from momu_models.evaluate.heldout import heldout_clips

    data, out = shards
    stored = shard_beats(out)
    evaluated = heldout_clips(out, splits=("train", "val", "test"))
    assert len(evaluated) == len(stored) == 6
    for c in evaluated:
        b = stored[c["key"]]
        assert b["onsets"] == c["onsets"].tolist(), c["key"]  # equal, not close
        assert b["kinematic"] == c["kin"].tolist(), c["key"]
    # The records hold the same labels (the shards copy them).
    rec = json.loads((data / "items" / "d1.json").read_text())
    for clip in rec["views"][0]["clips"]:
        assert clip["beats"] == stored[clip["key"]]


def test_quiet_clips_keep_their_onsets(shards):
    """What the whole-song detection lost: the quiet clips of d0 have their onsets."""
    data, out = shards
    stored = shard_beats(out)
    audio, _ = sf.read(data / "items" / "d0.flac", dtype="float32")
    whole = features.onsets(audio)
    clips = json.loads((data / "items" / "d0.json").read_text())["views"][0]["clips"]
    for clip in clips[1:]:  # the quiet clips
        s, e = clip["start"], clip["end"]
        cut = whole[(whole >= s / 62.5) & (whole < e / 62.5)]
        per_clip = stored[clip["key"]]["onsets"]
        assert len(cut) <= 1 and len(per_clip) >= 4, (cut, per_clip)  # 100 BPM: 5 clicks per 3 s (measured 4)
        np.testing.assert_array_equal(per_clip, features.onsets(audio[s * HOP : e * HOP]))
