"""Beat scores of trained runs on a shard folder's held-out clips, next to the ceiling:

  python -m benchmarks.recipe_beats SHARDS RUNS OUT.json [--tasks music2motion,motion2music]
                                    [--splits test] [--steps 50] [--guidance S] [--joint N]

RUNS holds vae/ and the diffusion runs named in --tasks (e.g. a recipe's OUT/runs after
`momu-data run pipelines/NAME.toml --train`). For each clip of --splits it generates with
guidance and unconditionally (scale 0: the same model and seed without the condition) and
scores LORIS 1 s bins and +-0.1 s matching, plus the envelope sync
(momu_models.evaluate.metrics.sync_correlation, docs/metrics.md); the ceiling is the real motion
against its own music. Used for the Dance-with-Melody figures in docs/results.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from benchmarks.experiment_synthetic import beat_figures, joint_figures


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("shards", help="a shard folder, or several separated by commas")
    ap.add_argument("runs", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--tasks", default="music2motion")
    ap.add_argument("--splits", default="test")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--guidance", type=float, default=None, help="default: each run's tuned scale, else 3")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--joint", type=int, default=0, help="also N joint samples (cross-guidance vs independent), needs both tasks"
    )
    ap.add_argument("--joint-seconds", type=float, default=6.0)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    t = time.perf_counter()
    res = beat_figures(
        [Path(p) for p in a.shards.split(",")],
        a.runs,
        steps=a.steps,
        guidance=a.guidance,
        splits=tuple(a.splits.split(",")),
        tasks=tuple(a.tasks.split(",")),
    )
    if a.joint:
        res.update(joint_figures(a.runs, a.joint, a.joint_seconds, a.steps, a.guidance))
    res["seconds"] = time.perf_counter() - t
    res["settings"] = {
        "steps": a.steps,
        "guidance": a.guidance,
        "splits": a.splits,
        "tasks": a.tasks,
        "shards": a.shards,
        "joint": a.joint,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1))
    for k, v in res.items():
        if isinstance(v, dict) and "F1" in v:
            print(f"{k:30s} BCS {v['BCS']:5.1f}  BHS {v['BHS']:5.1f}  F1 {v['F1']:5.1f}  (n={v['n']})")
        elif isinstance(v, dict) and "mean" in v:
            print(f"{k:30s} envelope correlation {v['mean']:.3f} +- {v['std']:.3f}  (n={v['n']})")


if __name__ == "__main__":
    main()
