import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# librosa compiles with numba on first use (~14 s); keep the compiled cache in the repo's
# ignored .cache so later runs and test processes reuse it.
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))
os.environ.setdefault("OMP_NUM_THREADS", "1")

SHARED = ROOT.parent / "shared" / "data"


def shared_data() -> Path:
    """../shared/data when present (development machines), else skip with the reason."""
    if not SHARED.is_dir():
        pytest.skip(f"real data not available: {SHARED} is absent (fresh clone)")
    return SHARED
