"""Does the condition work? Guided against unconditional generation on a shard set's held-out clips.

For every clip of the chosen splits (clips no model trained on: `momu-data shard` keeps val
and test apart by video) the trained models generate twice with the same seed: with
classifier-free guidance (the condition: the clip's music or dance) and with guidance scale 0
(the same model without the condition). Both are scored against the clip's other modality:

- music-to-dance: the generated dance's kinematic beats against the music's onsets;
- dance-to-music: the onsets of the generated music (Griffin-Lim) against the dance's
  kinematic beats (the condition), and against the clip's real music.

Next to them, the ceiling: the clip's real dance against its own music. Beats are detected
per clip exactly as `momu-eval beats` detects them in a generated clip (motion_beats,
music_beats at 16 kHz: the data's rate), scored with one-to-one matching within
`tolerance` seconds and with LORIS's 1 s bins, plus the envelope correlation
(sync_correlation). `momu-eval heldout` and `make demo` print `summary_lines`; the
benchmarks (benchmarks/recipe_beats.py, experiment_synthetic.py) use the same function.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from momu_data import timebase as A
from momu_data.features import kinematic_amplitude
from momu_data.loader import open_shards, shard_urls
from momu_models.evaluate.metrics import (
    aggregate,
    binned_scores,
    mel_flux,
    motion_beats,
    music_beats,
    sync_correlation,
    tolerance_scores,
)

log = logging.getLogger(__name__)

TASKS = ("music2motion", "motion2music")


def heldout_clips(shards, splits=("val", "test")) -> list[dict]:
    """The clips of `splits` of one shard folder or several (read with the loader's checks),
    with their reference beats computed from the clip alone, as `momu-eval beats` computes
    them for a generated clip: both detectors normalise their envelope over what they are
    given, and the shards' beats.json were detected over the whole source video."""
    import soundfile as sf

    folders = [shards] if isinstance(shards, (str, Path)) else list(shards)
    out = []
    for folder in folders:
        for split in splits:
            urls = shard_urls(Path(folder), split) if (Path(folder) / split).is_dir() else []
            if not urls:
                continue
            ds = open_shards(urls, shardshuffle=False, empty_check=False)
            for sample in ds:  # checked against its checksums; the arrays' values below
                arrays, flac = ds.check.arrays(sample), sample.get("audio.flac")
                if flac is None:
                    raise ValueError(f"{arrays['key']} in {folder}/{split} has no audio.flac: not a MoMu shard sample")
                y, _ = sf.read(io.BytesIO(flac), dtype="float32")
                out.append(
                    {
                        "key": arrays["key"],
                        "pose": arrays["pose"],
                        "mel": arrays["mel"],
                        "onsets": music_beats(y),
                        "kin": motion_beats(arrays["pose"], A.FPS),
                    }
                )
    return out


def _stats(values) -> dict:
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "n": len(values)}


def _setup(shards, runs, tasks, splits, steps, solver, samples, vocoder, smooth_seconds=None):
    """What a held-out evaluation needs: the tasks (checked), the clips, the models, the steps
    and solver (the runs' defaults when None) and the vocoder (for dance-to-music).
    smooth_seconds: the generated motion's smoothing (None: as momu-generate smooths it)."""
    from momu_models.diffusion.process import SOLVERS
    from momu_models.generate.pipeline import default_solver, default_steps, load_models
    from momu_models.generate.vocoders import get_vocoder

    tasks = tuple(tasks)
    unknown = set(tasks) - set(TASKS)
    if unknown or not tasks:
        raise ValueError(f"unknown task(s) {sorted(unknown) or tasks}; choose from {list(TASKS)}")
    clips = heldout_clips(shards, splits)
    if not clips:
        raise ValueError(f"no clips in the {'/'.join(splits)} split(s) of {shards}")
    if samples < 1:
        raise ValueError(f"samples must be at least 1, not {samples}")
    if smooth_seconds is not None and smooth_seconds < 0:
        raise ValueError(f"smoothing must be 0 (off) or a positive number of seconds, not {smooth_seconds}")
    models = load_models(Path(runs), tasks, smooth_seconds=smooth_seconds)
    steps = default_steps(models.cfgs) if steps is None else steps
    solver = default_solver(models.cfgs) if solver is None else solver
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; choose {' or '.join(SOLVERS)}")
    voc = get_vocoder(vocoder) if "motion2music" in tasks else None
    return tasks, clips, models, steps, solver, voc


