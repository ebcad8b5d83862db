"""Stream shards into aligned (motion, mel, amplitude) batches for the trainers.

A webdataset pipeline of small stages: list shards -> split by node and worker -> decode
.npy/.json -> pick the arrays -> optional random crop -> pad and batch with a mask.
"""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np

KEYS = ("pose.npy", "conf.npy", "mel.npy", "amp.npy")


def shard_urls(source, split: str | None = None) -> list[str]:
    """Resolve a shard folder, a shard root plus split, a glob, a brace pattern, a list,
    or a remote URL (`pipe:...`, `s3://...`, `https://...`) into a list of shard URLs."""
    if isinstance(source, (list, tuple)):
        return [str(s) for s in source]
    s = str(source)
    if "://" in s or s.startswith("pipe:"):
        import braceexpand

        return list(braceexpand.braceexpand(s))
    p = Path(s)
    if p.is_dir():
        if split:
            p = p / split
        elif (p / "train").is_dir() and not list(p.glob("*.tar")):
            raise ValueError(f"{p} is a shard root: name a split (train/val/test) or its folder")
        urls = sorted(str(x) for x in p.glob("*.tar"))
    elif any(ch in s for ch in "*?["):
        urls = sorted(glob.glob(s))
    elif "{" in s:
        import braceexpand

        urls = list(braceexpand.braceexpand(s))
    elif p.is_file():
        urls = [s]
    else:
        raise FileNotFoundError(f"no shards at {s}")
    if not urls:
        raise FileNotFoundError(f"no .tar shards in {p}: run `momu-data shard` first")
    return urls


def to_arrays(sample: dict) -> dict:
    """Decoded webdataset sample -> the arrays the models use."""
    missing = [k for k in KEYS if k not in sample]
    if missing:
        raise KeyError(f"sample {sample.get('__key__')} lacks {missing}: not a MoMu shard")
    return {
        "key": sample["__key__"],
        "pose": np.asarray(sample["pose.npy"], np.float32),
        "conf": np.asarray(sample["conf.npy"], np.float32),
        "mel": np.asarray(sample["mel.npy"], np.float32),
        "amp": np.asarray(sample["amp.npy"], np.float32),
        # The clip's manifest row (labels, source, times): the classifier's targets.
        "meta": sample.get("meta.json") or {},
    }


class RandomCrop:
    """Crop every frame-aligned array to the same random window of `frames` (clips that are
    shorter are kept whole and padded at batching)."""

    def __init__(self, frames: int, seed: int = 0):
        self.frames = frames
        self.rng = np.random.default_rng(seed)

    def __call__(self, s: dict) -> dict:
        T = s["pose"].shape[0]
        if T <= self.frames:
            return s
        a = int(self.rng.integers(0, T - self.frames + 1))
        b = a + self.frames
        return {
            **s,
            "pose": s["pose"][a:b],
            "conf": s["conf"][a:b],
            "mel": s["mel"][:, a:b],
            "amp": s["amp"][a:b],
            "offset": a,
        }


def collate(samples: list[dict]) -> dict:
    """Pad to the longest clip in the batch; mask[b, t] is True on real frames."""
    import torch

    B = len(samples)
    T = max(s["pose"].shape[0] for s in samples)
    pose = torch.zeros(B, T, 14, 2)
    conf = torch.zeros(B, T, 14)
    mel = torch.full((B, samples[0]["mel"].shape[0], T), float(np.log(1e-5)))
    amp = torch.zeros(B, T)
    mask = torch.zeros(B, T, dtype=torch.bool)
    for i, s in enumerate(samples):
        n = s["pose"].shape[0]
        pose[i, :n] = torch.from_numpy(s["pose"])
        conf[i, :n] = torch.from_numpy(s["conf"])
        mel[i, :, :n] = torch.from_numpy(s["mel"])
        amp[i, :n] = torch.from_numpy(s["amp"])
        mask[i, :n] = True
    return {
        "key": [s["key"] for s in samples],
        "pose": pose,
        "conf": conf,
        "mel": mel,
        "amp": amp,
        "mask": mask,
        "length": mask.sum(1),
        "meta": [s.get("meta", {}) for s in samples],
    }


def dataset(
    source,
    split: str | None = None,
    crop_frames: int | None = None,
    shuffle: int = 0,
    seed: int = 0,
    resampled: bool = False,
):
    """The webdataset pipeline of samples (unbatched), split by node and worker."""
    import webdataset as wds

    urls = shard_urls(source, split)
    ds = wds.WebDataset(
        urls,
        resampled=resampled,
        shardshuffle=(100 if shuffle else False),
        seed=seed,
        nodesplitter=wds.split_by_node,
        workersplitter=wds.split_by_worker,
        empty_check=False,
    )
    if shuffle:
        ds = ds.shuffle(shuffle, seed=seed) if _shuffle_takes_seed() else ds.shuffle(shuffle)
    ds = ds.decode().map(to_arrays)
    if crop_frames:
        ds = ds.map(RandomCrop(crop_frames, seed))
    return ds


def _shuffle_takes_seed() -> bool:
    import inspect

    import webdataset as wds

    return "seed" in inspect.signature(wds.filters.shuffle).parameters


def loader(
    source,
    split: str | None = None,
    batch_size: int = 8,
    crop_frames: int | None = None,
    shuffle: int = 0,
    num_workers: int = 0,
    seed: int = 0,
    resampled: bool = False,
):
    """A torch DataLoader yielding padded batches:
    {"key": [B], "pose": [B,T,14,2], "conf": [B,T,14], "mel": [B,80,T], "amp": [B,T],
     "mask": [B,T] bool, "length": [B], "meta": [B] dicts (meta.json: labels, source...)}."""
    import torch

    ds = dataset(source, split, crop_frames, shuffle, seed, resampled)
    return torch.utils.data.DataLoader(
        ds.batched(batch_size, collation_fn=collate, partial=True), batch_size=None, num_workers=num_workers
    )
