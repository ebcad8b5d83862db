"""Checks of the models-only rehearsal venv (`make models-env`, docs/install.md), run with that
venv's python; each fails loudly, with what is wrong, and exits non-zero.

    python tests/models_env.py record FILE   torch's version -> FILE (before `pip install -e .`)
    python tests/models_env.py check FILE    torch is still that version, numpy is 2.x, and
                                             momu is installed from this checkout
    python tests/models_env.py absent NAME…  none of these modules can be imported
    python tests/models_env.py pip-report F  pip's `install --dry-run --report F` of this
                                             checkout would install momu alone (torch, numpy
                                             and every other package already there stay)
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def torch_version() -> str:
    return importlib.metadata.version("torch")


def check(recorded: Path) -> list[str]:
    """What is wrong with the venv after `pip install -e .` (empty: nothing)."""
    bad = []
    before, now = recorded.read_text().strip(), torch_version()
    if now != before:
        bad.append(f"pip install replaced torch {before} with {now}: the dependency must be a range that keeps it")
    numpy = importlib.metadata.version("numpy")
    if not numpy.startswith("2."):
        bad.append(f"numpy is {numpy} after pip install: the models' install must not cap it below 2")
    spec = importlib.util.find_spec("momu_models")
    if spec is None or not Path(spec.origin).resolve().is_relative_to(ROOT):
        bad.append(f"momu_models is not this checkout's ({spec.origin if spec else 'not installed'})")
    return bad


def would_replace(report: Path) -> list[str]:
    """What pip's --dry-run report says it would install besides momu itself (empty: nothing),
    as "name version" (e.g. "torch 2.x" for a torch pin, "numpy 1.26.4" for a numpy cap)."""
    import json

    items = json.loads(report.read_text())["install"]
    return [f"{i['metadata']['name']} {i['metadata']['version']}" for i in items if i["metadata"]["name"] != "momu"]


def present(names: list[str]) -> list[str]:
    """The modules among `names` that this python finds."""
    return [n for n in names if importlib.util.find_spec(n) is not None]


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "record":
        Path(argv[1]).write_text(torch_version() + "\n")
        print(f"torch {torch_version()} before the install")
        return 0
    if len(argv) >= 2 and argv[0] == "check":
        bad = check(Path(argv[1]))
        for line in bad:
            print(f"models-env: {line}", file=sys.stderr)
        if not bad:
            print(f"torch {torch_version()} kept, numpy {importlib.metadata.version('numpy')}, momu from {ROOT}")
        return 1 if bad else 0
    if len(argv) >= 2 and argv[0] == "pip-report":
        extra = would_replace(Path(argv[1]))
        if extra:
            print(f"models-env: pip install -e . would also install {', '.join(extra)}", file=sys.stderr)
            return 1
        print(f"pip install -e . keeps torch {torch_version()} and numpy {importlib.metadata.version('numpy')}")
        return 0
    if len(argv) >= 2 and argv[0] == "absent":
        found = present(argv[1:])
        if found:
            print(f"models-env: these must not be importable here: {', '.join(found)}", file=sys.stderr)
            return 1
        print(f"not importable, as on the GPU machine: {', '.join(argv[1:])}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
