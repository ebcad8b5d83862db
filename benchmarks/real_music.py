"""Dance for real music the models never saw: beat F1 of guided and unconditional dances
against the music's onsets, next to a time-shifted floor (docs/results.md, "make demo"):

  python -m benchmarks.real_music MUSIC_DIR RUNS OUT.json [--seconds 20] [--steps 25] [--guidance S]

Every audio file directly in MUSIC_DIR (the `.hq.ogg` copies of ../shared/data/music are
skipped: the same tracks at a higher bitrate) is decoded at 16 kHz, cut to its first
`--seconds` and given a dance by the music-to-dance model in RUNS (vae/ + music2motion/):
guided and unconditional (scale 0, same model and seed). Each dance's kinematic beats are
scored against the music's onsets (+-0.1 s one-to-one matching, as `momu-eval heldout`). The
floor scores the guided dance's beats shifted by 0.5 s and 1.0 s (either way, the beats
staying inside the clip) against the same onsets: what beat density alone scores.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from momu_data import timebase as A
from momu_data.features import log_mel
from momu_data.media import AUDIO_EXTENSIONS, load_audio
from momu_models.evaluate.metrics import aggregate, motion_beats, music_beats, tolerance_scores
from momu_models.generate.pipeline import generate_motion, load_models

SHIFTS = (-1.0, -0.5, 0.5, 1.0)


def shifted(beats: np.ndarray, shift: float, duration: float) -> np.ndarray:
    b = np.asarray(beats, float) + shift
    return b[(b >= 0) & (b < duration)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("music", type=Path)
    ap.add_argument("runs", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--guidance", type=float, default=None, help="default: the run's tuned scale, else 3")
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    models = load_models(a.runs, ("music2motion",))
    files = sorted(
        p for p in a.music.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.endswith(".hq.ogg")
    )
    rows = {"guided": [], "unconditional": [], "shifted floor": []}
    per_track = []
    for i, path in enumerate(files):
        y, _ = load_audio(path)
        y = y[: int(a.seconds * A.SR)]
        mel = log_mel(y)
        dur = mel.shape[1] / A.FPS
        onsets = music_beats(y)
        track = {"file": path.name, "seconds": round(dur, 2), "onsets": len(onsets)}
        for name, scale in (("guided", models.guidance_for("music2motion", a.guidance)), ("unconditional", 0.0)):
            pose = generate_motion(models, mel, 1, seed=i, steps=a.steps, guidance_scale=scale).poses[0]
            kin = motion_beats(pose, A.FPS)
            s = tolerance_scores(kin, onsets, dur, 0.1)
            rows[name].append(s)
            track[name] = {"beats": len(kin), "F1": round(100 * 2 * s.bcs * s.bhs / max(s.bcs + s.bhs, 1e-9), 1)}
            if name == "guided":
                for sh in SHIFTS:
                    rows["shifted floor"].append(tolerance_scores(shifted(kin, sh, dur), onsets, dur, 0.1))
        per_track.append(track)
        print(json.dumps(track))
    res = {k: aggregate(v) for k, v in rows.items()}
    res["tracks"] = per_track
    res["settings"] = vars(a) | {"music": str(a.music), "runs": str(a.runs), "out": str(a.out)}
    res["settings"]["guidance"] = models.guidance_for("music2motion", a.guidance)
    res["seconds_taken"] = time.perf_counter() - t0
    a.out.write_text(json.dumps(res, indent=1))
    for k in rows:
        print(f"{k:14s} F1 {res[k]['F1']:5.1f}  BCS {res[k]['BCS']:5.1f}  BHS {res[k]['BHS']:5.1f}  n {res[k]['n']}")


if __name__ == "__main__":
    main()
