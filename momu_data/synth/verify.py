"""Extraction accuracy against the synthetic ground truth: PCK of extracted keypoints.

The extracted motion of a video (`DATA/items/<id>.npz`, torso units on the mel time base)
is mapped back to pixels with the video's stored normalisation and compared with the
ground-truth keypoints (`<video>.gt.json`) linearly interpolated to the same times.
PCK@a = fraction of joints closer than a x the ground-truth torso size (neck to mid-hip).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from momu_data import timebase as A
from momu_data.extract import load_item
from momu_data.skeleton import torso_size


def pck(data, item_id: str, gt_path, thresholds=(0.1, 0.2)) -> dict:
    data = Path(data)
    rec = json.loads((data / "items" / f"{item_id}.json").read_text())
    view = rec["views"][0]
    f = load_item(data, item_id)
    gt = json.loads(Path(gt_path).read_text())
    gt_xy = np.asarray(gt["keypoints"], np.float64)
    gt_t = np.asarray(gt["frame_times"], np.float64)
    T = f["pose"].shape[0]
    t = view["t0"] + np.arange(T) / A.FPS
    ok = (t >= gt_t[0]) & (t <= gt_t[-1])
    pred = f["pose"][ok] * view["scale"] + np.asarray(view["centre"])
    flat = gt_xy.reshape(len(gt_t), -1)
    ref = np.stack([np.interp(t[ok], gt_t, flat[:, i]) for i in range(flat.shape[1])], 1).reshape(-1, 14, 2)
    err = np.linalg.norm(pred - ref, axis=-1) / torso_size(ref)[:, None]
    out = {f"pck@{a:g}": float((err < a).mean()) for a in thresholds}
    out["frames"] = int(ok.sum())
    out["person_frac"] = float(view["person_frac"])
    out["median_error_torso"] = float(np.median(err))
    return out


def evaluate_folder(videos, data) -> dict:
    """PCK over every synthetic video of `videos` that was extracted into `data`."""
    rows = {}
    for gt in sorted(Path(videos).glob("*.gt.json")):
        vid = gt.name[: -len(".gt.json")]
        if (Path(data) / "items" / f"{vid}.npz").exists():
            rows[vid] = pck(data, vid, gt)
    if not rows:
        raise FileNotFoundError(f"no extracted synthetic videos of {videos} in {data}")
    keys = [k for k in next(iter(rows.values())) if k.startswith("pck@")]
    summary = {k: float(np.mean([r[k] for r in rows.values()])) for k in keys}
    summary["person_frac"] = float(np.mean([r["person_frac"] for r in rows.values()]))
    return {"videos": rows, "mean": summary}


if __name__ == "__main__":
    import sys

    res = evaluate_folder(sys.argv[1], sys.argv[2])
    for k, v in res["videos"].items():
        print(k, " ".join(f"{a} {b:.3f}" for a, b in v.items() if isinstance(b, float)))  # noqa: T201 (script)
    print("mean", " ".join(f"{a} {b:.3f}" for a, b in res["mean"].items()))  # noqa: T201 (script)
