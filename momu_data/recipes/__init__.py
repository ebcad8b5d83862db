"""Declarative dataset recipes: one TOML file per dataset (``pipelines/*.toml``), run as a
chain of stages that skip themselves when their outputs are up to date.

    schema            the recipe file: SCHEMA, parse_recipe, load_recipe, RecipeError
    runner            the stages and their up-to-date checks: Runner, run_recipe
    stamps            fingerprints and digests behind the checks
    labels            AIST name labels and exclusion lists
    dataset_manifest  OUT/manifest.csv (manifests/NAME.csv): build, write, read, compare
    splits            [split] protocol: the paper's random 90/5/5, LORIS's and AIST++'s cross-modal lists

    from momu_data.recipes import run_recipe
    results = run_recipe("pipelines/demo.toml", out="work/demo")
"""

from momu_data.recipes.dataset_manifest import build_manifest, compare_manifests, read_manifest_csv, write_manifest_csv
from momu_data.recipes.labels import aist_metadata, is_excluded, read_name_list
from momu_data.recipes.runner import CommandError, Runner, Stage, StageResult, run_command, run_recipe
from momu_data.recipes.schema import (
    SCHEMA,
    TRAIN_MODELS,
    Recipe,
    RecipeError,
    apply_override,
    load_recipe,
    parse_recipe,
)

__all__ = [
    "SCHEMA",
    "TRAIN_MODELS",
    "CommandError",
    "Recipe",
    "RecipeError",
    "Runner",
    "Stage",
    "StageResult",
    "aist_metadata",
    "apply_override",
    "build_manifest",
    "compare_manifests",
    "is_excluded",
    "load_recipe",
    "parse_recipe",
    "read_manifest_csv",
    "read_name_list",
    "run_command",
    "run_recipe",
    "write_manifest_csv",
]
