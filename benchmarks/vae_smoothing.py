"""What the motion smoothing does to the motion VAE's own dances: beat F1 of its
reconstructions by smoothing sigma (docs/results.md, "make demo", fifth session):

  python -m benchmarks.vae_smoothing SHARDS RUNS [--splits train] [--sigmas 0,0.008,...]

Every clip of the splits is encoded with RUNS/vae (the posterior mean) and decoded, then
smoothed as generated motion is (postprocess.finish_motion, no bone correction) with each
sigma. Three rows per sigma, +-0.1 s one-to-one matching as `momu-eval heldout` scores:
the reconstruction's kinematic beats against the music's onsets, against the real dance's
kinematic beats, and the real dance smoothed the same way against the music (what the
smoothing costs a dance that has no decoder jitter). Without diffusion, this isolates the
decoder: if no sigma scores better than 0, the smoothing has no jitter to remove.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from momu_data import timebase as A
from momu_models.evaluate.heldout import heldout_clips
from momu_models.evaluate.metrics import aggregate, motion_beats, tolerance_scores
from momu_models.generate.postprocess import finish_motion
from momu_models.models.vae import BiCoRVAE

SIGMAS = (0.0, 0.008, 0.016, 0.024, 0.032, 0.048)


@torch.no_grad()
def reconstruction_scores(shards, runs, splits=("train",), sigmas=SIGMAS, tolerance: float = 0.1) -> dict:
    """{"clips": n, "recon_vs_music" | "recon_vs_dance" | "real_vs_music": {sigma: F1}}."""
    clips = heldout_clips(shards, splits)
    if not clips:
        raise SystemExit(f"no clips in the {'/'.join(splits)} split(s) of {shards}")
    vae = BiCoRVAE.from_pretrained(f"{runs}/vae").eval()
    rows = {k: {s: [] for s in sigmas} for k in ("recon_vs_music", "recon_vs_dance", "real_vs_music")}
    for c in clips:
        x = torch.from_numpy(np.ascontiguousarray(c["pose"], dtype=np.float32))[None]
        recon = vae.decode_motion(vae.encode_motion(x).mean, x.shape[1]).numpy()[0]
        dur = c["pose"].shape[0] / A.FPS
        for s in sigmas:
            beats = motion_beats(finish_motion(recon, A.FPS, None, s), A.FPS)
            rows["recon_vs_music"][s].append(tolerance_scores(beats, c["onsets"], dur, tolerance))
            rows["recon_vs_dance"][s].append(tolerance_scores(beats, c["kin"], dur, tolerance))
            real = motion_beats(finish_motion(c["pose"], A.FPS, None, s), A.FPS)
            rows["real_vs_music"][s].append(tolerance_scores(real, c["onsets"], dur, tolerance))
    out = {k: {s: round(aggregate(v)["F1"], 1) for s, v in r.items()} for k, r in rows.items()}
    return {"clips": len(clips), **out}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("shards")
    ap.add_argument("runs")
    ap.add_argument("--splits", default="train")
    ap.add_argument("--sigmas", default=",".join(map(str, SIGMAS)), help="seconds, comma-separated")
    a = ap.parse_args(argv)
    res = reconstruction_scores(
        a.shards, a.runs, tuple(a.splits.split(",")), tuple(float(s) for s in a.sigmas.split(","))
    )
    print(json.dumps(res))


if __name__ == "__main__":
    main()
