"""Regenerate a checked-in dataset manifest from its recipe.

Runs the recipe's data stages (stages already up to date are skipped, so after a first build
this is quick), then copies the run's OUT/manifest.csv to the recipe's [manifest] reference
(manifests/NAME.csv). Before copying, the run compares its result with the file it replaces
and prints the differences, so a changed split or checksum is never committed unnoticed.

    python manifests/make_manifest.py pipelines/dance_with_melody.toml [--source DIR] [--out DIR]

Run it from the repository root (recipe paths are relative to the working directory).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path


def make(
    recipe: str,
    source: str | None = None,
    out: str | None = None,
    dest: str | None = None,
    jobs: int | None = None,
    overrides=(),
) -> Path:
    from momu_data.recipes import RecipeError, Runner, load_recipe, read_manifest_csv

    rec = load_recipe(recipe, overrides)
    target = Path(dest or rec["manifest"]["reference"] or f"manifests/{rec.name}.csv")
    runner = Runner(rec, out=out, source=source, jobs=jobs, log=print)
    for r in runner.run():
        print(f"{r.name}: {r.status} {r.detail}")
    built = runner.out / "manifest.csv"
    if not built.exists():
        raise RecipeError(f"{built} was not written")
    n = len(read_manifest_csv(built))
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(built, target)
    print(f"wrote {target} ({n} items)")
    return target


def main(argv=None, recipe: str | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    if recipe is None:
        ap.add_argument("recipe", help="pipelines/NAME.toml")
    ap.add_argument("--source", help="raw data folder (default: the recipe's [source] path)")
    ap.add_argument("--out", help="output folder of the run (default: the recipe's out)")
    ap.add_argument("--dest", help="manifest file to write (default: the recipe's [manifest] reference)")
    ap.add_argument("-j", "--jobs", type=int, default=None, help="parallel workers")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="SECTION.KEY=VALUE override")
    a = ap.parse_args(argv)
    from momu_data.recipes import RecipeError

    try:
        make(recipe or a.recipe, a.source, a.out, a.dest, a.jobs, a.overrides)
    except (RecipeError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
