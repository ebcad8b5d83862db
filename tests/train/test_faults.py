"""Faults in training (issue 16): a non-finite loss or gradient skips the update, is counted
and logged, and several in a row stop the run with one line naming the batch's clips; no
checkpoint or model with non-finite weights is ever written; a damaged file of the latest
checkpoint is named in one line and `--resume` falls back to the newest intact checkpoint
(saying which step it resumes from); a damaged `--init` / `--vae` run is one line too."""

import json
import logging
import math
import shutil
from pathlib import Path

import pytest
import torch
from media import tiny_vae_config, write_label_shards
from safetensors.torch import load_file
from typer.testing import CliRunner

import momu_models.train.classifier as TC
import momu_models.train.diffusion as TD
import momu_models.train.vae as TV
from momu_data.loader import ShardError
from momu_models.cli.train import app
from momu_models.train.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from momu_models.train.loop import MAX_NONFINITE_IN_A_ROW, BatchStream, NonFiniteGuard, TrainError, finite_update

# ------------------------------------------------------------------ helpers


def vae_cfg(shards, run, **kw):
    return tiny_vae_config(shards, run, **{"music_steps": 2, "motion_steps": 2, "val_batches": 1, **kw})


def poison(monkeypatch, calls) -> list:
    """Put one NaN into the mel and the pose (those of them the trainer reads) of the batches
    the train streams hand out on the given calls (1-based, over all streams), as a flipped
    bit would; returns the keys of the poisoned batches, in order."""
    real = BatchStream.__next__
    n = [0]
    keys = []

    def nxt(self):
        b = real(self)
        n[0] += 1
        if n[0] in calls:
            for name, at in (("mel", (0, 0, 0)), ("pose", (0, 0, 0, 0))):
                if name in b:
                    b[name][at] = float("nan")
            keys.append(list(b["key"]))
        return b

    monkeypatch.setattr(BatchStream, "__next__", nxt)
    return keys


def rows(run, key):
    return [r[key] for r in map(json.loads, open(Path(run) / "metrics.jsonl")) if key in r]


def all_finite(path) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in load_file(str(path)).values() if v.is_floating_point())


def adam_steps(ckpt, name) -> float:
    """How many updates optimizer `name` made (AdamW's step count of its first parameter)."""
    return float(load_file(str(ckpt / "optim.safetensors"))[f"{name}.0.step"])


def checkpoints(run):
    return sorted((Path(run) / "checkpoints").glob("step-*"))


@pytest.fixture(scope="module")
def vae_run(toy_shards, tmp_path_factory):
    """A finished tiny VAE run with checkpoints at steps 2 and 4 (music 2 + motion 2 steps)."""
    run = tmp_path_factory.mktemp("faults") / "vae"
    TV.train(vae_cfg(toy_shards, run), progress=False)
    return run


# ------------------------------------------------------------------ non-finite updates


def test_finite_update_skips_nonfinite_loss_and_gradient():
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = torch.optim.AdamW([p], lr=0.1)
    applied, norm = finite_update((p * float("nan")).sum(), opt, 1.0)
    assert not applied and math.isnan(norm) and torch.equal(p.detach(), torch.tensor([1.0, 2.0]))
    assert p.grad is None and not opt.state  # no gradient kept, no optimiser state written
    # a finite loss whose gradient is not: d sqrt(x) / dx at 0
    applied, norm = finite_update(torch.sqrt(p - p.detach()).sum(), opt, None)
    assert not applied and not math.isfinite(norm) and torch.equal(p.detach(), torch.tensor([1.0, 2.0]))
    applied, norm = finite_update((p * p).sum(), opt, None)  # grad (2, 4): norm sqrt(20), not clipped
    assert applied and norm == pytest.approx(20**0.5) and float(opt.state[p]["step"]) == 1.0
    assert bool((p.detach() < torch.tensor([1.0, 2.0])).all())


