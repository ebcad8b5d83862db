"""Helpers the tests share: small media files made with PyAV, keypoint-file dances, the toy
shards, labelled pose shards without media, and a tiny VAE run config.

From the command line, `python tests/media.py toy-shards OUT` writes the toy shards (those of
the `toy_shards` fixture) into OUT/shards, with their sources and extracted data beside them
(OUT/src, OUT/data): for a machine that cannot extract (no PyAV, no mediapipe), whose tests
then read them through MOMU_TOY_SHARDS=OUT/shards (tests/conftest.py).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]  # the checkout
# Real material on development machines (see ../shared/data/README.md); absent in a fresh clone.
SHARED_DATA = ROOT.parent / "shared" / "data"


# A standing figure in COCO-17 order (pixels): the base pose of the keypoint-file test dances.
COCO_BASE = (
    np.array(
        [
            [50, 20],
            [48, 18],
            [52, 18],
            [46, 19],
            [54, 19],
            [40, 30],
            [60, 30],
            [36, 45],
            [64, 45],
            [34, 60],
            [66, 60],
            [44, 60],
            [56, 60],
            [44, 80],
            [56, 80],
            [44, 98],
            [56, 98],
        ],
        float,
    )
    * 4
)


def write_av(
    path,
    seconds=2.0,
    fps=25,
    size=(64, 48),
    audio=True,
    video=True,
    sr=22050,
    freq=440.0,
    frame_fn=None,
    audio_fn=None,
    codec="libx264",
):
    """Write an mp4 with noise frames (or frame_fn(i) -> rgb) and a sine (or audio_fn(t))."""
    import av

    path = Path(path)
    with av.open(str(path), "w") as c:
        vs = as_ = None
        if video:
            vs = c.add_stream(codec, rate=fps)
            vs.width, vs.height = size
            vs.pix_fmt = "yuv420p"
        if audio:
            as_ = c.add_stream("aac", rate=sr)
            as_.layout = "mono"
        rng = np.random.default_rng(0)
        if video:
            for i in range(int(round(seconds * fps))):
                img = frame_fn(i) if frame_fn else rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
                for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    c.mux(p)
            for p in vs.encode():
                c.mux(p)
        if audio:
            n = int(seconds * sr)
            t = np.arange(n) / sr
            y = audio_fn(t) if audio_fn else 0.3 * np.sin(2 * np.pi * freq * t)
            y = y.astype(np.float32)[None]
            for k in range(0, n, 1024):
                fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(y[:, k : k + 1024]), format="fltp", layout="mono")
                fr.sample_rate = sr
                fr.pts = k
                for p in as_.encode(fr):
                    c.mux(p)
            for p in as_.encode():
                c.mux(p)
    return path


def click_track(seconds: float, bpm: float, sr: int = 16000, offset: float = 0.25):
    """Short decaying noise bursts on every beat; returns (signal, beat times)."""
    rng = np.random.default_rng(1)
    y = np.zeros(int(seconds * sr), np.float32)
    beats = np.arange(offset, seconds - 0.1, 60.0 / bpm)
    burst = (rng.standard_normal(int(0.03 * sr)) * np.exp(-np.linspace(0, 8, int(0.03 * sr)))).astype(np.float32)
    for b in beats:
        i = int(b * sr)
        y[i : i + len(burst)] += 0.8 * burst[: len(y) - i]
    return y, beats


def make_coco_item(folder: Path, name: str, seconds=6.0, fps=30.0, bpm=120.0, seed=0):
    """COCO-17 keypoints of a figure whose wrists reverse on every beat, and its click track."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fps)
    t = np.arange(n) / fps
    base = COCO_BASE
    tri = np.abs(((t / (60 / bpm)) % 2) - 1)
    entries = []
    for i in range(n):
        kp = base + rng.normal(0, 0.3, base.shape)
        kp[[9, 10], 1] -= 60 * tri[i]
        entries.append(
            {
                "image_id": f"{i}.jpg",
                "category_id": 1,
                "score": 2.5,
                "keypoints": np.concatenate([kp, np.full((17, 1), 0.9)], 1).ravel().tolist(),
            }
        )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(entries))
    import soundfile as sf

    y, _ = click_track(seconds, bpm, 16000, offset=0.0)
    sf.write(folder / f"{name}.wav", y, 16000)
    return folder / f"{name}.json"


