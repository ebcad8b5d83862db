"""Fixtures of the generation tests: tiny checkpoints trained once per session on the toy shards."""

import pytest
from media import tiny_dit_config

import momu_models.train.diffusion as TD
import momu_models.train.vae as TV


@pytest.fixture(scope="session")
def runs(toy_shards, tmp_path_factory):
    """A vae/, motion2music/ and music2motion/ run of the tiny preset, a few steps each."""
    root = tmp_path_factory.mktemp("runs")
    TV.train(
        TV.VAETrainConfig(
            shards=str(toy_shards),
            run_dir=str(root / "vae"),
            preset="tiny",
            music_steps=3,
            motion_steps=3,
            batch_size=4,
            crop_seconds=1.0,
            val_batches=1,
        ),
        progress=False,
    )
    for task in ("motion2music", "music2motion"):
        TD.train(tiny_dit_config(toy_shards, root / "vae", root / task, task), progress=False)
    return root