def _generated(models, task, clip, seed, scale, samples, steps, solver, voc) -> list[tuple[np.ndarray, np.ndarray]]:
    """`samples` generations for one clip at one guidance scale (0: unconditional), each with
    its beats: (pose, kinematic beats) for music2motion, (mel, the vocoded music's onsets) for
    motion2music."""
    from momu_models.generate.pipeline import generate_motion, generate_music

    if task == "music2motion":
        poses = generate_motion(models, clip["mel"], samples, seed, steps, scale, solver=solver).poses
        return [(p, motion_beats(p, A.FPS)) for p in poses]
    mels = generate_music(models, clip["pose"], samples, seed, steps, scale, solver=solver).mels
    return [(m, music_beats(voc(m))) for m in mels]


def evaluate_heldout(
    shards,
    runs,
    tasks=TASKS,
    splits=("val", "test"),
    steps: int | None = None,
    guidance: float | None = None,
    tolerance: float = 0.1,
    vocoder: str = "griffinlim",
    progress: Callable[[int, int], None] | None = None,
    solver: str | None = None,
    samples: int = 1,
    smooth_seconds: float | None = None,
) -> dict:
    """Beat scores of the trained runs in `runs` (vae/ plus the diffusion `tasks`) on the
    held-out clips of `shards`, guided ("*_cond") and unconditional ("*_uncond", scale 0,
    same model and seed), next to the ceiling. Keys "NAME/tol" (one-to-one within
    `tolerance` s), "NAME/binned" (LORIS 1 s bins): aggregate() dicts (BCS, CSD, BHS, HSD,
    F1 in percent, n); "NAME/sync": the envelope correlation's mean, std, n; "clips".

    NAME: ceiling (real dance vs its music), m2d_cond / m2d_uncond (generated dance vs the
    music), d2m_cond_vs_dance / d2m_uncond_vs_dance (generated music vs the dance),
    ceiling_vs_dance (the real music vs the dance), d2m_cond / d2m_uncond (generated music vs
    the real music). progress(done, total) is called once the models are loaded (done 0)
    and after each clip. steps / solver: None = what momu-generate samples these runs with
    (pipeline.default_steps / default_solver). samples: generated samples per clip and
    condition (one batch, seed = the clip's index), each scored as a pair: more samples
    average out the sampling noise of the guided-vs-unconditional difference. guidance: None =
    each run's own scale (Models.guidance_for: as `momu-eval guidance` chose it, else 3).
    smooth_seconds: the generated motion's Gaussian smoothing (0: off; None: as momu-generate,
    pipeline.default_smooth_seconds); the real dances are scored as they are."""
    tasks, clips, models, steps, solver, voc = _setup(
        shards, runs, tasks, splits, steps, solver, samples, vocoder, smooth_seconds
    )
    scales = {t: models.guidance_for(t, guidance) for t in tasks}
    names = ["ceiling"]
    if "music2motion" in tasks:
        names += ["m2d_cond", "m2d_uncond"]
    if "motion2music" in tasks:
        names += ["ceiling_vs_dance", "d2m_cond_vs_dance", "d2m_uncond_vs_dance", "d2m_cond", "d2m_uncond"]
    rows = {(k, m): [] for k in names for m in ("binned", "tol")}
    sync = {k: [] for k in names}
    if progress is not None:
        progress(0, len(clips))

    def score(name, gen, ref, dur):
        rows[(name, "binned")].append(binned_scores(gen, ref, dur))
        rows[(name, "tol")].append(tolerance_scores(gen, ref, dur, tolerance))

    for i, c in enumerate(clips):
        dur = c["pose"].shape[0] / A.FPS
        kin_env, onset_env = kinematic_amplitude(c["pose"]), mel_flux(c["mel"])
        score("ceiling", c["kin"], c["onsets"], dur)
        sync["ceiling"].append(sync_correlation(kin_env, onset_env, A.FPS))
        if "motion2music" in tasks:
            score("ceiling_vs_dance", c["onsets"], c["kin"], dur)
            sync["ceiling_vs_dance"].append(sync["ceiling"][-1])
        for tag in ("cond", "uncond"):
            if "music2motion" in tasks:
                scale = scales["music2motion"] if tag == "cond" else 0.0
                for pose, beats in _generated(models, "music2motion", c, i, scale, samples, steps, solver, voc):
                    score(f"m2d_{tag}", beats, c["onsets"], dur)
                    sync[f"m2d_{tag}"].append(sync_correlation(kinematic_amplitude(pose), onset_env, A.FPS))
            if "motion2music" in tasks:
                scale = scales["motion2music"] if tag == "cond" else 0.0
                for mel, on in _generated(models, "motion2music", c, i, scale, samples, steps, solver, voc):
                    score(f"d2m_{tag}", on, c["onsets"], dur)
                    score(f"d2m_{tag}_vs_dance", on, c["kin"], dur)
                    sync[f"d2m_{tag}"].append(sync_correlation(mel_flux(mel), onset_env, A.FPS))
                    sync[f"d2m_{tag}_vs_dance"].append(sync_correlation(mel_flux(mel), kin_env, A.FPS))
        if progress is not None:
            progress(i + 1, len(clips))
    res = {f"{k}/{m}": aggregate(v) for (k, m), v in rows.items()}
    res.update({f"{k}/sync": _stats(v) for k, v in sync.items() if v})
    res["clips"] = len(clips)
    res["settings"] = {
        "steps": steps,
        "solver": solver,
        "samples": samples,
        "guidance": scales,
        "tolerance": tolerance,
        "splits": list(splits),
        "smooth_seconds": models.smooth_seconds,
    }
    return res


