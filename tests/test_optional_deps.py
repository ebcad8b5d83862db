"""The models run without the dataset builder's packages (docs/install.md): with PyAV, OpenCV,
mediapipe, ai-edge-litert and dask hidden, `momu_models` and its commands import, a tiny
training runs, `momu-generate --no-render` writes everything but the mp4, a WAV is read without
PyAV, and what does need a hidden package stops with one line naming what to install.

The hidden packages are made unimportable in a child python by a meta-path finder (HIDE), so
this runs in the full development venv too; `make models-check` runs it where they are absent.
One child runs every part that needs one (the `hidden` fixture), each in its own folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from momu_data.optional import MissingPackage, import_optional, missing_message

ROOT = Path(__file__).resolve().parents[1]
OPTIONAL = ("av", "cv2", "mediapipe", "dask", "distributed", "ai_edge_litert")

# Imported first by the child: every OPTIONAL package (and its submodules) raises ImportError.
HIDE = f"""
import sys

class _Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {OPTIONAL!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (hidden by the test)", name=name)
        return None

sys.meta_path.insert(0, _Hide())
"""


# Runs each part (name -> code) in order, each in its own folder (its cwd) and namespace;
# records what it printed and its traceback, if any, in results.json.
RUN_PARTS = """
import contextlib, io, json, os, traceback

root = os.getcwd()
results = {}
for name, code in json.load(open("parts.json")).items():
    os.makedirs(name, exist_ok=True)
    os.chdir(name)
    out, error = io.StringIO(), None
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, f"<part {name}>", "exec"), {"__name__": "__main__"})
    except BaseException:
        error = traceback.format_exc()
    os.chdir(root)
    results[name] = {"out": out.getvalue(), "error": error}