def make_toy_shards(root: Path) -> Path:
    """The toy shards: 8 keypoint-file 'dances' (COCO-17 + click tracks, made in root/src,
    extracted into root/data) cut into 16 clips of 4 s, train/val/test = 12/2/2 clips in
    shards of at most 4 clips, in root/shards. Cheap: no pose model. Returns root/shards.
    Needs the data side (`momu-data extract` and `shard`, run in this process)."""
    from typer.testing import CliRunner

    from momu_data.cli.data import app

    root = Path(root)
    out = root / "shards"
    for k in range(8):
        make_coco_item(root / "src", f"d{k}", seconds=8.0, bpm=90 + 8 * k, seed=k)
    r = CliRunner()
    args = ["extract", str(root / "src"), "--pose-source", "coco", "--audio", str(root / "src"), "--fps", "30"]
    res = r.invoke(app, [*args, "--out", str(root / "data"), "--clip-seconds", "4", "-j", "1"])
    if res.exit_code != 0:
        raise RuntimeError(f"momu-data extract of the toy dances failed:\n{res.output}")
    res = r.invoke(app, ["shard", str(root / "data"), "--out", str(out), "--split", "6/1/1", "--shard-size", "4"])
    if res.exit_code != 0:
        raise RuntimeError(f"momu-data shard of the toy dances failed:\n{res.output}")
    return out


def check_toy_shards(path) -> Path:
    """`path` as the toy shards ($MOMU_TOY_SHARDS): a folder with train/, val/ and test/ tars and
    the info.json `momu-data shard` writes, else ValueError saying what is missing."""
    p = Path(path)
    if not p.is_dir():
        raise ValueError(f"MOMU_TOY_SHARDS={path}: no such folder (write one: python tests/media.py toy-shards OUT)")
    missing = [s for s in ("train", "val", "test") if not any((p / s).glob("*.tar"))]
    if not (p / "info.json").is_file():
        missing.append("info.json")
    if missing:
        raise ValueError(
            f"MOMU_TOY_SHARDS={path}: not toy shards, {', '.join(missing)} missing "
            "(write them: python tests/media.py toy-shards OUT)"
        )
    return p


def missing_render_packages() -> list[str]:
    """PyAV and OpenCV, which the mp4s need, where absent (a models-only install: make models-check)."""
    return [m for m in ("av", "cv2") if not _importable(m)]


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:  # hidden (MOMU_HIDE_OPTIONAL in tests/conftest.py)
        return False


# ---- labelled pose shards without media (the classifier's tests, and the trainers' fault tests)

FPS = 62.5  # the time base of shards (momu_data.timebase.FPS)
FREQS = {"slow": 0.8, "mid": 2.0, "fast": 4.0}  # Hz of each class's movement


REST = np.random.default_rng(42).uniform(-1, 1, (14, 2))  # one body for every clip


def dance_clip(freq: float, seconds: float, rng) -> np.ndarray:
    """[T, 14, 2] joints swinging at `freq` Hz around one rest pose, with a random phase and
    amplitude: only the tempo of the movement tells the classes apart (a random rest pose
    per clip would let a model memorise the train clips instead)."""
    t = np.arange(int(round(seconds * FPS))) / FPS
    rest = REST + 0.05 * rng.standard_normal((14, 2))
    amp = rng.uniform(0.2, 0.4, (14, 2))
    phase = rng.uniform(0, 2 * np.pi, (14, 2))
    pose = rest + amp * np.sin(2 * np.pi * freq * t[:, None, None] + phase)
    return (pose + 0.02 * rng.standard_normal(pose.shape)).astype(np.float32)


