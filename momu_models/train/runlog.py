"""Metrics of a run: metrics.jsonl and metrics.csv in the run folder, and TensorBoard
when the `tensorboard` package is installed. Only the main process writes."""

from __future__ import annotations

import csv
import json
from pathlib import Path


class RunLog:
    def __init__(self, run_dir, enabled: bool = True):
        self.dir = Path(run_dir)
        self.enabled = enabled
        self.tb = None
        self._fields: list[str] | None = None
        if not enabled:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.dir / "tensorboard"))
        except ImportError:  # tensorboard not installed: the JSONL/CSV logs are complete on their own
            self.tb = None

    def log(self, step: int, metrics: dict, prefix: str = "") -> None:
        if not self.enabled:
            return
        row = {"step": step, **{f"{prefix}{k}": float(v) for k, v in metrics.items()}}
        with open(self.dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        # CSV in long format (step, name, value): new metric names never break the header.
        new = not (self.dir / "metrics.csv").exists()
        with open(self.dir / "metrics.csv", "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(["step", "name", "value"])
            for k, v in row.items():
                if k != "step":
                    w.writerow([step, k, v])
        if self.tb is not None:
            for k, v in row.items():
                if k != "step":
                    self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
