"""Every command of the README's flow works as written in a folder laid out as `make demo`
leaves the checkout (videos/, data/, shards/, runs/, outputs/), with tiny models in runs/.

Commands that only start long work run with a flag that keeps them short, named here:
`momu-data synth` (20 videos of 12 s) and `momu-train` (thousands of steps) are checked with
--help, the recipe with --dry-run; everything else runs verbatim."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHORTENED = {
    ("momu-data", "synth"): "--help",
    ("momu-train", "vae"): "--help",
    ("momu-train", "diffusion"): "--help",
    ("momu-data", "run"): "--dry-run",
}


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    flow = text[text.index("## The flow") :]
    block = re.search(r"```bash\n(.*?)```", flow, flags=re.S).group(1)
    return [ln.split("#")[0].strip() for ln in block.splitlines() if ln.split("#")[0].strip()]


@pytest.fixture(scope="module")
def demo_layout(tmp_path_factory):
    """What `make demo` leaves, small: 3 synthetic videos of 6 s, extracted with the real pose
    model and the command's defaults, shards, and tiny models trained on them."""
    from momu_data import ExtractConfig, extract_dataset, synthesize, write_shards
    from momu_models import DiffusionTrainConfig, VAETrainConfig, train_diffusion, train_vae

    root = tmp_path_factory.mktemp("checkout")
    (root / "pipelines").symlink_to(ROOT / "pipelines")
    synthesize(3, 6.0, root / "videos", seed=0, jobs=2)
    res = extract_dataset([root / "videos"], root / "data", ExtractConfig(), n_jobs=2)
    assert res.ok == 3
    write_shards(root / "data", root / "shards", ratios=(1, 1, 1))
    tiny = dict(shards=str(root / "shards"), preset="tiny", batch_size=2, crop_seconds=1.0, val_batches=1)
    train_vae(VAETrainConfig(run_dir=str(root / "runs" / "vae"), music_steps=2, motion_steps=2, **tiny))
    for task in ("motion2music", "music2motion"):
        train_diffusion(
            DiffusionTrainConfig(
                task=task,
                vae=str(root / "runs" / "vae"),
                run_dir=str(root / "runs" / task),
                steps=2,
                stats_batches=1,
                **tiny,
            )
        )
    return root


def test_readme_flow_names_the_demo_files():
    cmds = readme_commands()
    assert len(cmds) >= 12 and all(
        c.split()[0] in ("momu-data", "momu-train", "momu-generate", "momu-eval") for c in cmds
    )
    assert "momu-generate --joint --length 30s" in cmds  # the headline command, bare


@pytest.mark.slow
def test_every_readme_command_works_after_the_demo(demo_layout):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for cmd in readme_commands():
        args = shlex.split(cmd)
        extra = SHORTENED.get(tuple(args[:2]))
        run = args + ([extra] if extra else [])
        res = subprocess.run(run, cwd=demo_layout, env=env, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, f"{' '.join(run)} failed:\n{res.stderr[-2000:]}"
        if extra == "--help":
            assert "Usage" in res.stdout
    out = demo_layout / "outputs"
    assert np.load(out / "joint_s0_0.npy").shape == (1875, 14, 2)  # 30 s
    assert (out / "synth_001_dance_s0_0.mp4").stat().st_size > 0
    assert (out / "synth_002_music_s0_0.wav").stat().st_size > 0
    assert (demo_layout / "clip.png").stat().st_size > 0