def test_finite_update_agrees_through_the_process_group():
    """Under torchrun the skip decision is all-reduced (here a one-process gloo group)."""
    import torch.distributed as dist

    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        p = torch.nn.Parameter(torch.tensor([1.0]))
        opt = torch.optim.SGD([p], lr=0.5)
        assert finite_update((p * float("inf")).sum(), opt, 1.0)[0] is False and float(p.detach()) == 1.0
        assert finite_update((p * p).sum(), opt, 1.0) == (True, 2.0) and float(p.detach()) == pytest.approx(
            0.5
        )  # clipped
    finally:
        dist.destroy_process_group()


def test_guard_counts_and_stops_after_several_in_a_row(tmp_path, caplog):
    g = NonFiniteGuard(limit=3)
    batch = {"key": ["a/1", "b/2"]}
    with caplog.at_level(logging.WARNING):
        g.update(1, False, batch, float("nan"))
        g.update(2, True, batch, 0.5)  # a good step ends the streak
        g.update(3, False, batch, float("inf"))
        g.update(4, False, batch, float("nan"))
    assert (g.total, g.in_a_row) == (3, 2)
    assert (
        "step 3: non-finite loss or gradient (loss inf): update skipped" in caplog.text and "a/1, b/2" in caplog.text
    )
    with pytest.raises(TrainError) as e:
        g.update(5, False, {"key": ["c/3"]}, float("nan"))
    assert "3 steps in a row (the last: step 5" in str(e.value) and "clips: c/3." in str(e.value)
    again = NonFiniteGuard(limit=3, state=g.state_dict())
    assert (again.total, again.in_a_row) == (4, 3)


def test_vae_skips_a_nonfinite_step_in_each_stage(toy_shards, tmp_path, monkeypatch, caplog):
    keys = poison(monkeypatch, {2, 4})  # step 2 (music stage) and step 4 (motion stage)
    run = tmp_path / "run"
    with caplog.at_level(logging.WARNING, logger="momu_models.train.loop"):
        TV.train(vae_cfg(toy_shards, run), progress=False)
    assert rows(run, "nonfinite_skipped") == [1.0, 2.0]
    assert math.isnan(rows(run, "music/loss")[1]) and math.isnan(rows(run, "motion/loss")[1])
    assert "step 2: non-finite loss" in caplog.text and ", ".join(keys[0]) in caplog.text
    assert "step 4: non-finite loss" in caplog.text and ", ".join(keys[1]) in caplog.text
    last = checkpoints(run)[-1]
    # 2 steps per stage, one skipped in each: the generator, the discriminator (its real mel
    # had the NaN) and the motion VAE each made one update
    assert [adam_steps(last, n) for n in ("music", "disc", "motion")] == [1.0, 1.0, 1.0]
    assert json.loads((last / "state.json").read_text())["nonfinite"] == {"total": 2, "in_a_row": 1}
    assert all(all_finite(c / "model.safetensors") for c in checkpoints(run)) and all_finite(run / "model.safetensors")


def test_vae_stops_after_nonfinite_steps_in_a_row_naming_the_clips(toy_shards, tmp_path, monkeypatch):
    keys = poison(monkeypatch, set(range(2, 100)))  # every batch from step 2 on
    run = tmp_path / "run"
    opts = ["--steps", "10", "-b", "4", "--crop-seconds", "1", "--ckpt-every", "2", "--val-every", "100"]
    res = CliRunner().invoke(
        app, ["vae", str(toy_shards), "--preset", "tiny", "--stage", "music", "--run-dir", str(run), *opts]
    )
    assert res.exit_code == 2, res.output
    out = res.output.strip().splitlines()[-1]  # after the progress bar, the error: one line
    assert out.startswith("error: ") and res.output.count("error") == 1
    last = 1 + MAX_NONFINITE_IN_A_ROW
    assert f"{MAX_NONFINITE_IN_A_ROW} steps in a row (the last: step {last}, loss nan)" in out
    assert f"clips: {', '.join(keys[-1])}." in out
    assert not (run / "model.safetensors").exists()
    # the checkpoints written before it stopped hold no NaN
    assert checkpoints(run) and all(all_finite(c / "model.safetensors") for c in checkpoints(run))


