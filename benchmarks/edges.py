"""Sequence edges of generated motion (issue 12, docs/results.md "Sequence edges").

    python -m benchmarks.edges RUNS SHARDS MUSIC [--samples 8] [--seconds 30]

For the models in RUNS (vae/, music2motion/, motion2music/): the mean joint speed of the first
and last 0.1 s, and of the 0.1 s around every sliding-window seam, as a multiple of the
sequence's median speed, for
- VAE reconstructions of the val clips of SHARDS (what the decoder does at the edges),
- a joint sample of --seconds and --samples dances for MUSIC (audio or video file),
per single sequence and for the mean speed profile over the samples (content averages out,
a boundary effect does not).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from momu_data import loader
from momu_models import MoMuPipeline
from momu_models.diffusion import window_seams
from momu_models.evaluate.metrics import edge_speed_ratios, joint_speed, speed_profile


def seam_frames(frames: int, max_len: int, factor: int) -> list[int]:
    return [b * factor for b in window_seams(-(-frames // factor), max_len)]


def ratios(speed: np.ndarray, seams=()) -> dict:
    return {k: round(v, 2) for k, v in edge_speed_ratios(speed, seams).items()}


def summary(poses, seams=()) -> dict:
    single = [ratios(joint_speed(p), seams) for p in poses]
    return {
        "worst_single": max(max(r.values()) for r in single),
        "first_last_single": [(r["first"], r["last"]) for r in single],
        "mean_profile": ratios(speed_profile(poses), seams),
    }


def run(runs, shards, music, samples: int = 8, seconds: float = 30.0) -> dict:
    pipe = MoMuPipeline.from_pretrained(runs, device="cpu", vocoder="griffinlim")
    vae = pipe.models.vae
    batch = next(iter(loader(shards, split="val", batch_size=8)))
    with torch.no_grad():
        rec = vae.decode_motion(vae.encode_motion(batch["pose"], batch["mask"]).mean, batch["pose"].shape[1]).numpy()
    lengths = batch["mask"].sum(dim=1).tolist()
    rec = [r[: int(n)] for r, n in zip(rec, lengths)]
    res = {"conv_padding": vae.cfg.conv_padding, "reconstruction": summary(rec)}
    frames = int(round(seconds * 62.5))
    max_len = min(d.config.max_len for d in pipe.models.dits.values())
    seams = seam_frames(frames, max_len, vae.factor)
    joint = pipe.joint(length=frames, num_samples=samples, seed=0)
    res["joint"] = summary(joint.poses, seams)
    dance = pipe.dance_for_music(music, num_samples=samples, seed=0)
    res["dance_for_music"] = summary(dance.poses, seam_frames(dance.poses.shape[1], max_len, vae.factor))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs")
    ap.add_argument("shards")
    ap.add_argument("music")
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=30.0)
    a = ap.parse_args()
    print(json.dumps(run(a.runs, a.shards, a.music, a.samples, a.seconds), indent=1))


if __name__ == "__main__":
    main()
