"""The guidance scale chosen on the val split (`momu-eval guidance`) and used by default."""

import json
import logging
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

runner = CliRunner()


@pytest.fixture()
def own_runs(runs, tmp_path):
    """A copy of the session's runs, so that guidance records stay in this test."""
    dst = tmp_path / "runs"
    shutil.copytree(runs, dst)
    return dst


def test_choose_scale_takes_the_best_and_the_smaller_on_a_tie():
    from momu_models.generate.guidance import choose_scale

    assert choose_scale({1.5: 40.0, 3.0: 52.5, 5.0: 51.0}) == 3.0
    assert choose_scale({7.0: 60.0, 5.0: 60.0, 3.0: 10.0}) == 5.0
    with pytest.raises(ValueError):
        choose_scale({})


def test_momu_eval_guidance_scores_every_scale_on_val_and_records_the_best(own_runs, toy_shards, tmp_path):
    """Each run gets a guidance.json naming the best of the scales tried on the val clips; the
    F1 of scale 0 is exactly what `evaluate_heldout` scores for the unconditional samples of the
    same clips, seeds and steps."""
    from momu_models.cli.eval import app as eval_app
    from momu_models.evaluate.heldout import evaluate_heldout
    from momu_models.generate.guidance import choose_scale, weights_digest

    out = tmp_path / "tuned.json"
    res = runner.invoke(
        eval_app,
        ["guidance", str(toy_shards), "--checkpoints", str(own_runs), "--scales", "0,2", "--steps", "2"]
        + ["--json", str(out)],
    )
    assert res.exit_code == 0, res.output
    figs = json.loads(out.read_text())
    ref = evaluate_heldout(toy_shards, own_runs, splits=("val",), steps=2, guidance=0.0)
    expect = {"music2motion": ref["m2d_uncond/tol"]["F1"], "motion2music": ref["d2m_uncond_vs_dance/tol"]["F1"]}
    for task in ("music2motion", "motion2music"):
        rec = json.loads((own_runs / task / "guidance.json").read_text())
        f1 = {float(k): v for k, v in rec["f1"].items()}
        assert sorted(f1) == [0.0, 2.0]
        assert f1[0.0] == pytest.approx(expect[task], abs=1e-3)
        assert rec["guidance"] == choose_scale(f1) == figs[task]["guidance"]
        assert rec["chosen_on"]["split"] == "val" and rec["chosen_on"]["clips"] == 2
        assert rec["weights_sha256"] == weights_digest(own_runs / task)
        assert f"{task}: beat F1" in res.output and f"chosen {rec['guidance']:g}" in res.output
    # the test split is what heldout reports: refused in one line
    bad = runner.invoke(eval_app, ["guidance", str(toy_shards), "--checkpoints", str(own_runs), "--split", "test"])
    assert bad.exit_code != 0 and len(bad.output.strip().splitlines()) == 1 and "val" in bad.output
    # --dry-run writes nothing
    (own_runs / "music2motion" / "guidance.json").unlink()
    dry = runner.invoke(
        eval_app,
        ["guidance", str(toy_shards), "--checkpoints", str(own_runs), "--scales", "1", "--steps", "1"]
        + ["--tasks", "music2motion", "--dry-run"],
    )
    assert dry.exit_code == 0, dry.output
    assert not (own_runs / "music2motion" / "guidance.json").exists()


def test_generation_uses_the_recorded_scale_unless_told(own_runs, toy_shards):
    """With a record, a sample without a scale equals one at the recorded scale and differs from
    one at the old default 3; the joint sampler gives each model its own scale."""
    from momu_data.loader import dataset
    from momu_models.diffusion.sampling import joint_sample
    from momu_models.generate.guidance import DEFAULT_GUIDANCE, save_guidance
    from momu_models.generate.pipeline import generate_joint, generate_motion, generate_music, load_models

    clip = next(iter(dataset(toy_shards, "val")))
    save_guidance(own_runs / "music2motion", 1.7, {"split": "val"}, {1.7: 50.0, 3.0: 40.0})
    save_guidance(own_runs / "motion2music", 0.5, {"split": "val"}, {0.5: 50.0})
    m = load_models(own_runs, ("motion2music", "music2motion"))
    assert m.guidance == {"music2motion": 1.7, "motion2music": 0.5}
    assert m.guidance_for("music2motion", 4.0) == 4.0 and m.guidance_for("music2motion") == 1.7

    def motion(scale):
        return generate_motion(m, clip["mel"], 1, 0, 3, scale, solver="ddim").poses

    assert np.array_equal(motion(None), motion(1.7))
    assert not np.allclose(motion(None), motion(DEFAULT_GUIDANCE))

    def music(scale):
        return generate_music(m, clip["pose"], 1, 0, 3, scale, solver="ddim").mels

    assert np.array_equal(music(None), music(0.5)) and not np.allclose(music(None), music(3.0))
    # joint: each model its own scale; one float is both
    d_mu, d_mo = m.dits["motion2music"], m.dits["music2motion"]

    def joint(scale):
        g = torch.Generator().manual_seed(0)
        return joint_sample(d_mu, d_mo, 8, 4, scale, g, cross_start=0.25)

    a, b = joint((2.0, 2.0)), joint(2.0)
    assert torch.equal(a.motion, b.motion) and torch.equal(a.music, b.music)
    c = joint((0.5, 1.7))
    assert not torch.allclose(c.motion, b.motion)
    with pytest.raises(ValueError):
        joint((1.0, 2.0, 3.0))
    j_default = generate_joint(m, 64, 1, 0, 4, None, 0.25, solver="ddim")
    j_own = generate_joint(m, 64, 1, 0, 4, 1.7, 0.25, solver="ddim")
    assert not np.allclose(j_default.mels, j_own.mels)  # music at 0.5, not 1.7


def test_a_record_for_other_weights_is_ignored_with_a_warning(own_runs, caplog):
    from momu_models.generate.guidance import DEFAULT_GUIDANCE, GUIDANCE_FILE, save_guidance, tuned_guidance
    from momu_models.generate.pipeline import load_models

    run = own_runs / "music2motion"
    path = save_guidance(run, 5.0, {"split": "val"}, {5.0: 1.0})
    assert tuned_guidance(run) == 5.0
    rec = json.loads(path.read_text())
    rec["weights_sha256"] = "0" * 64  # as if the run had been trained again since
    path.write_text(json.dumps(rec))
    with caplog.at_level(logging.WARNING):
        m = load_models(own_runs, ("music2motion",))
    assert m.guidance_for("music2motion") == DEFAULT_GUIDANCE
    assert any("other weights" in r.getMessage() for r in caplog.records)
    (run / GUIDANCE_FILE).write_text("{not json")
    with caplog.at_level(logging.WARNING):
        assert tuned_guidance(run) is None
