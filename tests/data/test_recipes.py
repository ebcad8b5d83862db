"""Dataset recipes (pipelines/*.toml via momu_data.recipes) end to end on stand-ins the tests
make: a fake AIST++ tree (keypoints2d pickles + wav), fake Dance-with-Melody folders (mocap
JSON + mp3) and a tiny synthetic demo; plus the Dance-with-Melody importer and its clock fit."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from media import COCO_BASE, ROOT, SHARED_DATA, click_track
from typer.testing import CliRunner

from momu_data.cli.data import app
from momu_data.pose.importers import dance_with_melody as dwm
from momu_data.pose.importers import find_keypoint_items, load_keypoints
from momu_data.recipes import (
    RecipeError,
    Runner,
    compare_manifests,
    is_excluded,
    load_recipe,
    parse_recipe,
    read_manifest_csv,
    run_recipe,
)
from momu_data.recipes import runner as runner_module
from momu_data.recipes.runner import command_module, error_reason, run_command
from momu_data.recipes.splits import assign as assign_split
from momu_data.recipes.splits import read_lists, sequence_name, video_name
from momu_data.skeleton import J

PIPELINES = ROOT / "pipelines"
SHARED_DWM = SHARED_DATA / "paired" / "dance_with_melody"


def needs_dwm(test):
    skip = pytest.mark.skipif(
        not SHARED_DWM.is_dir(), reason=f"Dance with Melody data not present ({SHARED_DWM}); see shared/data/README.md"
    )
    return pytest.mark.shared(skip(test))


def statuses(results) -> dict:
    return {r.name: r.status for r in results}


# The aistpp and demo recipes train a VAE and both diffusion models, only with --train.
TRAIN_OFF = {"train-vae": "disabled", "train-motion2music": "disabled", "train-music2motion": "disabled"}


def quiet(msg):  # the runner's log goes nowhere in tests
    pass


def run_eval_in_process(monkeypatch, commands=("momu-eval",)) -> list:
    """Run the recipe stages' `momu-eval` (and `momu-train`, if in `commands`) in this process,
    through the same CLI and error path (a subprocess costs about 4 s of imports per command;
    test_demo_recipe_tiny_end_to_end runs its first report in the real subprocess, and
    test_train_stage_runs_momu_train_with_a_config_file the runner's momu-train subprocess).
    Returns the argument lists they get."""
    from momu_models.cli.eval import app as eval_app
    from momu_models.cli.train import app as train_app

    apps = {"momu-eval": eval_app, "momu-train": train_app}
    real, calls = runner_module.run_command, []

    def run_command(command, args, capture=True, stream=False):
        if command not in commands:
            return real(command, args, capture, stream)
        calls.append(list(args))
        res = CliRunner().invoke(apps[command], [str(a) for a in args])
        if res.exit_code != 0:
            raise runner_module.CommandError(command, args, error_reason(res.output.splitlines(), res.exit_code))

    monkeypatch.setattr(runner_module, "run_command", run_command)
    return calls


@pytest.fixture
def eval_in_process(monkeypatch):
    return run_eval_in_process(monkeypatch)


# --------------------------------------------------------------------------- recipes


def test_every_pipeline_parses_with_its_documented_choices():
    recs = {p.stem: load_recipe(p) for p in sorted(PIPELINES.glob("*.toml"))}
    assert set(recs) == {"demo", "aistpp", "dance_with_melody", "videos"}
    a = recs["aistpp"]
    assert (a["pose"]["source"], a["audio"]["path"], a["split"]["group_by"], a["labels"]["from_names"]) == (
        "aistpp",
        "wav",
        "music",
        "aist",
    )
    assert a["source"]["url"].startswith("https://") and a["source"]["exclude_list"] == "ignore_list.txt"
    d = recs["dance_with_melody"]
    assert (d["pose"]["source"], d["split"]["group_by"], d["manifest"]["label"]) == (
        "dance_with_melody",
        "music",
        "style",
    )
    assert d["manifest"]["checksums"] and d["report"]["compare"][0] == "pose.time_scale=fit"
    assert [(t["model"], t.get("task")) for t in recs["aistpp"]["train"]] == [
        ("vae", None),
        ("diffusion", "motion2music"),
        ("diffusion", "music2motion"),
    ]
    assert [t.get("preset") for t in recs["aistpp"]["train"]] == ["paper"] * 3


def test_demo_recipe_is_the_make_demo_pipeline():
    """make demo: synth --n 20 --seconds 12 --seed 0 -> extract --clip-seconds 6 --dataset
    synthetic -> shard --split 80/10/10 into work/demo/{videos,data,shards}."""
    from momu_data.extract import ExtractConfig
    from momu_data.shards import parse_split

    rec = load_recipe(PIPELINES / "demo.toml")
    assert rec["synth"] == {"n": 20, "seconds": 12.0, "seed": 0}
    assert rec["recipe"]["dataset"] == "synthetic" and rec["recipe"]["out"] == "work/demo"
    r = Runner(rec, log=quiet)
    assert (r.source, r.data, r.shards) == (Path("work/demo/videos"), Path("work/demo/data"), Path("work/demo/shards"))
    # The same extraction settings as the CLI with --clip-seconds 6 (so both resume each other).
    assert r.extract_config(rec).digest() == ExtractConfig(clip_seconds=6.0).digest()
    assert parse_split(rec["split"]["ratios"]) == parse_split("80/10/10") and rec["split"]["group_by"] == "video"
    assert rec["shards"]["size"] == 1000 and rec["split"]["seed"] == 0
    # The training of the demo recipe: VAE 300 + 800 steps (the motion VAE needs the longer
    # run to keep kinematic beats), then both diffusion models 400 steps on 4 s crops, in
    # OUT/runs/{vae,motion2music,music2motion} for momu-generate.
    vae, m2m, m2d = rec["train"]
    assert (vae["preset"], vae["music_steps"], vae["motion_steps"]) == ("small", 300, 800)
    assert [(t["task"], t["steps"], t["crop_seconds"]) for t in (m2m, m2d)] == [
        ("motion2music", 400, 4.0),
        ("music2motion", 400, 4.0),
    ]
    assert [r.train_dir(t) for t in rec["train"]] == [
        Path("work/demo/runs") / n for n in ("vae", "motion2music", "music2motion")
    ]
    assert r.vae_dir(m2m) == Path("work/demo/runs/vae")


def test_recipe_errors_and_overrides(tmp_path):
    base = {"recipe": {"name": "x"}, "source": {"path": str(tmp_path)}}
    with pytest.raises(RecipeError, match=r"\[clips\]: unknown key\(s\) second"):
        parse_recipe({**base, "clips": {"second": 3}})
    with pytest.raises(RecipeError, match=r"\[clips\] seconds = 'a': expected float"):
        parse_recipe({**base, "clips": {"seconds": "a"}})
    with pytest.raises(RecipeError, match="unknown section"):
        parse_recipe({**base, "clip": {}})
    with pytest.raises(RecipeError, match="group_by must be one of"):
        parse_recipe({**base, "split": {"group_by": "genre"}})
    with pytest.raises(RecipeError, match="name is required"):
        parse_recipe({"source": {"path": "x"}})
    with pytest.raises(RecipeError, match="model must be one of vae, diffusion"):
        parse_recipe({**base, "train": [{"model": "dit"}]})
    with pytest.raises(RecipeError, match="share a run folder"):
        parse_recipe(
            {
                **base,
                "train": [
                    {"model": "diffusion", "task": "music2motion"},
                    {"model": "diffusion", "task": "music2motion"},
                ],
            }
        )
    r = Runner(
        parse_recipe({**base, "train": [{"model": "diffusion", "task": "music2motion"}]}), out=tmp_path, log=quiet
    )
    assert r.train_dir(r.recipe["train"][0]) == tmp_path / "runs" / "music2motion"
    with pytest.raises(RecipeError, match="needs a BiCoR-VAE"):
        r.vae_dir(r.recipe["train"][0])
    rec = parse_recipe(
        {**base, "train": [{"model": "vae", "preset": "small"}]},
        overrides=[
            "clips.seconds=3",
            'split.ratios="1/1/0"',
            "pose.cameras=c01",
            "train.0.preset=tiny",
            'report.compare=["pose.time_scale=fit"]',
        ],
    )
    assert rec["clips"]["seconds"] == 3.0 and isinstance(rec["clips"]["seconds"], float)
    assert (
        rec["split"]["ratios"] == "1/1/0" and rec["pose"]["cameras"] == "c01" and rec["train"][0]["preset"] == "tiny"
    )
    assert rec.with_overrides(["clips.hop=1.5"])["clips"]["hop"] == 1.5 and rec["clips"]["hop"] is None
    with pytest.raises(RecipeError, match="SECTION.KEY=VALUE"):
        parse_recipe(base, overrides=["clips"])
    with pytest.raises(RecipeError, match="no data"):
        Runner(parse_recipe({"recipe": {"name": "x"}}), log=quiet)


# A stand-in for `momu-train MODEL SHARDS --config FILE --run-dir DIR [--resume]`: it checks the
# settings file as momu-train does (unknown fields: exit 2 with a one-line error), prints
# progress on stderr, logs its call and writes a finished run (model + config.json with "val").
FAKE_TRAIN = """
import json, os, sys
from pathlib import Path

model, shards, *rest = sys.argv[1:]
opts = {rest[i]: rest[i + 1] for i in range(len(rest) - 1) if rest[i] in ("--config", "--run-dir")}
cfg = json.loads(Path(opts["--config"]).read_text())
with open(os.environ["FAKE_TRAIN_LOG"], "a") as f:
    f.write(json.dumps({"model": model, "shards": shards, "run_dir": opts["--run-dir"], "config": cfg,
                        "resume": "--resume" in rest}) + "\\n")
known = ["batch_size", "preset", "steps", "task", "vae"]
bad = sorted(set(cfg) - set(known))
if bad:
    print(f"error: unknown setting(s) {', '.join(bad)}; known: {', '.join(known)}", file=sys.stderr)
    sys.exit(2)
run = Path(opts["--run-dir"])
run.mkdir(parents=True, exist_ok=True)
print(f"fake {model}: step 1 of 1", file=sys.stderr)
if os.environ.get("FAKE_TRAIN_CRASH") and "--resume" not in rest:
    print("Traceback: killed", file=sys.stderr)
    sys.exit(1)
(run / "model.safetensors").write_bytes(b"weights")
(run / "config.json").write_text(json.dumps({"val": {"loss": 0.25, "split_is_val": True}}))
"""


@pytest.fixture
def fake_train(tmp_path, monkeypatch):
    """Route the runner's `momu-train` to FAKE_TRAIN; returns a function listing its calls."""
    (tmp_path / "fake_momu_train.py").write_text(FAKE_TRAIN)
    calls = tmp_path / "train_calls.jsonl"
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("FAKE_TRAIN_LOG", str(calls))
    real = runner_module.command_module
    monkeypatch.setattr(runner_module, "command_module", lambda c: "fake_momu_train" if c == "momu-train" else real(c))
    return lambda: [json.loads(x) for x in calls.read_text().splitlines()] if calls.exists() else []


def test_train_stage_runs_momu_train_with_a_config_file(tmp_path, fake_train, monkeypatch, capfd):
    train = [
        {"model": "vae", "preset": "tiny", "steps": 3},
        {"model": "diffusion", "task": "music2motion", "steps": 2},
    ]
    out = tmp_path / "out"
    r = Runner(
        parse_recipe({"recipe": {"name": "x"}, "source": {"path": str(tmp_path)}, "train": train}),
        out=out,
        train=True,
        log=quiet,
    )
    stages = {s.name: s for s in r.stages()}
    res = stages["train-vae"].run({})
    assert res == {"summary": "loss 0.2500 split_is_val 1.0000", "metrics": {"loss": 0.25, "split_is_val": True}}
    assert "fake vae: step 1 of 1" in capfd.readouterr().err  # momu-train's progress reaches the user
    stages["train-music2motion"].run({})
    vae_call, dit_call = fake_train()
    assert vae_call == {
        "model": "vae",
        "shards": str(out / "shards"),
        "run_dir": str(out / "runs" / "vae"),
        "config": {"preset": "tiny", "steps": 3},
        "resume": False,
    }
    # A diffusion entry trains on the recipe's VAE run.
    assert dit_call["config"] == {"task": "music2motion", "steps": 2, "vae": str(out / "runs" / "vae")}
    assert dit_call["run_dir"] == str(out / "runs" / "music2motion")
    assert json.loads((out / ".stamps" / "train-vae.config.json").read_text()) == {"preset": "tiny", "steps": 3}

    # An unknown setting: momu-train's own one-line reason, as a RecipeError naming the entry.
    bad = Runner(
        parse_recipe(
            {
                "recipe": {"name": "x"},
                "source": {"path": str(tmp_path)},
                "train": [{"model": "vae", "stepz": 3, "run_dir": "runs/bad"}],
            }
        ),
        out=out,
        train=True,
        log=quiet,
    )
    with pytest.raises(RecipeError, match=r"^\[\[train\]\] model vae: unknown setting\(s\) stepz; known: batch_size"):
        bad.stages()[-1].run({})

    # An interrupted run of the same inputs and settings is resumed, not refused.
    monkeypatch.setenv("FAKE_TRAIN_CRASH", "1")
    again = Runner(
        parse_recipe(
            {
                "recipe": {"name": "x"},
                "source": {"path": str(tmp_path)},
                "train": [{"model": "vae", "run_dir": "runs/crash"}],
            }
        ),
        out=out,
        train=True,
        log=quiet,
    )
    with pytest.raises(RecipeError, match=r"model vae: Traceback: killed"):
        again.stages()[-1].run({})
    assert again.stages()[-1].run({})["metrics"]["loss"] == 0.25
    assert [c["resume"] for c in fake_train()[-2:]] == [False, True]
    # ... while a run folder left by other settings is not touched.
    other = Runner(
        parse_recipe(
            {
                "recipe": {"name": "x"},
                "source": {"path": str(tmp_path)},
                "train": [{"model": "vae", "steps": 9, "run_dir": "runs/crash"}],
            }
        ),
        out=out,
        train=True,
        log=quiet,
    )
    with pytest.raises(RecipeError, match="holds a run of other inputs or settings"):
        other.stages()[-1].run({})


def test_command_errors_keep_the_commands_own_reason():
    assert error_reason(["step 3", "error: no shards in x/train"], 2) == "no shards in x/train"
    # typer's usage errors come in a rich panel: its text, not its frame
    panel = [
        "Usage: python -m momu_models.cli.train vae [OPTIONS] [SHARDS]",
        "╭─ Error ──────╮",
        "│ No such option: --config │",
        "╰──────────────╯",
    ]
    assert error_reason(panel, 2) == "No such option: --config"
    assert error_reason([], 137) == "exit status 137"
    # The model package's commands are found by name (pyproject's console scripts).
    assert command_module("momu-train").endswith("cli.train") and command_module("momu-eval").endswith("cli.eval")
    with pytest.raises(RecipeError, match="momu-nothing is not installed"):
        run_command("momu-nothing", ["x"])


def test_exclusion_names_sequences_not_views():
    names = {"gBR_sBM_cAll_d04_mBR0_ch01", "other"}
    assert is_excluded("gBR_sBM_c03_d04_mBR0_ch01", names) and is_excluded("other", names)
    assert not is_excluded("gBR_sBM_c03_d04_mBR0_ch02", names)


# ------------------------------------------------------------------------ fake AIST++


def write_aist_seq(path: Path, seconds: float, bpm: float, cameras: int = 2, seed: int = 0):
    """An AIST++ keypoints2d pickle: a figure whose wrists reverse on every beat, seen by
    `cameras` cameras (shifted copies), 60 fps with microsecond timestamps."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 60)
    t = np.arange(n) / 60
    tri = np.abs(((t / (60 / bpm)) % 2) - 1)
    kp = np.zeros((cameras, n, 17, 3), np.float32)
    for c in range(cameras):
        xy = COCO_BASE[None] + rng.normal(0, 0.3, (n, 17, 2)) + [300 * c, 100]
        xy[:, [9, 10], 1] -= 60 * tri[:, None]
        kp[c, :, :, :2] = xy
        kp[c, :, :, 2] = 0.9
    data = {
        "keypoints2d": kp,
        "det_scores": np.full((cameras, n), 0.9, np.float32),
        "timestamps": (t * 1e6).round().astype(np.int64),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:  # writing a fixture; reading goes through safe_pickle
        pickle.dump(data, f, protocol=4)


AIST_SEQS = {  # sequence -> bpm of its music
    "gBR_sBM_cAll_d04_mBR0_ch01": 100,
    "gBR_sBM_cAll_d05_mBR0_ch02": 100,
    "gPO_sBM_cAll_d10_mPO1_ch03": 120,
    "gHO_sBM_cAll_d12_mHO2_ch04": 110,
    "gBR_sBM_cAll_d06_mBR1_ch05": 90,  # listed in ignore_list.txt
}


@pytest.fixture(scope="module")
def aist_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("aistpp")
    for k, (name, bpm) in enumerate(AIST_SEQS.items()):
        write_aist_seq(root / "keypoints2d" / f"{name}.pkl", 4.0, bpm, seed=k)
    for music, bpm in {"mBR0": 100, "mPO1": 120, "mHO2": 110, "mBR1": 90}.items():
        y, _ = click_track(4.5, bpm, 16000, offset=0.0)
        (root / "wav").mkdir(exist_ok=True)
        sf.write(root / "wav" / f"{music}.wav", y, 16000)
    (root / "ignore_list.txt").write_text("# sequences AIST++ marks unusable\ngBR_sBM_cAll_d06_mBR1_ch05\n")
    return root


AIST_SET = ["clips.seconds=2.0", "run.jobs=1"]


@pytest.mark.slow
def test_aistpp_recipe_manifest_grouping_and_up_to_date(aist_tree, tmp_path, eval_in_process):
    out = tmp_path / "out"
    res = run_recipe(PIPELINES / "aistpp.toml", out=out, source=aist_tree, overrides=AIST_SET, log=quiet)
    assert statuses(res) == {"extract": "ran", "shard": "ran", "manifest": "ran", "report": "ran", **TRAIN_OFF}
    (report_args,) = eval_in_process  # the report stage's one momu-eval call
    assert report_args[:4] == ["ceiling", str(out / "data"), "--name", "as built"] and "--label" in report_args
    rows = read_manifest_csv(out / "manifest.csv")
    kept = [n for n in AIST_SEQS if "mBR1" not in n]
    # Both cameras of each kept sequence are items; the ignored sequence is not there at all.
    assert sorted(r["id"] for r in rows) == sorted(f"{n}_{c}" for n in kept for c in ("c01", "c02"))
    r0 = next(r for r in rows if r["id"] == "gBR_sBM_cAll_d05_mBR0_ch02_c02")
    assert (r0["genre"], r0["dancer"], r0["music"], r0["choreo"], r0["label"], r0["view"]) == (
        "gBR",
        "d05",
        "mBR0",
        "ch02",
        "gBR",
        "c02",
    )
    assert r0["source"] == "keypoints2d/gBR_sBM_cAll_d05_mBR0_ch02.pkl" and r0["audio"] == "wav/mBR0.wav"
    assert float(r0["duration"]) == pytest.approx(4.0, abs=0.05) and r0["clips_ok"] == "2"
    # Grouped by music: one song, one split; three songs fill the three splits.
    split_of = {}
    for r in rows:
        assert split_of.setdefault(r["music"], r["split"]) == r["split"]
    assert sorted(split_of.values()) == ["test", "train", "val"]
    man = pq.read_table(out / "shards" / "manifest.parquet").to_pylist()
    assert {m["video"]: m["split"] for m in man} == {r["id"]: r["split"] for r in rows}
    beats = json.loads((out / "reports" / "beats.json").read_text())["results"][0]
    assert beats["n_clips"] == 16 and beats["overall"]["n"] == 16 and set(beats["by_label"]) == {"gBR", "gPO", "gHO"}
    assert beats["overall"]["BHS"] > 80  # wrists reverse on the clicks: real pairs agree

    # A rerun finds everything up to date.
    res = run_recipe(PIPELINES / "aistpp.toml", out=out, source=aist_tree, overrides=AIST_SET, log=quiet)
    assert set(statuses(res).values()) == {"skipped", "disabled"}
    # Another split seed: extraction and report are kept, the shards and manifest redone.
    res = run_recipe(
        PIPELINES / "aistpp.toml", out=out, source=aist_tree, overrides=[*AIST_SET, "split.seed=5"], log=quiet
    )
    assert statuses(res) == {"extract": "skipped", "shard": "ran", "manifest": "ran", "report": "skipped", **TRAIN_OFF}

    # One changed input: only it is extracted again; a removed input leaves the data.
    items = out / "data" / "items"
    before = {p.name: p.stat().st_mtime_ns for p in items.glob("*.json")}
    write_aist_seq(aist_tree / "keypoints2d" / "gPO_sBM_cAll_d10_mPO1_ch03.pkl", 4.0, 120, seed=99)
    (aist_tree / "keypoints2d" / "gHO_sBM_cAll_d12_mHO2_ch04.pkl").rename(tmp_path / "moved.pkl")
    logs = []
    res = run_recipe(PIPELINES / "aistpp.toml", out=out, source=aist_tree, overrides=AIST_SET, log=logs.append)
    assert statuses(res)["extract"] == "ran" and statuses(res)["shard"] == "ran"
    assert "  2 of 3 inputs up to date, extracting 1" in logs
    after = {p.name: p.stat().st_mtime_ns for p in items.glob("*.json")}
    assert "gHO_sBM_cAll_d12_mHO2_ch04.json" not in after and not list(items.glob("gHO_*"))
    assert after["gBR_sBM_cAll_d04_mBR0_ch01.json"] == before["gBR_sBM_cAll_d04_mBR0_ch01.json"]
    assert after["gPO_sBM_cAll_d10_mPO1_ch03.json"] != before["gPO_sBM_cAll_d10_mPO1_ch03.json"]
    assert {r["music"] for r in read_manifest_csv(out / "manifest.csv")} == {"mBR0", "mPO1"}
    (tmp_path / "moved.pkl").rename(aist_tree / "keypoints2d" / "gHO_sBM_cAll_d12_mHO2_ch04.pkl")

    # Deleted outputs are rebuilt even though the inputs did not change.
    import shutil

    shutil.rmtree(out / "shards")
    res = run_recipe(PIPELINES / "aistpp.toml", out=out, source=aist_tree, overrides=AIST_SET, log=quiet)
    assert statuses(res)["shard"] == "ran" and (out / "shards" / "train.wids.json").exists()


def test_aistpp_recipe_one_camera_from_the_cli(aist_tree, tmp_path, monkeypatch):
    out = tmp_path / "out"
    r = CliRunner().invoke(
        app,
        [
            "run",
            str(PIPELINES / "aistpp.toml"),
            "--source",
            str(aist_tree),
            "--out",
            str(out),
            "--set",
            "pose.cameras=c01",
            "--set",
            "clips.seconds=2.0",
            "--set",
            "report.beats=false",
            "-j",
            "1",
        ],
    )
    assert r.exit_code == 0, r.output + str(r.exception)
    rows = read_manifest_csv(out / "manifest.csv")
    assert len(rows) == 4 and {x["view"] for x in rows} == {"c01"}
    assert "train-vae" in r.output and "disabled" in r.output
    r = CliRunner().invoke(
        app,
        [
            "run",
            str(PIPELINES / "aistpp.toml"),
            "--source",
            str(aist_tree),
            "--out",
            str(out),
            "--set",
            "pose.cameras=c01",
            "--set",
            "clips.seconds=3.0",
            "--set",
            "report.beats=false",
            "--dry-run",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "would run" in r.output and "pending" in r.output
    assert json.loads((out / ".stamps" / "extract.json").read_text())["settings"]["dataset"] == "aistpp"
    r = CliRunner().invoke(
        app, ["run", str(PIPELINES / "aistpp.toml"), "--out", str(out), "--source", str(aist_tree / "nope")]
    )
    assert r.exit_code == 2 and "no such input" in r.output
    # Training runs only with --train, and its settings are checked against the trainer's: the
    # real momu-train command, in this process.
    run_eval_in_process(monkeypatch, commands=("momu-train",))
    r = CliRunner().invoke(
        app,
        [
            "run",
            str(PIPELINES / "aistpp.toml"),
            "--source",
            str(aist_tree),
            "--out",
            str(out),
            "--set",
            "pose.cameras=c01",
            "--set",
            "clips.seconds=2.0",
            "--set",
            "report.beats=false",
            "--set",
            "train.0.stepz=3",
            "--train",
        ],
    )
    assert r.exit_code == 2 and "[[train]] model vae: unknown setting(s) stepz" in r.output


# --------------------------------------------------------------- split protocols (AIST++)

SPLITS_DIR = ROOT / "manifests" / "splits"
LORIS_LISTS = {s: SPLITS_DIR / "loris" / f"dance_audio_s25_{s}_segment.txt" for s in ("train", "test")}
CM_LISTS = {s: SPLITS_DIR / "aistpp_crossmodal" / f"{s}.txt" for s in ("crossmodal_train", "crossmodal_test")}


def names_in(path: Path) -> set[str]:
    return {Path(line.strip()).name.removesuffix(".wav") for line in path.read_text().splitlines() if line.strip()}


def test_split_protocols_resolve_lists_and_clip_length(tmp_path):
    """Which lists and clip length each [split] protocol of aistpp.toml brings (no extraction)."""

    def runner(*sets):
        return Runner(load_recipe(PIPELINES / "aistpp.toml", list(sets)), source=tmp_path, log=quiet)

    for proto, seconds in (("", 10.0), ("random", 25.0), ("loris", 25.0), ("crossmodal", 10.0)):
        r = runner(f'split.protocol="{proto}"')
        assert r.clip_seconds(r.recipe) == seconds and r.extract_config(r.recipe).clip_seconds == seconds
        r = runner(f'split.protocol="{proto}"', "clips.seconds=4")
        assert r.extract_config(r.recipe).clip_seconds == 4.0  # a length the recipe sets wins
    loris = runner("split.protocol=loris").split_lists()
    assert (len(loris["train"]), len(loris["test"])) == (1692, 189)  # LORIS's AIST++ segments
    assert "gKR_sFM_c09_d28_mKR1_ch02" in loris["test"]  # names without folder and .wav
    cm = runner("split.protocol=crossmodal").split_lists()
    assert (len(cm["train"]), len(cm["val"]), len(cm["test"]), len(cm["ignore"])) == (980, 0, 20, 45)
    assert runner().split_lists() is None and runner("split.protocol=random").split_lists() is None
    # LORIS's other subsets: floor exercise and figure skating, 25 s and 50 s
    r = runner("split.protocol=loris", "split.subset=fe_s50")
    fe = r.split_lists()
    assert (len(fe["train"]), len(fe["test"]), r.clip_seconds(r.recipe)) == (594, 66, 50.0)
    assert "xHBUIt-airA_003193_003315_seg0" in fe["test"]
    rows = [{"key": f"{v}-0000", "video": v, "job": v, "frame_start": 0} for v in sorted(fe["test"])[:3]]
    assert set(assign_split("loris", rows, fe)[0].values()) <= {"val", "test"}  # ids are LORIS's names
    with pytest.raises(RecipeError, match="subset must be one of dance_s25, fe_s25, fe_s50, fs_s25, fs_s50"):
        runner("split.subset=fs_s10")
    with pytest.raises(RecipeError, match='protocol must be "" .* "random", "loris", "crossmodal"'):
        runner("split.protocol=edge")
    r = runner("split.protocol=loris", f'split.lists="{tmp_path}"')
    with pytest.raises(RecipeError, match=r"list file .*dance_audio_s25_train_segment.txt not found"):
        r.split_lists()


def test_loris_and_crossmodal_assignment_on_the_shipped_lists():
    """`assign` on clip rows for every view of both lists' sequences (two clips each)."""
    loris_train, loris_test = names_in(LORIS_LISTS["train"]), names_in(LORIS_LISTS["test"])
    cm_train, cm_test = names_in(CM_LISTS["crossmodal_train"]), names_in(CM_LISTS["crossmodal_test"])
    ignored = names_in(SPLITS_DIR / "aistpp_crossmodal" / "ignore_list.txt")
    seqs = {sequence_name(v) for v in loris_train | loris_test} | cm_train | cm_test
    rows = [
        {"key": f"{s}_c{c:02d}-{k:04d}", "video": f"{s}_c{c:02d}", "job": s, "frame_start": 625 * k, "status": "ok"}
        for s in sorted(seqs)
        for c in range(1, 10)
        for k in (1, 0)  # the later clip first: the earliest is chosen, not the first row
    ]
    lists = read_lists("loris", SPLITS_DIR / "loris")
    split_of, report = assign_split("loris", rows, lists, seed=0)
    assert report["missing"] == [] and report["clips"] == {"train": 1692, "val": 94, "test": 95}
    assert all(k.endswith("-0000") for k in split_of)  # one segment per view: its first clip
    view_split = {video_name(k.removesuffix("-0000")): s for k, s in split_of.items()}
    assert {v for v, s in view_split.items() if s == "train"} == loris_train
    assert {v for v, s in view_split.items() if s != "train"} == loris_test
    assert view_split["gBR_sFM_c01_d04_mBR4_ch07"] == "train"  # in AIST++'s ignore list, kept as LORIS does
    # LORIS splits views at random: cameras of one dance, and every song, are on both sides
    music = lambda split: {v.split("_")[4] for v, s in view_split.items() if s == split}  # noqa: E731
    assert music("test") <= music("train")
    assert split_of == assign_split("loris", rows, lists, seed=0)[0]
    other = assign_split("loris", rows, lists, seed=1)[0]
    assert {k for k, s in other.items() if s == "train"} == {k for k, s in split_of.items() if s == "train"}
    assert other != split_of  # the seed halves the test list differently

    lists = read_lists("crossmodal", SPLITS_DIR / "aistpp_crossmodal")
    split_of, report = assign_split("crossmodal", rows, lists)
    seq_split = {}
    for k, s in split_of.items():
        assert seq_split.setdefault(sequence_name(k.split("-")[0]), s) == s  # whole sequences
    assert {q for q, s in seq_split.items() if s == "train"} == cm_train - ignored
    assert {q for q, s in seq_split.items() if s == "test"} == cm_test - ignored
    assert not set(seq_split) & ignored and "val" not in seq_split.values()
    assert report["clips"]["train"] == 2 * 9 * len(cm_train - ignored)
    # no song in two splits (the cross-modal protocol's property)
    songs = {s: {q.split("_")[4] for q, x in seq_split.items() if x == s} for s in ("train", "test")}
    assert songs["train"] and songs["test"] and not songs["train"] & songs["test"]
    # rows of sequences outside the lists, and rejected clips, get no split
    extra = [{**rows[0], "key": "x", "job": "gBR_sBM_cAll_d99_mBR9_ch99", "video": "v"}]
    extra += [{**rows[1], "key": "y", "status": "rejected"}]
    assert "x" not in assign_split("crossmodal", extra, lists)[0] and "y" not in assign_split("loris", extra, lists)[0]


FAKE_PROTOCOL_SEQS = {  # sequence -> (music bpm, where the shipped lists put it)
    "gBR_sFM_cAll_d05_mBR1_ch08": 100,  # loris: c01 train, c02 test; crossmodal train
    "gJB_sFM_cAll_d08_mJB2_ch10": 110,  # loris: both cameras test (-> val / test); crossmodal train
    "gBR_sFM_cAll_d04_mBR4_ch07": 120,  # in AIST++'s ignore list; loris train, crossmodal train
    "gBR_sFM_cAll_d04_mBR1_ch02": 100,  # loris train, crossmodal train
    "gHO_sBM_cAll_d20_mHO5_ch02": 130,  # crossmodal test
}


@pytest.fixture(scope="module")
def protocol_tree(tmp_path_factory):
    """A fake AIST++ folder whose sequences are named as in the shipped split lists (2 cameras,
    2 s each), with AIST++'s own ignore_list.txt."""
    root = tmp_path_factory.mktemp("aistpp_protocols")
    for k, (name, bpm) in enumerate(FAKE_PROTOCOL_SEQS.items()):
        write_aist_seq(root / "keypoints2d" / f"{name}.pkl", 2.0, bpm, seed=k)
    (root / "wav").mkdir()
    for name, bpm in FAKE_PROTOCOL_SEQS.items():
        y, _ = click_track(2.5, bpm, 16000, offset=0.0)
        sf.write(root / "wav" / f"{name.split('_')[4]}.wav", y, 16000)
    (root / "ignore_list.txt").write_text((SPLITS_DIR / "aistpp_crossmodal" / "ignore_list.txt").read_text())
    return root


PROTOCOL_SET = ["clips.seconds=1.0", "report.beats=false", "run.jobs=1"]


def shard_splits(out: Path) -> dict[str, str]:
    return {m["key"]: m["split"] for m in pq.read_table(out / "shards" / "manifest.parquet").to_pylist()}


def test_aistpp_recipe_split_protocols_on_a_fake_tree(protocol_tree, tmp_path):
    ignored = "gBR_sFM_cAll_d04_mBR4_ch07"
    # loris: only its sequences are extracted, the ignored one included; one clip per listed view
    out = tmp_path / "loris"
    res = run_recipe(
        PIPELINES / "aistpp.toml",
        out=out,
        source=protocol_tree,
        overrides=[*PROTOCOL_SET, "split.protocol=loris"],
        log=quiet,
    )
    assert statuses(res)["shard"] == "ran", res
    items = {r["id"]: r["split"] for r in read_manifest_csv(out / "manifest.csv")}
    loris_seqs = [s for s in FAKE_PROTOCOL_SEQS if "_sFM_" in s]
    assert sorted(items) == sorted(f"{s}_c{c:02d}" for s in loris_seqs for c in (1, 2))
    got = shard_splits(out)
    assert sorted(got) == sorted(f"{v}-0000" for v in items)  # the first 1 s clip of each view
    loris_train = names_in(LORIS_LISTS["train"])
    for v, split in items.items():
        assert (split == "train") == (video_name(v) in loris_train), v
    assert items["gBR_sFM_cAll_d05_mBR1_ch08_c01"] == "train" and items["gBR_sFM_cAll_d05_mBR1_ch08_c02"] != "train"
    assert {items[f"gJB_sFM_cAll_d08_mJB2_ch10_c0{c}"] for c in (1, 2)} <= {"val", "test"}
    assert items[f"{ignored}_c01"] == "train"
    stamp = json.loads((out / ".stamps" / "shard.json").read_text())
    assert stamp["summary"].startswith("protocol loris")
    assert stamp["protocol"]["clips"] == {s: sum(x == s for x in items.values()) for s in ("train", "val", "test")}

    # crossmodal: whole sequences by its lists, the ignore list respected, no song in two splits
    out = tmp_path / "crossmodal"
    run_recipe(
        PIPELINES / "aistpp.toml",
        out=out,
        source=protocol_tree,
        overrides=[*PROTOCOL_SET, "split.protocol=crossmodal"],
        log=quiet,
    )
    rows = read_manifest_csv(out / "manifest.csv")
    seq_split = {}
    for r in rows:
        assert seq_split.setdefault(r["job"], r["split"]) == r["split"]
    assert seq_split == {
        "gBR_sFM_cAll_d05_mBR1_ch08": "train",
        "gJB_sFM_cAll_d08_mJB2_ch10": "train",
        "gBR_sFM_cAll_d04_mBR1_ch02": "train",
        "gHO_sBM_cAll_d20_mHO5_ch02": "test",
    }  # the ignored sequence is not extracted
    assert len(shard_splits(out)) == 4 * 2 * 2  # every 1 s clip of every view
    music = {s: {r["music"] for r in rows if r["split"] == s} for s in ("train", "test")}
    assert music == {"train": {"mBR1", "mJB2"}, "test": {"mHO5"}}

    # "" (music-grouped) and random (the paper's 90/5/5 over clips) share one extraction
    out = tmp_path / "random"
    run_recipe(PIPELINES / "aistpp.toml", out=out, source=protocol_tree, overrides=PROTOCOL_SET, log=quiet)
    rows = read_manifest_csv(out / "manifest.csv")
    assert ignored not in {r["job"] for r in rows} and len(rows) == 2 * (len(FAKE_PROTOCOL_SEQS) - 1)
    song_split = {}
    for r in rows:
        assert song_split.setdefault(r["music"], r["split"]) == r["split"]  # no song in two splits
    res = run_recipe(
        PIPELINES / "aistpp.toml",
        out=out,
        source=protocol_tree,
        overrides=[*PROTOCOL_SET, "split.protocol=random"],
        log=quiet,
    )
    assert statuses(res)["extract"] == "skipped" and statuses(res)["shard"] == "ran"
    got = shard_splits(out)
    assert len(got) == 4 * 2 * 2  # every clip, each in one split
    counts = {s: sum(v == s for v in got.values()) for s in ("train", "val", "test")}
    assert counts == {"train": 14, "val": 1, "test": 1}  # 90/5/5 of 16 clips
    stamp = json.loads((out / ".stamps" / "shard.json").read_text())
    assert "train 14 clips/14 groups" in stamp["summary"]  # each clip its own group


# -------------------------------------------------------------- fake Dance with Melody

# A standing figure facing +z with its right side at +x (as the real data: the toes point
# along cross(right - left, up)); cm, y up.
BASE23 = np.array(
    [
        [2, 73, 3],
        [-2, 73, 3],
        [0, 22, 0],
        [-18, 54, 0],
        [-30, 30, 0],
        [-32, 20, 3],
        [-33, 8, 6],
        [-9, 10, 0],
        [-10, -44, 2],
        [-10, -80, 0],
        [-10, -86, -4],
        [-10, -88, 12],
        [18, 54, 0],
        [30, 30, 0],
        [32, 20, 3],
        [33, 8, 6],
        [9, 10, 0],
        [10, -44, 2],
        [10, -80, 0],
        [10, -86, -4],
        [10, -88, 12],
        [34, 5, 10],
        [-34, 5, 10],
    ],
    float,
)


def fake_dance(seconds: float, beat: float, scale: float = 1.0, late: float = 0.0, start: int = 25, turn: float = 0.3):
    """Skeleton frames (25 fps) whose forearms reverse direction on every beat of a click
    track with period `beat` when frame t is put at music time (start + scale * t) / 25 -
    late. With the published clock (start + t) / 25 the motion thus runs `scale` times too
    fast and `late` seconds late, and the fit should find time_scale = scale and
    time_offset = late. The dancer turns at `turn` rad/s and travels a little."""
    L = int(seconds * 25)
    t_music = (start + scale * np.arange(L)) / 25 - late
    tri = np.abs(((t_music / beat) % 2) - 1)
    sk = np.repeat(BASE23[None], L, axis=0)
    for j in (4, 5, 6, 13, 14, 15, 21, 22):  # elbows, forearms, wrists, hand points
        sk[:, j, 1] += 25 * tri
    yaw = turn * np.arange(L) / 25
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    x, z = sk[..., 0].copy(), sk[..., 2].copy()
    sk[..., 0], sk[..., 2] = c * x + s * z, -s * x + c * z
    center = np.stack([100 + 20 * np.sin(np.arange(L) / 50), np.full(L, 95.0), 50 + np.arange(L) * 0.05], 1)
    return center, sk


def write_dwm(folder: Path, seconds: float, bpm: float, start: int = 25, audio_ext: str = "mp3", **kw) -> Path:
    center, sk = fake_dance(seconds, 60 / bpm, start=start, **kw)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "skeletons.json").write_text(
        json.dumps({"length": len(sk), "center": center.round(3).tolist(), "skeletons": sk.round(3).tolist()})
    )
    (folder / "config.json").write_text(json.dumps({"start_position": start, "end_position": start + len(sk) + 5}))
    y, _ = click_track(start / 25 + seconds + 1.0, bpm, 22050, offset=0.0)
    sf.write(folder / f"audio.{audio_ext}", y, 22050, format=audio_ext.upper())
    return folder


