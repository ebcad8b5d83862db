"""Regenerate manifests/demo.csv: the 20 synthetic demo videos (`make demo`), with the
split the demo shards get. Runs the demo recipe into work/demo (what `make demo` builds;
up-to-date stages are skipped). Run from the repository root: python manifests/make_demo.py"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_manifest import main

if __name__ == "__main__":
    sys.exit(main(recipe="pipelines/demo.toml"))