def write_label_shards(
    root: Path, per_class=(20, 5), seconds: float = 4.0, unlabelled: int = 2, label: str = "genre", seed: int = 0
) -> Path:
    """Shards in the `momu-data shard` format (pose/conf/mel/amp/meta) without any media:
    train and val clips of each class in FREQS, plus `unlabelled` train clips with label ""."""
    import webdataset as wds

    rng = np.random.default_rng(seed)
    for split, n in zip(("train", "val"), per_class):
        (root / split).mkdir(parents=True)
        samples = [(c, k) for c in FREQS for k in range(n)]
        if split == "train":
            samples += [("", k) for k in range(unlabelled)]
        with wds.ShardWriter(str(root / split / "%06d.tar"), maxcount=10, verbose=0) as sink:
            for c, k in samples:
                pose = dance_clip(FREQS.get(c, 3.0), seconds, rng)
                T = pose.shape[0]
                sink.write(
                    {
                        "__key__": f"{split}_{c or 'none'}_{k}",
                        "pose.npy": pose,
                        "conf.npy": np.ones((T, 14), np.float32),
                        "mel.npy": np.zeros((80, T), np.float32),
                        "amp.npy": np.zeros(T, np.float32),
                        "meta.json": {"key": f"{split}_{c}_{k}", label: c, "dancer": "d0"},
                    }
                )
    return root


def tiny_vae_config(shards, run, **kw):
    """A VAETrainConfig for a few-step `tiny` run on the toy shards; kw override its fields."""
    import momu_models.train.vae as TV

    base = dict(
        shards=str(shards),
        run_dir=str(run),
        preset="tiny",
        music_steps=4,
        motion_steps=4,
        batch_size=4,
        crop_seconds=1.0,
        val_every=1000,
        ckpt_every=2,
        log_every=1,
        val_batches=2,
        warmup_steps=1,
    )
    base.update(kw)
    return TV.VAETrainConfig(**base)


def tiny_dit_config(shards, vae, run, task, **kw):
    """A DiffusionTrainConfig for a few-step `tiny` run on the toy shards over the VAE run
    `vae`; kw override its fields (steps: 3 unless given)."""
    import momu_models.train.diffusion as TD

    base = dict(
        shards=str(shards),
        task=task,
        run_dir=str(run),
        vae=str(vae),
        preset="tiny",
        steps=3,
        batch_size=4,
        val_batches=1,
        stats_batches=2,
    )
    base.update(kw)
    return TD.DiffusionTrainConfig(**base)


def main(argv: list[str]) -> int:
    """`toy-shards OUT`: write the toy shards into OUT/shards (OUT/src, OUT/data beside them)."""
    if len(argv) != 2 or argv[0] != "toy-shards":
        print("usage: python tests/media.py toy-shards OUT", file=sys.stderr)
        return 2
    out = Path(argv[1])
    if out.exists() and any(out.iterdir()):
        print(f"{out} exists and is not empty: give a new folder", file=sys.stderr)
        return 2
    shards = make_toy_shards(out)
    info = json.loads((shards / "info.json").read_text())
    clips = {k: v["clips"] for k, v in info["splits"].items()}
    print(f"wrote toy shards to {shards} (clips per split: {clips}); use them with MOMU_TOY_SHARDS={shards}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


def rewrite_tar(tar: Path, change=None) -> None:
    """Rewrite a shard tar's samples in place: change(key, decoded sample) on each, then
    encoded with fresh checksums (so a changed value sits under a checksum that matches it);
    without `change`, as they are but without checksums (a shard from before them)."""
    import io
    import tarfile

    import webdataset as wds

    from momu_data.loader import CHECKSUMS, decode_member
    from momu_data.shards import encode_sample

    with tarfile.open(tar) as t:
        files = [(m.name, t.extractfile(m).read()) for m in t.getmembers()]
    samples: dict[str, dict] = {}
    for name, data in files:
        key, ext = name.split(".", 1)
        samples.setdefault(key, {"__key__": key})[ext] = data
    buf = io.BytesIO()
    with wds.TarWriter(buf, encoder=False) as w:
        for key, s in samples.items():
            s.pop(CHECKSUMS)
            if change is None:
                w.write(s)
                continue
            s = {k: (v if k.startswith("__") or k == "audio.flac" else decode_member(k, v)) for k, v in s.items()}
            change(key, s)
            w.write(encode_sample(s))
    Path(tar).write_bytes(buf.getvalue())