def test_dwm_views_mapping_and_labels(tmp_path):
    d = write_dwm(tmp_path / "DANCE_R_3", 3.0, 120)
    fixed, frontal = load_keypoints("dance_with_melody", d, views="both")
    raw = json.loads((d / "skeletons.json").read_text())
    world = np.asarray(raw["center"])[:, None] + np.asarray(raw["skeletons"])
    assert (fixed.view, frontal.view, fixed.source, fixed.width) == ("fixed", "frontal", "dance_with_melody", None)
    assert len(fixed) == 75 and fixed.person.all() and (fixed.conf == 1).all()
    # Fixed camera: (u, v) = (x, -y); the 14 joints per the mapping (nose = mid of the head points).
    np.testing.assert_allclose(
        fixed.xy[:, J["nose"]], np.stack([world[:, [0, 1], 0].mean(1), -world[:, [0, 1], 1].mean(1)], 1), atol=1e-3
    )
    for name, k in (("right_wrist", 15), ("left_ankle", 9), ("right_hip", 16), ("left_shoulder", 3)):
        np.testing.assert_allclose(fixed.xy[:, J[name]], np.stack([world[:, k, 0], -world[:, k, 1]], 1), atol=1e-3)
    np.testing.assert_allclose(
        fixed.xy[:, J["neck"]], np.stack([world[:, [3, 12], 0].mean(1), -world[:, [3, 12], 1].mean(1)], 1), atol=1e-3
    )
    # Frontal: the dancer turns, but always shows its right side on the image's left at full
    # shoulder width (36 cm), with heights as in the fixed view.
    rs, ls = frontal.xy[:, J["right_shoulder"]], frontal.xy[:, J["left_shoulder"]]
    np.testing.assert_allclose(ls[:, 0] - rs[:, 0], 36.0, atol=5e-3)  # JSON keeps 3 decimals
    np.testing.assert_allclose(frontal.xy[..., 1], fixed.xy[..., 1], atol=1e-4)
    assert (
        np.ptp(fixed.xy[:, J["left_shoulder"], 0] - fixed.xy[:, J["right_shoulder"], 0]) > 10
    )  # turning in the fixed view
    # Clock: frame t at a0 + (start + t) / 25 on the audio's clock (mp3 starts late: encoder delay).
    a0 = dwm.audio_start(d / "audio.mp3")
    assert 0.0 < a0 < 0.1
    np.testing.assert_allclose(fixed.times, a0 + (25 + np.arange(75)) / 25)
    assert fixed.meta["style"] == "rumba" and fixed.meta["dance"] == "R_3" and fixed.meta["music"] == "DANCE_R_3"
    assert fixed.meta["time_scale"] == 1.0 and fixed.meta["start_position"] == 25
    assert dwm.dance_labels("DANCE_W_12") == {"style": "waltz", "dance": "W_12"} and dwm.dance_labels("x") == {}
    # Finding dances, errors.
    assert find_keypoint_items("dance_with_melody", tmp_path) == [d]
    (d / "config.json").write_text("{}")
    from momu_data.media import MediaError

    with pytest.raises(MediaError, match="malformed"):
        dwm.read_dance(d)
    with pytest.raises(ValueError, match="views must be"):
        dwm.parse_views("top")
    with pytest.raises(ValueError, match="time_scale must be none, fit or a number"):
        dwm.load_dance_with_melody(d, time_scale="auto")


