"""`--preset paper` is the paper's protocol (appendix A.2, B.3): the configs `momu-train` resolves,
checked without training (the trainers are replaced by one that records its config)."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from momu_models.cli.train import app
from momu_models.train import classifier as TC
from momu_models.train import diffusion as TD
from momu_models.train import vae as TV
from momu_models.train.args import PRESET_SETTINGS, apply_epochs, preset_settings

TRAIN_CLIPS = 1000  # 125 batches of 8 per epoch


@pytest.fixture
def shards(tmp_path):
    """A shard folder as far as the epoch count reads it: manifest.parquet with 1000 train clips."""
    root = tmp_path / "shards"
    root.mkdir()
    splits = ["train"] * TRAIN_CLIPS + ["val"] * 40 + ["test"] * 40
    pq.write_table(pa.table({"split": splits}), root / "manifest.parquet")
    return root


def recorded(monkeypatch, module) -> list:
    seen = []
    monkeypatch.setattr(module, "train", lambda cfg, progress=True: seen.append(cfg) or {"loss": 1.0})
    return seen


def run(*args):
    res = CliRunner().invoke(app, [str(a) for a in args])
    return res


def test_paper_vae_is_300_epochs_per_stage_at_contrast_weight_1(shards, monkeypatch):
    seen = recorded(monkeypatch, TV)
    res = run("vae", shards, "--preset", "paper")
    assert res.exit_code == 0, res.output
    cfg = seen.pop()
    assert cfg.epochs == 300.0
    assert (cfg.music_steps, cfg.motion_steps) == (300 * 125, 300 * 125)
    assert cfg.contrast_weight == 1.0
    # lr 2e-4 for both stages (appendix A.2): stage 1 the field, stage 2 the preset's default
    assert cfg.lr == 2e-4 and cfg.motion_lr is None and TV.MOTION_LR["paper"] == 2e-4
    # the batch size is per process: 16 per batch halves the steps of an epoch
    res = run("vae", shards, "--preset", "paper", "--batch-size", "16")
    cfg = seen.pop()
    assert (cfg.music_steps, cfg.motion_steps) == (300 * 62, 300 * 62)


def test_small_vae_is_unchanged(shards, monkeypatch):
    seen = recorded(monkeypatch, TV)
    res = run("vae", shards)
    assert res.exit_code == 0, res.output
    cfg = seen.pop()
    assert (cfg.preset, cfg.epochs, cfg.music_steps, cfg.motion_steps) == ("small", None, 2000, 2000)
    assert cfg.contrast_weight == 0.2 and TV.MOTION_LR["small"] == 1e-3
    res = run("vae", shards, "--preset", "small", "--epochs", "2")
    cfg = seen.pop()
    assert (cfg.epochs, cfg.music_steps, cfg.motion_steps, cfg.contrast_weight) == (2.0, 250, 250, 0.2)


def test_explicit_settings_win_over_the_paper_preset(shards, monkeypatch):
    seen = recorded(monkeypatch, TV)
    # --steps sets both stages: no preset epochs are left in the run's config
    run("vae", shards, "--preset", "paper", "--steps", "10")
    cfg = seen.pop()
    assert (cfg.epochs, cfg.music_steps, cfg.motion_steps, cfg.contrast_weight) == (None, 10, 10, 1.0)
    # one stage given: the other keeps the paper's epochs
    run("vae", shards, "--preset", "paper", "--music-steps", "7")
    cfg = seen.pop()
    assert (cfg.epochs, cfg.music_steps, cfg.motion_steps) == (300.0, 7, 37500)
    run("vae", shards, "--preset", "paper", "--epochs", "1", "--contrast-weight", "0.2")
    cfg = seen.pop()
    assert (cfg.epochs, cfg.music_steps, cfg.contrast_weight) == (1.0, 125, 0.2)
    # --steps wins over --epochs
    run("vae", shards, "--epochs", "1", "--steps", "3")
    cfg = seen.pop()
    assert (cfg.music_steps, cfg.motion_steps) == (3, 3)


def test_paper_dit_is_200_epochs_at_the_papers_rate(shards, monkeypatch):
    seen = recorded(monkeypatch, TD)
    res = run("diffusion", shards, "--task", "motion2music", "--preset", "paper")
    assert res.exit_code == 0, res.output
    cfg = seen.pop()
    assert (cfg.epochs, cfg.steps) == (200.0, 200 * 125)
    # lr and warm-up left to the preset: 1.6e-5 after 10k linear warm-up steps (appendix B.3)
    assert cfg.lr is None and cfg.warmup_steps is None and TD.PRESET_LR["paper"] == (1.6e-5, 10000)
    # the warm-up is a small part of the run, not most of it (3000 steps never got past 30 %)
    assert TD.PRESET_LR["paper"][1] < 0.5 * cfg.steps
    run("diffusion", shards, "--task", "music2motion", "--preset", "paper", "--steps", "50")
    cfg = seen.pop()
    assert (cfg.epochs, cfg.steps) == (None, 50)
    run("diffusion", shards, "--task", "music2motion")
    cfg = seen.pop()
    assert (cfg.preset, cfg.epochs, cfg.steps) == ("small", None, 3000)
    assert TD.PRESET_LR["small"] == (1e-3, 100)


def test_a_warmup_longer_than_half_the_run_is_reported(shards, monkeypatch, caplog):
    seen = recorded(monkeypatch, TD)
    with caplog.at_level("WARNING", logger="momu_models.cli.train"):
        run("diffusion", shards, "--task", "motion2music", "--preset", "paper")
        assert seen.pop().steps == 25000 and not caplog.records  # 10k of 25k steps: no warning
        # a global batch of 64: 15 steps per epoch, 3000 steps in 200 epochs, all of them warm-up
        run("diffusion", shards, "--task", "motion2music", "--preset", "paper", "--batch-size", "64")
    assert seen.pop().steps == 3000
    (rec,) = caplog.records
    assert rec.getMessage().startswith("the learning-rate warm-up (10000 steps) is 100% of the run (3000 steps)")


def test_recipe_config_file_gets_the_same_protocol(shards, monkeypatch, tmp_path):
    """A recipe's [[train]] entry reaches momu-train as --config FILE: preset = "paper" there
    resolves as --preset paper does; an epochs setting in the file replaces the preset's."""
    seen = recorded(monkeypatch, TV)
    f = tmp_path / "vae.json"
    f.write_text(json.dumps({"preset": "paper"}))
    run("vae", shards, "--config", f)
    cfg = seen.pop()
    assert (cfg.epochs, cfg.music_steps, cfg.contrast_weight) == (300.0, 37500, 1.0)
    f.write_text(json.dumps({"preset": "paper", "epochs": 4}))
    run("vae", shards, "--config", f)
    cfg = seen.pop()
    assert (cfg.epochs, cfg.motion_steps) == (4.0, 500)
    seen = recorded(monkeypatch, TD)
    f.write_text(json.dumps({"preset": "paper", "task": "music2motion", "steps": 9}))
    run("diffusion", shards, "--config", f)
    assert (seen[-1].epochs, seen[-1].steps) == (None, 9)


