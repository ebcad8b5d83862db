import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# librosa compiles with numba on first use (~14 s); keep the compiled cache in the repo's
# ignored .cache so later runs and test processes reuse it.
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))
os.environ.setdefault("OMP_NUM_THREADS", "1")

SHARED = ROOT.parent / "shared" / "data"


def pytest_runtest_setup(item):
    """Tests marked `shared` use ../shared/data: skip them, saying why, where it is absent."""
    if item.get_closest_marker("shared") and not SHARED.is_dir():
        pytest.skip(f"real data not available: {SHARED} is absent (a fresh clone has no ../shared)")


@pytest.fixture(scope="session")
def toy_shards(tmp_path_factory):
    """Shards of 8 keypoint-file 'dances' (COCO-17 + click tracks): 16 clips of 4 s,
    train/val/test = 12/2/2 clips in shards of at most 4 clips. Cheap: no pose model."""
    from media import make_coco_item
    from typer.testing import CliRunner

    from momu_data.cli.data import app

    root = tmp_path_factory.mktemp("toy")
    for k in range(8):
        make_coco_item(root / "src", f"d{k}", seconds=8.0, bpm=90 + 8 * k, seed=k)
    r = CliRunner()
    res = r.invoke(
        app,
        [
            "extract",
            str(root / "src"),
            "--pose-source",
            "coco",
            "--audio",
            str(root / "src"),
            "--fps",
            "30",
            "--out",
            str(root / "data"),
            "--clip-seconds",
            "4",
            "-j",
            "1",
        ],
    )
    assert res.exit_code == 0, res.output
    res = r.invoke(
        app, ["shard", str(root / "data"), "--out", str(root / "shards"), "--split", "6/1/1", "--shard-size", "4"]
    )
    assert res.exit_code == 0, res.output
    return root / "shards"