def test_dwm_time_scale_fit_recovers_the_stretch_and_refuses_noise(tmp_path):
    """Motion running 2 % fast (and 0.2 s late: the scale fit ignores phase) against a
    120 BPM click track."""
    center, sk = fake_dance(60.0, 0.5, scale=1.02, late=0.2, start=0, turn=0.2)
    dance = dwm.Dance("DANCE_W_1", center, sk, 0, len(sk))
    y, _ = click_track(62.0, 120, 16000, offset=0.0)
    fit = dwm.fit_time_scale(dance, y, 0.0)
    assert fit.accepted and fit.scale == pytest.approx(1.02, abs=0.002)
    assert fit.corr > 0.5 and fit.corr > fit.corr_at_1 + 0.2 and fit.z > 10
    # Music without a beat: the best scale is chance (this seed gives the highest chance
    # correlation of several tried), not accepted, the scale stays 1.
    noise = np.random.default_rng(0).normal(0, 0.1, 62 * 16000).astype(np.float32)
    fit = dwm.fit_time_scale(dance, noise, 0.0)
    assert not fit.accepted and fit.scale == 1.0 and fit.corr > 0.1 and fit.z < dwm.MIN_FIT_Z
    # Through the importer: the fitted clock and a manual offset.
    d = tmp_path / "DANCE_W_1"
    d.mkdir()
    (d / "skeletons.json").write_text(
        json.dumps({"length": len(sk), "center": center.tolist(), "skeletons": sk.tolist()})
    )
    (d / "config.json").write_text(json.dumps({"start_position": 0, "end_position": len(sk)}))
    sf.write(d / "audio.wav", y, 16000)
    (t,) = dwm.load_dance_with_melody(d, time_scale="fit", time_offset=0.2)
    assert t.meta["time_scale"] == pytest.approx(1.02, abs=0.002) and t.meta["time_scale_accepted"] == 1
    np.testing.assert_allclose(t.times, (t.meta["time_scale"] * np.arange(len(sk))) / 25 - 0.2)
    with pytest.raises(ValueError, match="time_offset must be none or a number"):
        dwm.load_dance_with_melody(d, time_offset="fit")