def test_diffusion_and_classifier_skip_nonfinite_steps(vae_run, toy_shards, tmp_path, monkeypatch, caplog):
    # diffusion: the latent statistics read calls 1, 2 (stats_batches=2); the train steps 3, 4, 5
    keys = poison(monkeypatch, {1, 4})
    run = tmp_path / "m2m"
    TD.train(
        TD.DiffusionTrainConfig(
            shards=str(toy_shards),
            task="music2motion",
            run_dir=str(run),
            vae=str(vae_run),
            preset="tiny",
            steps=3,
            batch_size=4,
            val_batches=1,
            stats_batches=2,
        ),
        progress=False,
    )
    assert f"latent statistics: left out a batch with non-finite values; clips: {', '.join(keys[0])}" in caplog.text
    stats = json.loads((checkpoints(run)[-1] / "state.json").read_text())["stats"]
    assert all(math.isfinite(v) and v > 0 for v in stats["latent_scales"].values())
    assert rows(run, "nonfinite_skipped") == [1.0] and adam_steps(checkpoints(run)[-1], "opt") == 2.0
    assert all_finite(run / "model.safetensors") and all_finite(checkpoints(run)[-1] / "model.safetensors")

    shards = label_shards(tmp_path / "labels")
    poison(monkeypatch, {2, 3})
    run = tmp_path / "cls"
    cfg = dict(steps=4, batch_size=6, crop_seconds=1.0, val_every=1000, ckpt_every=4, log_every=1, val_batches=1)
    TC.train(TC.ClassifierTrainConfig(shards=str(shards), run_dir=str(run), preset="tiny", **cfg), progress=False)
    assert rows(run, "nonfinite_skipped") == [1.0, 2.0] and adam_steps(checkpoints(run)[-1], "opt") == 2.0
    assert all_finite(run / "model.safetensors")


def label_shards(root: Path) -> Path:
    """The classifier tests' labelled pose shards (media.write_label_shards), small."""
    return write_label_shards(root, per_class=(4, 1), seconds=2.0)


def test_classifier_label_counts_read_damaged_shards_like_the_loader(tmp_path):
    """The classifier counts its classes through the loader's checks: a truncated tar is the
    loader's one-line error naming it (was a tarfile traceback), or skipped with --skip-corrupt."""
    shards = label_shards(tmp_path / "labels")  # train: 000000.tar (10 clips), 000001.tar (4)
    assert TC.label_counts(shards, "train", "genre") == {"slow": 4, "mid": 4, "fast": 4, "": 2}
    bad = shards / "train" / "000001.tar"
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size * 3 // 4])
    with pytest.raises(ShardError, match=rf"^{bad}: truncated or garbled tar \(ReadError"):
        TC.label_counts(shards, "train", "genre")
    res = CliRunner().invoke(app, ["classifier", str(shards), "--run-dir", str(tmp_path / "run"), "--preset", "tiny"])
    out = res.output.strip()
    assert res.exit_code == 2 and "\n" not in out and out.startswith(f"error: {bad}: truncated or garbled tar")
    counts = TC.label_counts(shards, "train", "genre", skip_corrupt=True)  # the first tar's 10 clips, at least
    assert sum(counts.values()) in range(10, 14) and counts["slow"] == counts["mid"] == 4


# ------------------------------------------------------------------ never written