json.dump(results, open("results.json", "w"))
"""


def run_hidden_parts(parts: dict[str, str], root: Path, timeout: float = 600) -> dict:
    """Run every part's code in ONE child python with the OPTIONAL packages hidden, in order, each
    with root/NAME as its cwd; returns {name: {"out": what it printed, "error": traceback or None}}.
    One child for all of this module's parts: each start of one costs seconds of imports (torch,
    librosa), and the packages are hidden the same way for all."""
    (root / "parts.json").write_text(json.dumps({k: textwrap.dedent(v) for k, v in parts.items()}))
    script = root / "child.py"
    script.write_text(HIDE + RUN_PARTS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run(
        [sys.executable, str(script)], cwd=root, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads((root / "results.json").read_text())


def part(hidden: dict, name: str) -> tuple[Path, str]:
    """The folder part `name` ran in and what it printed; fails with its traceback if it raised."""
    r = hidden["results"][name]
    assert r["error"] is None, r["error"][-3000:]
    return hidden["root"] / name, r["out"]


def has_av() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:  # absent, or hidden (MOMU_HIDE_OPTIONAL)
        return False
    return True


# ---- the parts, in the order the child runs them (imports first: nothing imported before)

IMPORTS = """
        import importlib
        import sys
        import momu_models, momu_data
        mods = [
            "momu_models.cli.train", "momu_models.cli.generate", "momu_models.cli.eval", "momu_data.cli.data",
            "momu_models.generate.pipeline", "momu_models.generate.outputs", "momu_models.generate.render",
            "momu_models.train.vae", "momu_models.train.diffusion", "momu_models.train.classifier",
            "momu_models.evaluate.suite", "momu_models.evaluate.heldout",
            "momu_data.loader", "momu_data.shards", "momu_data.features", "momu_data.extract",
        ]
        for m in mods:
            importlib.import_module(m)
        for name in momu_models.__all__:
            getattr(momu_models, name)
        for name in momu_data.__all__:
            if name != "synthesize":  # the synthetic-video renderer draws with OpenCV
                getattr(momu_data, name)
        assert callable(momu_data.loader), momu_data.loader  # the function, not its module
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in OPTIONAL)
        print("LOADED", loaded)
        """.replace("OPTIONAL", repr(OPTIONAL))

EXTRACT = """
        from typer.testing import CliRunner
        from momu_data.cli.data import app
        out = CliRunner().invoke(app, ["extract", "v", "--out", "data", "-j", "1"])
        print("EXIT", out.exit_code)
        print(out.output)
        """

WAV = """
        import numpy as np
        from momu_data.media import audio_sample_rate, load_audio
        y, start = load_audio("../a.wav", sr=16000)
        np.save("y.npy", y)
        print("RATE", audio_sample_rate("../a.wav"), "START", start)
        """

TRAIN = """
        import contextlib, io, json
        from momu_models import DiffusionTrainConfig, VAETrainConfig, train_diffusion, train_vae
        tiny = dict(shards=TOY_SHARDS, preset="tiny", batch_size=4, crop_seconds=1.0, val_batches=1)
        train_vae(VAETrainConfig(run_dir="runs/vae", music_steps=2, motion_steps=2, **tiny), progress=False)
        for task in ("motion2music", "music2motion"):
            train_diffusion(
                DiffusionTrainConfig(task=task, vae="runs/vae", run_dir=f"runs/{task}", steps=2, stats_batches=1,
                                     **tiny),
                progress=False,
            )

        from typer.testing import CliRunner
        import typer
        from momu_models.cli.generate import generate
        from momu_models.cli.eval import app as eval_app
        app = typer.Typer()
        app.command()(generate)
        r = CliRunner()
        common = ["--checkpoints", "runs", "--out", "out", "--steps", "2", "--vocoder", "griffinlim"]
        codes = {}
        for name, args in {
            "joint": ["--joint", "--length", "1s", "--no-render", *common],
            "music": ["--music", "song.wav", "--no-render", *common],
            "render": ["--joint", "--length", "1s", *common, "--out", "rendered"],
        }.items():
            out = r.invoke(app, args)
            codes[name] = [out.exit_code, out.output]
        out = r.invoke(eval_app, ["beats", "out/song_dance_s0_0.npy", "--reference", "song.wav", "--kind", "motion",
                                  "--json", "beats.json"])
        codes["eval"] = [out.exit_code, out.output]
        json.dump(codes, open("codes.json", "w"))
        """


@pytest.fixture(scope="module")
def hidden(toy_shards, tmp_path_factory):
    """Every part above run in one child with the OPTIONAL packages hidden: the imports, then
    (where PyAV is here to write their inputs) the extraction of a video and a WAV read, then
    the tiny trainings, generation and scoring. Their inputs are made here."""
    import soundfile as sf
    from media import click_track

    root = tmp_path_factory.mktemp("hidden")
    parts = {"imports": IMPORTS}
    if has_av():
        from media import write_av

        (root / "extract" / "v").mkdir(parents=True)
        write_av(root / "extract" / "v" / "clip.mp4", seconds=1.0)
        parts["extract"] = EXTRACT
        t = np.arange(2 * 44100) / 44100
        stereo = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.1 * np.sin(2 * np.pi * 220 * t)], 1)
        sf.write(root / "a.wav", stereo.astype(np.float32), 44100)
        parts["wav"] = WAV
    (root / "train").mkdir()
    y, _ = click_track(2.0, 120)
    sf.write(root / "train" / "song.wav", y, 16000)
    parts["train"] = TRAIN.replace("TOY_SHARDS", repr(str(toy_shards)))
    return {"root": root, "results": run_hidden_parts(parts, root)}


def test_models_and_their_commands_import_without_optional_packages(hidden):
    _, out = part(hidden, "imports")
    assert "LOADED []" in out


def test_install_split_keeps_a_gpu_boxs_torch_and_numpy():
    """pyproject.toml: the core install (what momu_models needs) admits the GPU machine's torch 2.11
    and numpy 2.5 and names none of the dataset builder's packages; `data` has them and the numpy
    cap; `render` is the one headless OpenCV. (make models-env checks the same with pip itself.)"""
    from packaging.requirements import Requirement

    try:
        import tomllib
    except ImportError:  # Python 3.10: pytest itself depends on tomli there
        import tomli as tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {r.name.lower(): r for r in map(Requirement, project["dependencies"])}
    extras = {k: {r.name.lower(): r for r in map(Requirement, v)} for k, v in project["optional-dependencies"].items()}
    assert core["torch"].specifier.contains("2.11.0") and core["torch"].specifier.contains("2.13.0")
    assert core["numpy"].specifier.contains("2.5.0") and core["numpy"].specifier.contains("1.26.4")
    builder = {"mediapipe", "opencv-contrib-python", "opencv-python", "opencv-python-headless", "ai-edge-litert"}
    builder.add("dask")
    assert not builder & set(core), builder & set(core)
    assert {"mediapipe", "opencv-contrib-python", "ai-edge-litert", "dask", "numpy"} <= set(extras["data"])
    assert not extras["data"]["numpy"].specifier.contains("2.0.0")
    assert set(extras["render"]) == {"opencv-python-headless"}
    assert {"webdataset", "braceexpand", "librosa", "soundfile", "av"} <= set(core)


def test_missing_package_message_names_what_to_install():
    assert missing_message("rendering the video", ["av", "cv2"]) == (
        "rendering the video needs PyAV and OpenCV: pip install av 'momu[render]' "
        "(or 'momu[data]' for OpenCV, with the dataset builder)"
    )
    assert missing_message("extracting poses", ["mediapipe"], install="'momu[data]'") == (
        "extracting poses needs mediapipe: pip install 'momu[data]'"
    )
    with pytest.raises(MissingPackage) as e:
        import_optional("json", "momu_no_such_package", purpose="testing")
    assert str(e.value) == "testing needs momu_no_such_package: pip install momu_no_such_package"
    assert isinstance(e.value, ImportError)  # `except ImportError` still catches it
    assert import_optional("json", purpose="testing") is json


def test_extraction_without_its_packages_stops_with_one_line_and_records_nothing(hidden):
    """`momu-data extract` of a video where PyAV is missing: one line naming it, exit 1, no record
    of the video as failed (a rerun after installing it does the work)."""
    if "extract" not in hidden["results"]:
        pytest.skip("PyAV absent: no video to write for the test")
    folder, out = part(hidden, "extract")
    text = " ".join(out.split())
    assert "EXIT 1 error: reading clip.mp4" in text and "needs PyAV: pip install av" in text, text
    assert not list(folder.glob("data/**/*.json")), "the video was recorded as done or failed"


def test_wav_reads_the_same_without_pyav(hidden):
    """load_audio's fallback (soundfile + soxr_hq) against PyAV's decoder and resampler."""
    if "wav" not in hidden["results"]:
        pytest.skip("PyAV absent: nothing to compare the fallback with")
    from momu_data import media

    ref, start = media.load_audio(hidden["root"] / "a.wav", sr=16000)
    folder, out = part(hidden, "wav")
    assert "RATE 44100 START 0.0" in out
    y = np.load(folder / "y.npy")
    assert y.shape == ref.shape == (32000,) and start == 0.0
    # two resamplers of a 0.2-amplitude mix: the same signal to within 2 % of its peak
    assert np.abs(y - ref).max() < 0.02 * np.abs(ref).max()


def test_train_and_generate_without_optional_packages(hidden):
    """Tiny VAE and both diffusion models trained, then `momu-generate --joint --no-render` and
    `--music song.wav --no-render`, then `momu-eval beats` on the result, all without the
    hidden packages; `momu-generate` without --no-render stops at once naming them."""
    import soundfile as sf

    folder, _ = part(hidden, "train")
    codes = json.loads((folder / "codes.json").read_text())
    for name in ("joint", "music", "eval"):
        assert codes[name][0] == 0, f"{name}: {codes[name][1][-2000:]}"
    assert "no mp4: --no-render" in codes["joint"][1]
    out = folder / "out"
    written = sorted(p.name for p in out.iterdir())
    assert written == [
        "joint_s0_0.json",
        "joint_s0_0.npy",
        "joint_s0_0.wav",
        "joint_s0_0_beats.png",
        "song_dance_s0_0.json",
        "song_dance_s0_0.npy",
        "song_dance_s0_0.wav",
        "song_dance_s0_0_beats.png",
    ], written
    assert np.load(out / "joint_s0_0.npy").shape == (63, 14, 2)  # 1 s at 62.5 frames/s
    assert np.load(out / "song_dance_s0_0.npy").shape == (125, 14, 2)  # the 2 s song
    assert sf.info(str(out / "joint_s0_0.wav")).frames == 63 * 256
    assert json.loads((folder / "beats.json").read_text())["n"] == 1  # the dance scored against the WAV
    # rendering without PyAV and OpenCV: one line naming both and --no-render, before any work
    code, text = codes["render"]
    assert code == 2 and not (folder / "rendered").exists()
    line = " ".join(text.split())
    assert "rendering the video (skip it with --no-render) needs PyAV and OpenCV: pip install av 'momu[render]'" in (
        line
    )