@pytest.mark.slow
def test_dwm_recipe_end_to_end(tmp_path, eval_in_process):
    src = tmp_path / "dwm"
    for name, bpm in (("DANCE_C_2", 128), ("DANCE_R_3", 100), ("DANCE_W_1", 90)):
        write_dwm(src / name, 6.0, bpm)
    out = tmp_path / "out"
    ov = ["clips.seconds=2.0", "run.jobs=1", 'pose.views="both"', "report.compare=[]", 'manifest.reference=""']
    res = run_recipe(PIPELINES / "dance_with_melody.toml", out=out, source=src, overrides=ov, log=quiet)
    assert statuses(res) == {
        "extract": "ran",
        "shard": "ran",
        "manifest": "ran",
        "report": "ran",
        "train-vae": "disabled",
        "train-music2motion": "disabled",
    }
    rows = read_manifest_csv(out / "manifest.csv")
    assert [r["id"] for r in rows] == [
        f"{n}_{v}" for n in ("DANCE_C_2", "DANCE_R_3", "DANCE_W_1") for v in ("fixed", "frontal")
    ]
    r = rows[2]
    assert (r["style"], r["label"], r["music"], r["source"], r["audio"], r["time_scale"], r["start_position"]) == (
        "rumba",
        "rumba",
        "DANCE_R_3",
        "DANCE_R_3",
        "DANCE_R_3/audio.mp3",
        "1.0",
        "25",
    )
    sha = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    assert r["audio_sha256"] == sha(src / "DANCE_R_3" / "audio.mp3")
    assert r["source_sha256"] == (
        f"config.json:{sha(src / 'DANCE_R_3' / 'config.json')};"
        f"skeletons.json:{sha(src / 'DANCE_R_3' / 'skeletons.json')}"
    )
    # The music starts 1 s before the dance: the span is the dance's 6 s.
    assert float(r["duration"]) == pytest.approx(6.0, abs=0.05) and r["clips_ok"] == "3"
    # Both views of a dance share its song's split; three songs fill three splits.
    assert {r["split"] for r in rows[0:2]} == {rows[0]["split"]} and len({r["split"] for r in rows}) == 3
    # Aligned by start_position: the forearms reverse on the clicks, so kinematic beats land
    # on the music's onsets (a clock off by half a beat would put them between).
    from momu_data.extract import load_item

    it = load_item(out / "data", "DANCE_R_3_fixed")
    near = [np.min(np.abs(it["kin_beats"] - o)) for o in it["onsets"][1:-1]]
    assert np.median(near) < 0.06
    beats = json.loads((out / "reports" / "beats.json").read_text())["results"][0]
    assert beats["overall"]["F1"] > 90 and set(beats["by_label"]) == {"cha-cha", "rumba", "waltz"}
    # The reference check: the manifest compared with itself, then with a changed split.
    assert compare_manifests(rows, rows) == []
    changed = [
        dict(x, split="test" if x["split"] != "test" else "train") if x["id"] == rows[0]["id"] else x for x in rows
    ]
    assert compare_manifests(rows, changed) == [
        f"{rows[0]['id']}: split is {rows[0]['split']!r}, reference {changed[0]['split']!r}"
    ]
    # Another view choice redoes extraction (it changes the data), then all is up to date.
    res = run_recipe(
        PIPELINES / "dance_with_melody.toml",
        out=out,
        source=src,
        overrides=[*ov[:2], "report.compare=[]", 'manifest.reference=""'],
        log=quiet,
    )
    assert statuses(res)["extract"] == "ran"
    assert sorted(r["id"] for r in read_manifest_csv(out / "manifest.csv")) == [
        "DANCE_C_2_fixed",
        "DANCE_R_3_fixed",
        "DANCE_W_1_fixed",
    ]
    res = run_recipe(
        PIPELINES / "dance_with_melody.toml",
        out=out,
        source=src,
        overrides=[*ov[:2], "report.compare=[]", 'manifest.reference=""'],
        log=quiet,
    )
    assert set(statuses(res).values()) == {"skipped", "disabled"}