def test_nonfinite_weights_are_never_written(tmp_path):
    lin = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(lin.parameters())
    save_checkpoint(tmp_path, 1, {"lin": lin}, {"opt": opt}, {"data": {}})
    with torch.no_grad():
        lin.bias[1] = float("inf")
    with pytest.raises(
        TrainError, match=r"refusing to write checkpoint .*step-00000002: non-finite values \(lin.bias\)"
    ):
        save_checkpoint(tmp_path, 2, {"lin": lin}, {"opt": opt}, {"data": {}})
    assert [c.name for c in checkpoints(tmp_path)] == ["step-00000001"] and not list(
        (tmp_path / "checkpoints").glob(".tmp-*")
    )
    assert json.loads((tmp_path / "checkpoints" / "latest.json").read_text())["step"] == 1


def test_final_model_with_nonfinite_weights_is_refused(toy_shards, tmp_path, monkeypatch):
    real_save = TV.save_checkpoint

    def save_then_break(run_dir, step, modules, *a, **kw):  # weights go bad after the last checkpoint
        out = real_save(run_dir, step, modules, *a, **kw)
        with torch.no_grad():
            next(modules["vae"].music.parameters()).fill_(float("nan"))
        return out

    monkeypatch.setattr(TV, "save_checkpoint", save_then_break)
    run = tmp_path / "run"
    with pytest.raises(TrainError, match=r"refusing to write .*model.safetensors: non-finite weights \(vae.music"):
        TV.train(vae_cfg(toy_shards, run, stage="music", motion_steps=0), progress=False)
    assert not (run / "model.safetensors").exists()


# ------------------------------------------------------------------ damaged checkpoints


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x40
    path.write_bytes(bytes(data))


def garble(path):
    path.write_text(path.read_text()[:-20])


@pytest.mark.parametrize(
    ("name", "damage", "says"),
    [
        ("model.safetensors", truncate, "sha256 differs"),
        ("optim.safetensors", flip_last_byte, "sha256 differs"),
        ("state.json", garble, "not readable JSON"),
    ],
)
def test_resume_falls_back_from_a_damaged_latest_checkpoint(vae_run, toy_shards, tmp_path, caplog, name, damage, says):
    run = tmp_path / "run"
    shutil.copytree(vae_run, run)
    (run / "model.safetensors").unlink()
    bad = run / "checkpoints" / "step-00000004" / name
    damage(bad)
    with pytest.raises(CheckpointError) as e:
        read_checkpoint(bad.parent)
    assert str(e.value).startswith(f"checkpoint file {bad} is damaged") and says in str(e.value)
    with caplog.at_level(logging.INFO, logger="momu_models.train.checkpoint"):
        TV.train(vae_cfg(toy_shards, run, resume=True), progress=False)
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING and r.name.endswith("checkpoint"))
    assert str(bad) in warning.getMessage() and "falling back to the newest intact checkpoint" in warning.getMessage()
    assert warning.getMessage().endswith("step-00000002") and "\n" not in warning.getMessage()
    assert f"resuming from step 2: {run / 'checkpoints' / 'step-00000002'}" in caplog.text
    # from step 2 the resumed run is the uninterrupted one, bit for bit; step 4 is whole again
    full, resumed = load_file(str(vae_run / "model.safetensors")), load_file(str(run / "model.safetensors"))
    assert full.keys() == resumed.keys() and all(torch.equal(full[k], resumed[k]) for k in full)
    assert read_checkpoint(bad.parent)[0]["step"] == 4


