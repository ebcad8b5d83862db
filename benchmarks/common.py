"""Machine description and result recording for the benchmarks."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import resource
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 2**20:.0f} GiB"
                break
    except OSError:
        pass
    gpu = "none"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": cores, "memory": mem, "gpu": gpu}


def versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("torch", "mediapipe", "av", "numpy", "librosa", "webdataset"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def peak_rss_mb(children: bool = False) -> float:
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024  # Linux reports KiB


def append_results(title: str, rows: list[tuple[str, str]], notes: str = "") -> str:
    m, v = machine(), versions()
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = [
        f"## {title} ({now})",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, GPU: {m['gpu']}. "
        + "Versions: "
        + ", ".join(f"{k} {x}" for k, x in v.items())
        + ".",
        "",
        "| measure | value |",
        "|---|---|",
    ]
    lines += [f"| {a} | {b} |" for a, b in rows]
    if notes:
        lines += ["", notes]
    text = "\n".join(lines) + "\n\n"
    if not RESULTS.exists():
        RESULTS.write_text(
            "# Benchmark results\n\nAppended by `make bench` (`python -m benchmarks`), newest last.\n\n"
        )
    with open(RESULTS, "a") as f:
        f.write(text)
    return text
