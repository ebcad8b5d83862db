"""MoMu's dataset builder: dance videos -> 14-keypoint poses, 16 kHz log-mels and rhythm
features -> clips -> WebDataset shards -> a torch loader.

The names below are the public API; the modules behind them (media, pose/, features,
clips, extract, jobs, shards, loader, recipes/, synth/) are the implementation.
"""

import os
from pathlib import Path

# librosa compiles its peak picker and mel code with numba on first use (~14 s); numba can
# cache the result only in a writable folder, which site-packages often is not. Set once here
# (every entry point imports momu_data before librosa) and respect a caller's own setting.
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "momu" / "numba"))

from momu_data.export import ExportError, ExportSettings, export_motion, load_motion
from momu_data.extract import EnvironmentFailure, ExtractConfig, load_item, motion_from_video
from momu_data.features import directogram, kinematic_amplitude, kinematic_beats, log_mel, onsets
from momu_data.inspect import verify_shards
from momu_data.jobs import ExtractionResult, JobError, build_jobs, extract_dataset
from momu_data.loader import ShardError, dataset, loader
from momu_data.media import MediaError, iter_frames, load_audio, probe_video
from momu_data.pose.mediapipe_pose import estimate_video
from momu_data.pose.track import PoseTrack
from momu_data.recipes import RecipeError, load_recipe, run_recipe
from momu_data.shards import write_shards
from momu_data.synth import synthesize
from momu_data.timebase import FPS, SR

__all__ = [
    "FPS",
    "SR",
    # media and poses
    "MediaError",
    "PoseTrack",
    "estimate_video",
    "iter_frames",
    "load_audio",
    "probe_video",
    "motion_from_video",
    # features
    "directogram",
    "kinematic_amplitude",
    "kinematic_beats",
    "log_mel",
    "onsets",
    # the dataset: extract -> shard -> load
    "EnvironmentFailure",
    "ExtractConfig",
    "ExtractionResult",
    "JobError",
    "build_jobs",
    "extract_dataset",
    "load_item",
    "write_shards",
    "ShardError",
    "verify_shards",
    "dataset",
    "loader",
    # exports for pose-guided video tools (docs/export.md)
    "ExportError",
    "ExportSettings",
    "export_motion",
    "load_motion",
    # recipes and synthetic data
    "RecipeError",
    "load_recipe",
    "run_recipe",
    "synthesize",
]
