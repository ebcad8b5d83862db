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

import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import webdataset as wds

from momu_data import timebase as A
from momu_data.features import kinematic_amplitude
from momu_models.evaluate.metrics import (
    aggregate,
    binned_scores,
    mel_flux,
    motion_beats,
    music_beats,
    sync_correlation,
    tolerance_scores,
)
from momu_models.generate.pipeline import generate_joint, generate_motion, generate_music, load_models
from momu_models.generate.vocoders import get_vocoder
from momu_models.train.diffusion import DiffusionTrainConfig
from momu_models.train.diffusion import train as train_diffusion
from momu_models.train.vae import VAETrainConfig
from momu_models.train.vae import train as train_vae


def _clips(shards: Path, splits=("val", "test")) -> list[dict]:
    """The clips of `splits` with their reference beats computed from the clip alone, as
    `momu-eval beats` computes them for a generated clip: both detectors normalise their
    envelope over what they are given, and the shards' beats.json were detected over the
    whole source video (on a long, dynamic song they are much sparser than per clip)."""
    out = []
    for split in splits:
        tars = sorted(str(p) for p in (shards / split).glob("*.tar"))
        if tars:
            for s in wds.WebDataset(tars, shardshuffle=False, empty_check=False).decode():
                y, _ = sf.read(io.BytesIO(s["audio.flac"]), dtype="float32")
                out.append(
                    {
                        "key": s["__key__"],
                        "pose": s["pose.npy"],
                        "mel": s["mel.npy"],
                        "onsets": music_beats(y),
                        "kin": motion_beats(s["pose.npy"], A.FPS),
                    }
                )
    return out


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
    shards,
    runs: Path,
    steps: int = 50,
    guidance: float = 3.0,
    splits=("val", "test"),
    tasks=("motion2music", "music2motion"),
) -> dict:
    """Beat scores of the trained runs in RUNS (vae/ + the diffusion `tasks`) on the clips of
    `splits` of one shard folder or several, conditioned (guidance) and unconditional (scale
    0, same model, same seeds), next to the ceiling (the real motion's kinematic beats vs its
    own music's onsets).

    Music-to-dance ("m2d") scores the generated dance's kinematic beats against the music's
    onsets. Dance-to-music is scored twice: its onsets against the dance's kinematic beats
    (the condition, "d2m_*_vs_dance", ceiling "ceiling_vs_dance") and against the clip's real
    music ("d2m_*"). "sync" rows hold sync_correlation of the two envelopes."""
    models = load_models(runs, tuple(tasks))
    voc = get_vocoder("griffinlim")
    clips = [c for sh in ([shards] if isinstance(shards, (str, Path)) else shards) for c in _clips(Path(sh), splits)]
    names = ["ceiling"]
    if "music2motion" in tasks:
        names += ["m2d_cond", "m2d_uncond"]
    if "motion2music" in tasks:
        names += ["d2m_cond", "d2m_uncond", "ceiling_vs_dance", "d2m_cond_vs_dance", "d2m_uncond_vs_dance"]
    # 1 s LORIS bins (the paper's figure) and +-0.1 s one-to-one matching: at 2-3 beats/s
    # nearly every 1 s bin holds a beat, so only the tolerance variant separates sync from chance.
    rows = {(k, m): [] for k in names for m in ("binned", "tol0.1")}
    sync = {k: [] for k in names}

    def score(name, gen, ref, dur):
        rows[(name, "binned")].append(binned_scores(gen, ref, dur))
        rows[(name, "tol0.1")].append(tolerance_scores(gen, ref, dur, 0.1))

    for i, c in enumerate(clips):
        dur = c["pose"].shape[0] / A.FPS
        kin_env, onset_env = kinematic_amplitude(c["pose"]), mel_flux(c["mel"])
        score("ceiling", c["kin"], c["onsets"], dur)
        sync["ceiling"].append(sync_correlation(kin_env, onset_env, A.FPS))
        if "motion2music" in tasks:
            score("ceiling_vs_dance", c["onsets"], c["kin"], dur)
            sync["ceiling_vs_dance"].append(sync["ceiling"][-1])
        for tag, s in (("cond", guidance), ("uncond", 0.0)):
            if "music2motion" in tasks:
                pose = generate_motion(models, c["mel"], 1, seed=i, steps=steps, guidance_scale=s).poses[0]
                score(f"m2d_{tag}", motion_beats(pose, A.FPS), c["onsets"], dur)
                sync[f"m2d_{tag}"].append(sync_correlation(kinematic_amplitude(pose), onset_env, A.FPS))
            if "motion2music" in tasks:
                mel = generate_music(models, c["pose"], 1, seed=i, steps=steps, guidance_scale=s).mels[0]
                on = music_beats(voc(mel))
                score(f"d2m_{tag}", on, c["onsets"], dur)
                score(f"d2m_{tag}_vs_dance", on, c["kin"], dur)
                sync[f"d2m_{tag}"].append(sync_correlation(mel_flux(mel), onset_env, A.FPS))
                sync[f"d2m_{tag}_vs_dance"].append(sync_correlation(mel_flux(mel), kin_env, A.FPS))
    res = {f"{k}/{m}": aggregate(v) for (k, m), v in rows.items()}
    res.update(
        {f"{k}/sync": {"mean": float(np.mean(v)), "std": float(np.std(v)), "n": len(v)} for k, v in sync.items() if v}
    )
    res["clips"] = len(clips)
    return res


def joint_figures(
    runs: Path, n: int = 16, seconds: float = 6.0, steps: int = 50, guidance: float = 3.0, cross_start: float = 0.5
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