def summary_lines(res: dict) -> list[str]:
    """One line per direction evaluated: the guided F1 against the unconditional one and the
    ceiling, e.g. "music-to-dance: F1 57.3 guided (scale 3) vs 41.1 without the condition ..."."""
    tol = res["settings"]["tolerance"]
    n = res["clips"]
    k = res["settings"].get("samples", 1)
    per_clip = f" x {k} samples" if k > 1 else ""
    out = []
    scales = res["settings"].get("guidance")
    for key, title, against, ceiling, task in (
        ("m2d", "music-to-dance", "the dance's kinematic beats vs the music's onsets", "ceiling", TASKS[0]),
        ("d2m", "dance-to-music", "the music's onsets vs the dance's kinematic beats", "ceiling_vs_dance", TASKS[1]),
    ):
        suffix = "_vs_dance" if key == "d2m" else ""
        if f"{key}_cond{suffix}/tol" not in res:
            continue
        g, u = res[f"{key}_cond{suffix}/tol"]["F1"], res[f"{key}_uncond{suffix}/tol"]["F1"]
        c = res[f"{ceiling}/tol"]["F1"]
        scale = scales.get(task) if isinstance(scales, dict) else scales
        at = f" (scale {scale:g})" if scale is not None else ""
        out.append(
            f"{title}: beat F1 (±{tol:g} s) {g:.1f} guided{at} vs {u:.1f} without the condition "
            f"({g - u:+.1f}; real pairs {c:.1f}), {against}, {n} held-out clips{per_clip}"
        )
    return out


def tune_guidance(
    shards,
    runs,
    tasks=TASKS,
    split: str = "val",
    scales=(1.5, 3.0, 5.0, 7.0),
    steps: int | None = None,
    tolerance: float = 0.1,
    vocoder: str = "griffinlim",
    progress: Callable[[int, int], None] | None = None,
    solver: str | None = None,
    samples: int = 1,
) -> dict:
    """The guidance scale that puts each direction's samples on the beat: on every clip of
    `split` (val: a split the models never trained on, kept apart from the test clips that
    `momu-eval heldout` reports), generate at each scale (same seed per clip) and score the
    guided samples as `evaluate_heldout` does: music-to-dance by the dance's kinematic beats
    against the music's onsets, dance-to-music by the music's onsets against the dance's
    kinematic beats, one-to-one within `tolerance` s. Returns task -> {"f1": {scale: F1},
    "guidance": the best scale (generate.guidance.choose_scale), "chosen_on": settings};
    `save_guidance` records it in the run. progress(done, total) counts clip x scale
    generations."""
    from momu_models.generate.guidance import choose_scale

    scales = sorted({float(s) for s in scales})
    if not scales or any(s < 0 for s in scales):
        raise ValueError(f"guidance scales must be zero or more, got {scales}")
    tasks, clips, models, steps, solver, voc = _setup(shards, runs, tasks, (split,), steps, solver, samples, vocoder)
    total, done = len(tasks) * len(scales) * len(clips), 0
    if progress is not None:
        progress(0, total)
    out = {}
    for task in tasks:
        f1 = {}
        for scale in scales:
            rows = []
            for i, c in enumerate(clips):
                dur = c["pose"].shape[0] / A.FPS
                ref = c["onsets"] if task == "music2motion" else c["kin"]
                for _, beats in _generated(models, task, c, i, scale, samples, steps, solver, voc):
                    rows.append(tolerance_scores(beats, ref, dur, tolerance))
                done += 1
                if progress is not None:
                    progress(done, total)
            f1[scale] = aggregate(rows)["F1"]
        out[task] = {
            "f1": f1,
            "guidance": choose_scale(f1),
            "chosen_on": {
                "shards": str(shards),
                "split": split,
                "clips": len(clips),
                "samples": samples,
                "steps": steps,
                "solver": solver,
                "tolerance": tolerance,
                "metric": "beat F1 (one-to-one within the tolerance)",
            },
        }
    return out
