"""MoMu's dataset builder: dance videos -> 14-keypoint poses, 16 kHz log-mels and rhythm
features -> clips -> WebDataset shards -> a torch loader.

The names below are the public API, imported on first use (PEP 562): the reading side
(`momu_data.loader`, `momu_data.shards`, `momu_data.features`), which `momu_models` uses, then
needs neither the pose model (mediapipe) nor the video libraries (PyAV, OpenCV) that only the
dataset builder does (`pip install 'momu[data]'`, docs/install.md). The modules behind them
(media, pose/, features, clips, extract, jobs, shards, loader, recipes/, synth/) are the
implementation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

# librosa compiles its peak picker and mel code with numba on first use (~14 s); numba can
# cache the result only in a writable folder, which site-packages often is not. Set once here
# (every entry point imports momu_data before librosa) and respect a caller's own setting.
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "momu" / "numba"))

# Bound now, not on first use: the function `loader` shares its name with its module, and the
# first `import momu_data.loader` anywhere would otherwise leave the module under that name.
# The module needs numpy alone at import.
from momu_data.lazy import lazy_exports
from momu_data.loader import ShardError, dataset, loader

# public name -> (module, attribute in that module)
_EXPORTS = {
    "FPS": ("momu_data.timebase", "FPS"),
    "SR": ("momu_data.timebase", "SR"),
    # media and poses
    "MediaError": ("momu_data.media", "MediaError"),
    "PoseTrack": ("momu_data.pose.track", "PoseTrack"),
    "estimate_video": ("momu_data.pose.mediapipe_pose", "estimate_video"),
    "iter_frames": ("momu_data.media", "iter_frames"),
    "load_audio": ("momu_data.media", "load_audio"),
    "probe_video": ("momu_data.media", "probe_video"),
    "motion_from_video": ("momu_data.extract", "motion_from_video"),
    # features
    "directogram": ("momu_data.features", "directogram"),
    "kinematic_amplitude": ("momu_data.features", "kinematic_amplitude"),
    "kinematic_beats": ("momu_data.features", "kinematic_beats"),
    "log_mel": ("momu_data.features", "log_mel"),
    "onsets": ("momu_data.features", "onsets"),
    # the dataset: extract -> shard -> load
    "EnvironmentFailure": ("momu_data.extract", "EnvironmentFailure"),
    "ExtractConfig": ("momu_data.extract", "ExtractConfig"),
    "ExtractionResult": ("momu_data.jobs", "ExtractionResult"),
    "JobError": ("momu_data.jobs", "JobError"),
    "build_jobs": ("momu_data.jobs", "build_jobs"),
    "extract_dataset": ("momu_data.jobs", "extract_dataset"),
    "load_item": ("momu_data.extract", "load_item"),
    "write_shards": ("momu_data.shards", "write_shards"),
    "verify_shards": ("momu_data.inspect", "verify_shards"),
    # exports for pose-guided video tools (docs/export.md)
    "ExportError": ("momu_data.export", "ExportError"),
    "ExportSettings": ("momu_data.export", "ExportSettings"),
    "export_motion": ("momu_data.export", "export_motion"),
    "load_motion": ("momu_data.export", "load_motion"),
    # recipes and synthetic data
    "RecipeError": ("momu_data.recipes", "RecipeError"),
    "load_recipe": ("momu_data.recipes", "load_recipe"),
    "run_recipe": ("momu_data.recipes", "run_recipe"),
    "synthesize": ("momu_data.synth", "synthesize"),
}

__all__ = [*_EXPORTS, "ShardError", "dataset", "loader"]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:  # what static tools and IDEs see (the same names; tests/test_api.py checks)
    from momu_data.export import ExportError, ExportSettings, export_motion, load_motion
    from momu_data.extract import EnvironmentFailure, ExtractConfig, load_item, motion_from_video
    from momu_data.features import directogram, kinematic_amplitude, kinematic_beats, log_mel, onsets
    from momu_data.inspect import verify_shards
    from momu_data.jobs import ExtractionResult, JobError, build_jobs, extract_dataset
    from momu_data.media import MediaError, iter_frames, load_audio, probe_video
    from momu_data.pose.mediapipe_pose import estimate_video
    from momu_data.pose.track import PoseTrack
    from momu_data.recipes import RecipeError, load_recipe, run_recipe
    from momu_data.shards import write_shards
    from momu_data.synth import synthesize
    from momu_data.timebase import FPS, SR