# ------------------------------------------------------------------------- the demo


@pytest.mark.slow
def test_demo_recipe_tiny_end_to_end(tmp_path, monkeypatch):
    """The demo recipe at toy size: 2 synthetic videos of 2 s, real mediapipe."""
    out = tmp_path / "demo"
    ov = ["synth.n=2", "synth.seconds=2.0", "clips.seconds=1.0", "run.jobs=1", 'manifest.reference=""']
    res = run_recipe(PIPELINES / "demo.toml", out=out, overrides=ov, log=quiet)
    assert statuses(res) == {
        "synth": "ran",
        "extract": "ran",
        "shard": "ran",
        "manifest": "ran",
        "report": "ran",
        **TRAIN_OFF,
    }
    assert sorted(p.name for p in (out / "videos").glob("*.mp4")) == ["synth_000.mp4", "synth_001.mp4"]
    rows = read_manifest_csv(out / "manifest.csv")
    assert [r["id"] for r in rows] == ["synth_000", "synth_001"] and all(r["status"] == "ok" for r in rows)
    assert all(r["dataset"] == "synthetic" and int(r["clips_ok"]) >= 1 for r in rows)
    # genre = the music style of each video's ground-truth sidecar (what the classifier learns)
    styles = [json.loads((out / "videos" / f"{r['id']}.gt.json").read_text())["style"] for r in rows]
    assert [r["genre"] for r in rows] == styles and all(styles)
    info = json.loads((out / "shards" / "info.json").read_text())
    assert info["group_by"] == "video" and info["ratios"] == pytest.approx([0.8, 0.1, 0.1])
    res = run_recipe(PIPELINES / "demo.toml", out=out, overrides=ov, log=quiet)
    assert set(statuses(res).values()) == {"skipped", "disabled"}
    # A smaller demo: the extra video leaves the videos, the data and the manifest.
    reports = run_eval_in_process(monkeypatch)  # the report's subprocess ran above
    res = run_recipe(PIPELINES / "demo.toml", out=out, overrides=[*ov, "synth.n=1"], log=quiet)
    assert statuses(res)["synth"] == "ran" and statuses(res)["extract"] == "ran"
    assert sorted(p.name for p in (out / "videos").iterdir()) == ["synth_000.gt.json", "synth_000.mp4"]
    assert [r["id"] for r in read_manifest_csv(out / "manifest.csv")] == ["synth_000"]
    assert statuses(res)["report"] == "ran" and len(reports) == 1


