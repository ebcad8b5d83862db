"""The reported model figures on synthetic data (docs/results.md), reproducible:

  python -m benchmarks.experiment_synthetic SHARDS OUT [--vae-steps N] [--diff-steps N]

1. BiCoR-VAE (small): stage 1 once, then stage 2 with the rhythmic contrastive loss and
   without it (ablation #3, same stage-1 music VAE); validation mel / pose L1 and
   motion-to-music retrieval accuracy of latent windows against chance.
2. Both diffusion models (small) on the contrastive VAE.
3. Beat alignment on the val+test clips (never trained on), LORIS-binned BCS/BHS/F1:
   - music-to-dance: kinematic beats of generated motion vs the clip's music onsets, with
     guidance (conditioned) and with guidance scale 0 (the same model, unconditional);
   - dance-to-music: onsets of the generated music (Griffin-Lim) vs the clip's music onsets,
     conditioned and unconditional;
   - the ceiling: the real motion's kinematic beats vs its own music's onsets.
   Next to them, the envelope sync (momu_models.evaluate.metrics.sync_correlation, docs/metrics.md).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from momu_data import timebase as A
from momu_data.features import kinematic_amplitude
from momu_models.evaluate.heldout import TASKS, evaluate_heldout
from momu_models.evaluate.metrics import (
    aggregate,
    binned_scores,
    mel_flux,
    motion_beats,
    music_beats,
    sync_correlation,
    tolerance_scores,
)
from momu_models.generate.pipeline import generate_joint, load_models
from momu_models.generate.vocoders import get_vocoder
from momu_models.train.diffusion import DiffusionTrainConfig
from momu_models.train.diffusion import train as train_diffusion
from momu_models.train.vae import VAETrainConfig
from momu_models.train.vae import train as train_vae


def vae_runs(shards: Path, out: Path, steps: int) -> dict:
    common = dict(
        shards=str(shards),
        preset="small",
        batch_size=8,
        crop_seconds=4.0,
        val_every=10**9,
        ckpt_every=10**9,
        val_batches=50,
    )
    res = {}
    t = time.perf_counter()
    res["music_stage"] = train_vae(
        VAETrainConfig(run_dir=str(out / "vae_music"), stage="music", music_steps=steps, motion_steps=0, **common),
        progress=False,
    )
    for name, w in (("vae", 1.0), ("vae_no_contrast", 0.0)):
        res[name] = train_vae(
            VAETrainConfig(
                run_dir=str(out / name),
                stage="motion",
                music_steps=0,
                motion_steps=steps,
                contrast_weight=w,
                init=str(out / "vae_music"),
                **common,
            ),
            progress=False,
        )
    res["seconds"] = time.perf_counter() - t
    return res


def diffusion_runs(shards: Path, out: Path, steps: int) -> dict:
    res = {}
    for task in ("motion2music", "music2motion"):
        t = time.perf_counter()
        cfg = DiffusionTrainConfig(
            shards=str(shards),
            task=task,
            run_dir=str(out / "runs" / task),
            vae=str(out / "vae"),
            preset="small",
            steps=steps,
            batch_size=8,
            crop_seconds=4.0,
            val_every=10**9,
            ckpt_every=10**9,
        )
        res[task] = train_diffusion(cfg, progress=False)
        res[task]["seconds"] = time.perf_counter() - t
    return res


def beat_figures(
    shards, runs: Path, steps: int = 50, guidance: float | None = None, splits=("val", "test"), tasks=TASKS
):
    """Beat scores of the trained runs on the held-out clips, guided vs unconditional, next
    to the ceiling: momu_models.evaluate.heldout.evaluate_heldout (what `momu-eval heldout`
    prints) at +-0.1 s, its "NAME/tol" rows named "NAME/tol0.1" as in the results files."""
    res = evaluate_heldout(shards, runs, tasks=tasks, splits=splits, steps=steps, guidance=guidance, tolerance=0.1)
    return {(k[: -len("/tol")] + "/tol0.1" if k.endswith("/tol") else k): v for k, v in res.items()}


def joint_figures(
    runs: Path,
    n: int = 16,
    seconds: float = 6.0,
    steps: int = 50,
    guidance: float | None = None,
    cross_start: float = 0.5,
) -> dict:
    """Are jointly generated music and dance in sync? For seeds 0..n-1, the onsets of the
    generated music (Griffin-Lim) against the kinematic beats of the dance generated with it,
    by cross-guidance ("joint") and with cross_start 1 (the same two models and seeds, never
    conditioned on each other: "independent"). Also the envelope sync_correlation."""
    models = load_models(runs, ("motion2music", "music2motion"))
    voc = get_vocoder("griffinlim")
    frames = int(round(seconds * A.FPS))
    res = {}
    for name, cs in (("joint", cross_start), ("independent", 1.0)):
        binned, tol, sync = [], [], []
        for seed in range(n):
            g = generate_joint(models, frames, 1, seed=seed, steps=steps, guidance_scale=guidance, cross_start=cs)
            pose, mel = g.poses[0], g.mels[0]
            on, kin = music_beats(voc(mel)), motion_beats(pose, A.FPS)
            binned.append(binned_scores(kin, on, seconds))
            tol.append(tolerance_scores(kin, on, seconds, 0.1))
            sync.append(sync_correlation(kinematic_amplitude(pose), mel_flux(mel), A.FPS))
        res[f"{name}/binned"], res[f"{name}/tol0.1"] = aggregate(binned), aggregate(tol)
        res[f"{name}/sync"] = {"mean": float(np.mean(sync)), "std": float(np.std(sync)), "n": n}
    return res


def main(argv=None):
    args = list(sys.argv[1:] if argv is None else argv)
    opts = {a.split("=")[0]: int(a.split("=")[1]) for a in args if a.startswith("--")}
    shards, out = Path(args[0]), Path(args[1])
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    res = {}
    if not (out / "vae" / "model.safetensors").exists():
        res["vae"] = vae_runs(shards, out, opts.get("--vae-steps", 600))
        (out / "vae_results.json").write_text(json.dumps(res["vae"], indent=1))
    if not (out / "runs" / "music2motion" / "model.safetensors").exists():
        res["diffusion"] = diffusion_runs(shards, out, opts.get("--diff-steps", 1500))
        (out / "diffusion_results.json").write_text(json.dumps(res["diffusion"], indent=1))
    splits = ("test",) if opts.get("--test-only") else ("val", "test")
    runs = out / "runs"
    if not (runs / "vae").exists():
        (runs / "vae").symlink_to((out / "vae").resolve())
    res["beats"] = beat_figures(shards, runs, steps=opts.get("--eval-steps", 50), splits=splits)
    (out / "beat_results.json").write_text(json.dumps(res["beats"], indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
