import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# librosa compiles with numba on first use (~14 s); keep the compiled cache in the repo's
# ignored .cache so later runs and test processes reuse it.
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))
os.environ.setdefault("OMP_NUM_THREADS", "1")

SHARED = ROOT.parent / "shared" / "data"

# `make models-ci`: run as on a models-only install, the dataset builder's packages absent
# (they may be installed here: hidden from this process, as tests/test_optional_deps.py does
# in its child processes). Tests that need one skip, saying so, or must pass without it.
HIDDEN = ("av", "cv2", "mediapipe", "dask", "distributed", "ai_edge_litert")


class _HideOptional:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r} (hidden: MOMU_HIDE_OPTIONAL)", name=name)
        return None


if os.environ.get("MOMU_HIDE_OPTIONAL"):
    import sys

    sys.meta_path.insert(0, _HideOptional())


def pytest_runtest_setup(item):
    """Tests marked `shared` use ../shared/data: skip them, saying why, where it is absent."""
    if item.get_closest_marker("shared") and not SHARED.is_dir():
        pytest.skip(f"real data not available: {SHARED} is absent (a fresh clone has no ../shared)")


@pytest.fixture(scope="session")
def toy_shards(tmp_path_factory):
    """Shards of 8 keypoint-file 'dances' (COCO-17 + click tracks): 16 clips of 4 s,
    train/val/test = 12/2/2 clips in shards of at most 4 clips. Cheap: no pose model.

    With $MOMU_TOY_SHARDS set, those shards instead (`python tests/media.py toy-shards OUT`
    writes them): for a machine that cannot extract, such as a models-only install without
    PyAV (`make models-check`, the GPU machine). Tests must not write into them."""
    from media import check_toy_shards, make_toy_shards

    given = os.environ.get("MOMU_TOY_SHARDS")
    if given:
        try:
            return check_toy_shards(given)
        except ValueError as e:
            pytest.fail(str(e), pytrace=False)
    return make_toy_shards(tmp_path_factory.mktemp("toy"))