# ---------------------------------------------------------------------- real data (opt-in)


@needs_dwm
def test_real_dance_with_melody_matches_the_checked_in_manifest():
    """manifests/dance_with_melody.csv describes ../shared's copy: every public file's
    checksum, the dance types, one split per song, durations from the config."""
    rows = read_manifest_csv(ROOT / "manifests" / "dance_with_melody.csv")
    folders = sorted(p.name for p in SHARED_DWM.glob("DANCE_*"))
    assert [r["job"] for r in rows] == sorted(folders, key=lambda n: f"{n}_fixed") and len(rows) == 17
    sha = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    for r in rows:
        d = SHARED_DWM / r["job"]
        assert r["audio_sha256"] == sha(d / "audio.mp3")
        assert r["source_sha256"] == f"config.json:{sha(d / 'config.json')};skeletons.json:{sha(d / 'skeletons.json')}"
        assert r["style"] == r["label"] == dwm.dance_labels(r["job"])["style"] and r["music"] == r["job"]
        cfg = json.loads((d / "config.json").read_text())
        assert (int(r["start_position"]), int(r["end_position"])) == (cfg["start_position"], cfg["end_position"])
        # The span is the motion's (L frames at 25 fps, shorter than end - start), to a frame.
        L = json.loads((d / "skeletons.json").read_text())["length"]
        assert abs(float(r["duration"]) - L / 25) < 0.05
    assert {r["style"] for r in rows} == {"cha-cha", "rumba", "tango", "waltz"}
    assert {r["split"] for r in rows} == {"train", "val", "test"} and sum(int(r["clips_ok"]) for r in rows) == 137