def test_checkpoints_without_checksums_are_read_in_full(tmp_path, caplog):
    """Checkpoints from before the sha256 in state.json: a truncated or non-finite tensor file
    is still found (by reading it), and the next older checkpoint is used."""
    lin = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(lin.parameters())
    finite_update(lin(torch.ones(1, 3)).sum(), opt, None)  # optimiser state to save
    for step in (1, 2, 3):
        ck = save_checkpoint(tmp_path, step, {"lin": lin}, {"opt": opt}, {"data": {}}, keep=3)
        state = json.loads((ck / "state.json").read_text())
        del state["sha256"]
        (ck / "state.json").write_text(json.dumps(state))
    ckdir = tmp_path / "checkpoints"
    truncate(ckdir / "step-00000003" / "model.safetensors")
    weights = load_file(str(ckdir / "step-00000002" / "optim.safetensors"))
    from safetensors.torch import save_file

    save_file(
        {k: v.float() * float("nan") if k == "opt.0.exp_avg" else v for k, v in weights.items()},
        str(ckdir / "step-00000002" / "optim.safetensors"),
    )
    with caplog.at_level(logging.WARNING, logger="momu_models.train.checkpoint"):
        assert latest_checkpoint(tmp_path) == ckdir / "step-00000001"
    msg = caplog.records[0].getMessage()
    assert msg.startswith(
        f"checkpoint file {ckdir / 'step-00000003' / 'model.safetensors'} is damaged: not a readable"
    )
    with pytest.raises(CheckpointError, match=r"optim.safetensors is damaged: non-finite values in opt.0.exp_avg$"):
        read_checkpoint(ckdir / "step-00000002")


def test_resume_says_its_step_and_survives_a_damaged_latest_json(vae_run, toy_shards, tmp_path, caplog):
    run = tmp_path / "run"
    shutil.copytree(vae_run, run)
    garble(run / "checkpoints" / "latest.json")
    with caplog.at_level(logging.INFO, logger="momu_models.train.checkpoint"):
        assert latest_checkpoint(run) == run / "checkpoints" / "step-00000004"
        TV.train(vae_cfg(toy_shards, run, resume=True), progress=False)  # at step 4 of 4: nothing left to train
    assert f"checkpoint file {run / 'checkpoints' / 'latest.json'} is damaged" in caplog.text
    assert f"resuming from step 4: {run / 'checkpoints' / 'step-00000004'}" in caplog.text


def test_only_checkpoint_damaged_is_one_line_naming_it(vae_run, toy_shards, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(vae_run, run)
    shutil.rmtree(run / "checkpoints" / "step-00000002")
    bad = run / "checkpoints" / "step-00000004" / "model.safetensors"
    truncate(bad)
    f = tmp_path / "vae.json"
    f.write_text(json.dumps({"preset": "tiny", "music_steps": 2, "motion_steps": 2, "batch_size": 4}))
    res = CliRunner().invoke(app, ["vae", str(toy_shards), "--config", str(f), "--run-dir", str(run), "--resume"])
    assert res.exit_code == 2
    out = res.output.strip()
    assert "\n" not in out and out.startswith(f"error: checkpoint file {bad} is damaged")
    assert "holds no older intact checkpoint" in out and "without --resume" in out
    # the same in Python, for a folder without any intact checkpoint
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(bad.parent, {})
    assert e.value.path == bad


def test_damaged_init_or_vae_run_is_one_line(vae_run, toy_shards, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(vae_run, src, ignore=shutil.ignore_patterns("checkpoints", "tensorboard"))
    truncate(src / "model.safetensors")
    cfg = vae_cfg(toy_shards, tmp_path / "run", stage="motion", music_steps=0, init=str(src))
    with pytest.raises(TrainError, match=rf"^--init: {src / 'model.safetensors'} is damaged \(.*\): train that run"):
        TV.train(cfg, progress=False)
    shutil.copy(vae_run / "model.safetensors", src / "model.safetensors")
    garble(src / "config.json")
    with pytest.raises(TrainError, match=rf"^--vae: {src / 'config.json'} is damaged \(JSONDecodeError"):
        TD.load_vae(src)
    shutil.copy(vae_run / "config.json", src / "config.json")
    weights = load_file(str(src / "model.safetensors"))
    weights[next(k for k, v in weights.items() if v.is_floating_point())].view(-1)[0] = float("nan")
    from safetensors.torch import save_file

    save_file(weights, str(src / "model.safetensors"))
    with pytest.raises(TrainError, match=r"holds non-finite weights .*: the run diverged"):
        TD.load_vae(src)
