"""Regenerate manifests/dance_with_melody.csv: 17 dances of the Dance with Melody set
(item id, duration, music group, dance type label, split, the clock used, and the sha256 of
every public file) from the recipe run on ../shared/data/paired/dance_with_melody/ (or
--source DIR). Run from the repository root: python manifests/make_dance_with_melody.py"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_manifest import main

if __name__ == "__main__":
    sys.exit(main(recipe="pipelines/dance_with_melody.toml"))