@needs_dwm
def test_real_dance_with_melody_import_and_time_scale_fit():
    d = SHARED_DWM / "DANCE_W_10"  # the shortest waltz: 1224 frames, start 50
    fixed, frontal = load_keypoints("dance_with_melody", d, views="both")
    assert len(fixed) == 1224 and fixed.meta["style"] == "waltz"
    a0 = dwm.audio_start(d / "audio.mp3")
    assert a0 == pytest.approx(1105 / 44100, abs=1e-4)  # LAME encoder delay of these mp3s
    assert fixed.times[0] == pytest.approx(a0 + 50 / 25) and np.diff(fixed.times) == pytest.approx(0.04)
    # Frontal: the right shoulder left of the left one in every frame; the fixed camera sees
    # the dancer from all sides.
    assert (frontal.xy[:, J["right_shoulder"], 0] < frontal.xy[:, J["left_shoulder"], 0]).all()
    side = fixed.xy[:, J["right_shoulder"], 0] < fixed.xy[:, J["left_shoulder"], 0]
    assert 0.1 < side.mean() < 0.9
    # The measured stretch of this dance (docs/recipes.md): 1.3 %, far above chance.
    from momu_data.media import load_audio

    y, a0 = load_audio(d / "audio.mp3")
    fit = dwm.fit_time_scale(dwm.read_dance(d), y, a0)
    assert fit.accepted and fit.scale == pytest.approx(1.013, abs=0.001) and fit.z > 4
