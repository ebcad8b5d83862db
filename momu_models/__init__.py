"""MoMu's models: BiCoR-VAE and the latent DiTs of MoMu-Diffusion, their training, generation
(dance for a music, music for a dance, both together) and the paper's metrics.

    from momu_models import MoMuPipeline
    pipe = MoMuPipeline.from_pretrained("runs/")
    pipe.joint(length="30s", seed=0).save("outputs/")

The names below are the public API, imported on first use (PEP 562) so that a command's
--help, or `import momu_models.evaluate.metrics`, does not load torch and every model. The
subpackages follow the flow: models/ (networks), diffusion/ (noise process and samplers),
train/ (trainers), generate/ (pipeline, post-processing, rendering, vocoders), evaluate/
(metrics, pairing of files, the suite), cli/ (the commands).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from momu_data.lazy import lazy_exports

# public name -> (module, attribute in that module)
_EXPORTS = {
    # models
    "BiCoRVAE": ("momu_models.models.vae", "BiCoRVAE"),
    "VAEConfig": ("momu_models.models.vae", "VAEConfig"),
    "DiT": ("momu_models.models.dit", "DiT"),
    "DiTConfig": ("momu_models.models.dit", "DiTConfig"),
    "load_diffusion": ("momu_models.models.dit", "load_diffusion"),
    "MotionClassifier": ("momu_models.models.motion_encoder", "MotionClassifier"),
    "load_classifier": ("momu_models.models.motion_encoder", "load_classifier"),
    # diffusion process and samplers
    "Diffusion": ("momu_models.diffusion.process", "Diffusion"),
    "sample": ("momu_models.diffusion.sampling", "sample"),
    "joint_sample": ("momu_models.diffusion.sampling", "joint_sample"),
    # training
    "VAETrainConfig": ("momu_models.train.vae", "VAETrainConfig"),
    "train_vae": ("momu_models.train.vae", "train"),
    "DiffusionTrainConfig": ("momu_models.train.diffusion", "DiffusionTrainConfig"),
    "train_diffusion": ("momu_models.train.diffusion", "train"),
    "ClassifierTrainConfig": ("momu_models.train.classifier", "ClassifierTrainConfig"),
    "train_classifier": ("momu_models.train.classifier", "train"),
    "TrainError": ("momu_models.train.loop", "TrainError"),
    # generation
    "MoMuPipeline": ("momu_models.generate.pipeline", "MoMuPipeline"),
    "GenerationResult": ("momu_models.generate.outputs", "GenerationResult"),
    "GenerateError": ("momu_models.generate.pipeline", "GenerateError"),
    "load_models": ("momu_models.generate.pipeline", "load_models"),
    "generate_joint": ("momu_models.generate.pipeline", "generate_joint"),
    "generate_motion": ("momu_models.generate.pipeline", "generate_motion"),
    "generate_music": ("momu_models.generate.pipeline", "generate_music"),
    "get_vocoder": ("momu_models.generate.vocoders", "get_vocoder"),
    # evaluation
    "evaluate_beats": ("momu_models.evaluate.alignment", "evaluate_beats"),
    "evaluate_motion": ("momu_models.evaluate.suite", "evaluate_motion"),
    "evaluate_all": ("momu_models.evaluate.suite", "evaluate_all"),
    "beat_ceiling": ("momu_models.evaluate.ceiling", "beat_ceiling"),
    "pair_scores": ("momu_models.evaluate.metrics.beats", "pair_scores"),
    "sync_correlation": ("momu_models.evaluate.metrics.sync", "sync_correlation"),
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:  # what static tools and IDEs see (the same names; tests/test_api.py checks)
    from momu_models.diffusion.process import Diffusion
    from momu_models.diffusion.sampling import joint_sample, sample
    from momu_models.evaluate.alignment import evaluate_beats
    from momu_models.evaluate.ceiling import beat_ceiling
    from momu_models.evaluate.metrics.beats import pair_scores
    from momu_models.evaluate.metrics.sync import sync_correlation
    from momu_models.evaluate.suite import evaluate_all, evaluate_motion
    from momu_models.generate.outputs import GenerationResult
    from momu_models.generate.pipeline import (
        GenerateError,
        MoMuPipeline,
        generate_joint,
        generate_motion,
        generate_music,
        load_models,
    )
    from momu_models.generate.vocoders import get_vocoder
    from momu_models.models.dit import DiT, DiTConfig, load_diffusion
    from momu_models.models.motion_encoder import MotionClassifier, load_classifier
    from momu_models.models.vae import BiCoRVAE, VAEConfig
    from momu_models.train.classifier import ClassifierTrainConfig
    from momu_models.train.classifier import train as train_classifier
    from momu_models.train.diffusion import DiffusionTrainConfig
    from momu_models.train.diffusion import train as train_diffusion
    from momu_models.train.loop import TrainError
    from momu_models.train.vae import VAETrainConfig
    from momu_models.train.vae import train as train_vae
