"""Write manifests/aistpp.csv for the AIST++ sequences you have.

AIST++ is not redistributed here, so no AIST++ manifest is checked in: what is shipped is
the rule (pipelines/aistpp.toml: one item per sequence and camera, labels genre / dancer /
music / choreography from the sequence name, the sequences of ignore_list.txt left out,
the split grouped by music with seed 0 and 80/10/10 of the duration, or a published
protocol: --set split.protocol=loris|random|crossmodal, lists in manifests/splits/) and this
script, which applies it to your copy:

    python manifests/make_aistpp.py --source /data/aistpp [--set pose.cameras=c01] [--set split.protocol=loris]

It runs the recipe's data stages (keypoints + wav, no pose model) and copies the run's
manifest.csv to manifests/aistpp.csv.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_manifest import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if not any(a == "--source" or a.startswith("--source=") for a in argv):
        print("error: pass --source DIR (your AIST++ folder: keypoints2d/, wav/, ignore_list.txt)", file=sys.stderr)
        sys.exit(2)
    if not any(a == "--dest" or a.startswith("--dest=") for a in argv):
        argv += ["--dest", "manifests/aistpp.csv"]
    sys.exit(main(argv, recipe="pipelines/aistpp.toml"))