def test_epochs_errors_are_one_line(shards, monkeypatch, tmp_path):
    seen = recorded(monkeypatch, TV)
    res = run("vae", tmp_path / "no_shards", "--preset", "paper")
    assert res.exit_code == 2 and not seen
    assert "manifest.parquet not found: --epochs needs the shard manifest" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    res = run("vae", shards, "--epochs", "0")
    assert res.exit_code == 2 and res.stderr.strip() == "error: epochs must be positive, not 0"


def test_motion_smoothing_follows_the_runs_preset():
    """momu-generate smooths generated motion for the CPU presets only (the paper does not)."""
    from momu_models.generate.pipeline import default_smooth_seconds
    from momu_models.generate.postprocess import SMOOTH_SECONDS

    assert default_smooth_seconds({"music2motion": {"preset": "paper"}}) == 0.0
    assert default_smooth_seconds({"music2motion": {"preset": "small"}}) == SMOOTH_SECONDS == 0.032
    assert default_smooth_seconds({"a": {"preset": "tiny"}, "b": {"preset": "paper"}}) == 0.0


def test_preset_table_and_helpers():
    # the classifier has no paper protocol of its own (the paper fine-tunes MotionBert)
    assert PRESET_SETTINGS["classifier"] == {}
    assert preset_settings("classifier", {"preset": "paper"}) == {"preset": "paper"}
    assert preset_settings("vae", {}) == {}  # small by default: the trainer's own defaults
    assert preset_settings("vae", {"preset": "paper", "music_steps": 1, "motion_steps": 2}) == {
        "preset": "paper",
        "music_steps": 1,
        "motion_steps": 2,
        "contrast_weight": 1.0,
    }
    cfg = TC.ClassifierTrainConfig(epochs=1.5)
    apply_epochs(cfg, "classifier", {}, 10)
    assert cfg.steps == 15
    cfg = TC.ClassifierTrainConfig(epochs=0.01)
    apply_epochs(cfg, "classifier", {}, 10)
    assert cfg.steps == 1  # never zero steps


def test_cosine_lr_decay_factors_and_option(shards, monkeypatch):
    """`--lr-decay cosine`: the linear warm-up, then half a cosine from the peak to 0 at the
    last update; `constant` (the default) keeps the peak, as every run before it did."""
    from momu_models.train.optim import lr_factor

    warm, total = 4, 12
    const = [lr_factor(s, warm, total) for s in range(total)]
    assert const == pytest.approx([0.25, 0.5, 0.75, 1.0] + [1.0] * 8)
    cos = [lr_factor(s, warm, total, "cosine") for s in range(total + 2)]
    assert cos[:4] == const[:4]
    # update s+1-warm of total-warm after the warm-up: 0.5 (1 + cos(pi k / 8)), k = 1 .. 8
    assert cos[4:12] == pytest.approx([0.96194, 0.85355, 0.69134, 0.5, 0.30866, 0.14645, 0.03806, 0.0], abs=1e-5)
    assert cos[12:] == [0.0, 0.0]  # past the end (a run resumed for more steps): stays at 0
    with pytest.raises(ValueError, match="constant, cosine"):
        lr_factor(5, warm, total, "linear")
    seen = recorded(monkeypatch, TD)
    assert run("diffusion", shards, "--task", "music2motion", "--lr-decay", "cosine").exit_code == 0
    assert seen.pop().lr_decay == "cosine"
    assert run("diffusion", shards, "--task", "music2motion").exit_code == 0
    assert seen.pop().lr_decay == "constant"
    monkeypatch.undo()
    res = run("diffusion", shards, "--task", "music2motion", "--lr-decay", "step")
    assert res.exit_code == 2 and "--lr-decay must be constant or cosine, not 'step'" in res.output
