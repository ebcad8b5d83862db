"""The curated public API: every exported name resolves, the README's Python example uses
only exported names with keyword arguments their signatures accept, and the same flow runs
end to end through the public names alone (tiny settings)."""

import ast
import inspect
import json
import re
from pathlib import Path

import numpy as np
import pytest

import momu_data
import momu_models

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("pkg", [momu_data, momu_models], ids=lambda m: m.__name__)
def test_every_exported_name_resolves(pkg):
    assert pkg.__all__ and len(set(pkg.__all__)) == len(pkg.__all__)
    for name in pkg.__all__:
        assert getattr(pkg, name) is not None, name
    assert set(pkg.__all__) <= set(dir(pkg))
    with pytest.raises(AttributeError):
        pkg.no_such_name  # noqa: B018


def test_lazy_exports_import_on_first_use_and_bind_the_name():
    """The shared PEP 562 helper: nothing imported before the first lookup, the attribute of the
    named module after it, bound in the namespace; an unknown name is the usual AttributeError."""
    from momu_data.lazy import lazy_exports

    ns = {"__all__": ["dumps"]}
    getattr_, dir_ = lazy_exports("pkg", {"dumps": ("json", "dumps"), "Path": ("pathlib", "Path")}, ns)
    assert "dumps" not in ns and dir_() == ["Path", "__all__", "dumps"]
    assert getattr_("dumps") is json.dumps and ns["dumps"] is json.dumps
    with pytest.raises(AttributeError, match="module 'pkg' has no attribute 'loads'"):
        getattr_("loads")


def test_static_imports_name_the_lazy_exports():
    """The TYPE_CHECKING imports (what IDEs see) name exactly the lazily exported names."""
    tree = ast.parse((ROOT / "momu_models" / "__init__.py").read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    names = {a.asname or a.name for n in ast.walk(block) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert names == set(momu_models.__all__)


def test_exports_are_the_implementation_objects():
    from momu_models.generate.pipeline import MoMuPipeline
    from momu_models.train.vae import train

    assert momu_models.MoMuPipeline is MoMuPipeline and momu_models.train_vae is train
    assert momu_data.write_shards.__module__ == "momu_data.shards"


def readme_python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_example_uses_the_public_api():
    blocks = readme_python_blocks()
    assert blocks, "README.md has no python example"
    tree = ast.parse(blocks[0])
    imported = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            pkg = {"momu_data": momu_data, "momu_models": momu_models}[node.module]
            for a in node.names:
                assert a.name in pkg.__all__, f"README imports {a.name} from {node.module}: not in __all__"
                imported[a.asname or a.name] = getattr(pkg, a.name)
    assert len(imported) >= 8
    calls = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in imported:
            params = inspect.signature(imported[node.func.id]).parameters
            for kw in node.keywords:
                assert kw.arg in params, f"README calls {node.func.id}({kw.arg}=...): no such parameter"
            assert len(node.args) <= len(params)
            calls += 1
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("from_pretrained", "joint", "dance_for_music", "music_for_dance")
        ):
            method = getattr(momu_models.MoMuPipeline, node.func.attr)
            params = inspect.signature(method).parameters
            for kw in node.keywords:
                assert kw.arg in params, f"README calls MoMuPipeline.{node.func.attr}({kw.arg}=...)"
            calls += 1
    assert calls >= 8


@pytest.mark.slow
def test_the_flow_through_the_public_api(tmp_path):
    """The README's flow with tiny settings: keypoint files -> data -> shards -> loader ->
    both models -> a joint sample and a dance for a music, through exported names only."""
    import soundfile as sf
    from media import click_track, make_coco_item

    from momu_data import ExtractConfig, extract_dataset, loader, write_shards
    from momu_models import DiffusionTrainConfig, MoMuPipeline, VAETrainConfig, train_diffusion, train_vae

    for k in range(4):
        make_coco_item(tmp_path / "src", f"d{k}", seconds=6.0, bpm=100 + 10 * k, seed=k)
    res = extract_dataset(
        [tmp_path / "src"],
        tmp_path / "data",
        ExtractConfig(pose_source="coco", fps=30.0, clip_seconds=3.0),
        audio=tmp_path / "src",
        n_jobs=1,
    )
    assert res.ok == 4 and len([c for c in res.clips if c["status"] == "ok"]) == 8
    info = write_shards(tmp_path / "data", tmp_path / "shards", ratios=(0.5, 0.25, 0.25))
    assert sum(v["clips"] for v in info["splits"].values()) == 8
    batch = next(iter(loader(tmp_path / "shards", split="train", batch_size=2, crop_frames=64)))
    assert tuple(batch["pose"].shape) == (2, 64, 14, 2) and tuple(batch["mel"].shape) == (2, 80, 64)
    runs = tmp_path / "runs"
    tiny = dict(shards=str(tmp_path / "shards"), preset="tiny", batch_size=2, crop_seconds=1.0, val_batches=1)
    train_vae(VAETrainConfig(run_dir=str(runs / "vae"), music_steps=2, motion_steps=2, **tiny))
    for task in ("motion2music", "music2motion"):
        train_diffusion(
            DiffusionTrainConfig(
                task=task, vae=str(runs / "vae"), run_dir=str(runs / task), steps=2, stats_batches=1, **tiny
            )
        )
    pipe = MoMuPipeline.from_pretrained(runs, device="cpu", vocoder="griffinlim")
    written = pipe.joint(length="1s", seed=0, steps=2).save(tmp_path / "out")
    assert written[0]["mp4"].endswith("joint_s0_0.mp4")
    pose = np.load(tmp_path / "out" / "joint_s0_0.npy")
    assert pose.shape == (63, 14, 2) and np.isfinite(pose).all()
    assert json.loads((tmp_path / "out" / "joint_s0_0.json").read_text())["fps"] == 62.5
    y, _ = click_track(1.5, 120)
    sf.write(tmp_path / "song.wav", y, 16000)
    pipe.dance_for_music(tmp_path / "song.wav", steps=2).save(tmp_path / "out")
    assert np.load(tmp_path / "out" / "song_dance_s0_0.npy").shape == (24000 // 256, 14, 2)
