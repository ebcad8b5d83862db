"""Packages that only some uses need, imported where they are used, with a one-line error that
names what to install.

A models-only install (`pip install momu`, e.g. on a GPU machine; docs/install.md) trains,
generates and scores from shards written elsewhere without the dataset builder's packages:
mediapipe and ai-edge-litert (the pose models), dask (`--backend dask`), and OpenCV (drawing
videos, `pip install 'momu[render]'`, or the OpenCV that `momu[data]` brings with mediapipe).
PyAV is a dependency of every install, but a machine that cannot fetch it (no registry) runs
without it as long as nothing decodes or writes media (`momu-generate --no-render`).
"""

from __future__ import annotations

import importlib

# import name -> (the package's name for people, what to pass to pip to get it)
PACKAGES = {
    "av": ("PyAV", "av"),
    "cv2": ("OpenCV", "'momu[render]'"),
    "mediapipe": ("mediapipe", "'momu[data]'"),
    "ai_edge_litert": ("ai-edge-litert", "'momu[data]'"),
    "distributed": ("dask.distributed", "'momu[data]'"),
}


class MissingPackage(ImportError):
    """An optional package is not installed; the message is one line: what needs it and the
    pip command that installs it."""


def import_optional(*modules: str, purpose: str, install: str | None = None):
    """Import `modules` (keys of PACKAGES, or their submodules such as "ai_edge_litert.interpreter")
    for `purpose` ("rendering the video"): the module, or a tuple of them for several. Raises
    MissingPackage naming every missing one, e.g. "rendering the video needs PyAV and OpenCV:
    pip install av 'momu[render]' (or 'momu[data]' for OpenCV, with the dataset builder)";
    `install` replaces the pip arguments (the pose models: "'momu[data]'" for all of them). A
    package that is installed but fails to import (a broken shared library) raises its own
    error unchanged."""
    found, missing = [], []
    for name in modules:
        top = name.split(".")[0]
        try:
            found.append(importlib.import_module(name))
        except ModuleNotFoundError as e:
            if e.name is None or e.name.split(".")[0] != top:
                raise  # the package is there, something it imports is not: its own message says what
            missing.append(top)
    if missing:
        raise MissingPackage(missing_message(purpose, missing, install))
    return found[0] if len(found) == 1 else tuple(found)


def missing_message(purpose: str, missing: list[str], install: str | None = None) -> str:
    """The one-line error for packages (import names) that `purpose` needs and lacks."""
    names = [PACKAGES.get(m, (m, m))[0] for m in missing]
    args = [install] if install else list(dict.fromkeys(PACKAGES.get(m, (m, m))[1] for m in missing))
    what = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    msg = f"{purpose} needs {what}: pip install {' '.join(args)}"
    if "cv2" in missing and "'momu[data]'" not in args:
        msg += " (or 'momu[data]' for OpenCV, with the dataset builder)"
    return msg
