"""Evaluation metrics of MoMu-Diffusion (section 5, appendix B.4-B.5) and the envelope sync
diagnostic; see docs/metrics.md.

Pure functions on arrays; finding and loading files lives in momu_models.evaluate.files.
"""

from momu_models.evaluate.metrics.beats import (
    PairScore,
    aggregate,
    beat_bins,
    binned_scores,
    f1_score,
    match_within,
    method_name,
    motion_beats,
    music_beats,
    pair_scores,
    tolerance_scores,
)
from momu_models.evaluate.metrics.diversity import (
    group_by_condition,
    inter_diversity,
    intra_diversity,
    sample_cross_pairs,
)
from momu_models.evaluate.metrics.edges import edge_speed_ratios, joint_speed, speed_profile
from momu_models.evaluate.metrics.fad import (
    EMBEDDERS,
    Embedder,
    EmbedderError,
    LogMelStatsEmbedder,
    VGGishEmbedder,
    build_vggish,
    clip_embedding,
    fad_from_embeddings,
    fad_from_files,
    get_embedder,
    load_vggish,
    metric_name,
)
from momu_models.evaluate.metrics.frechet import frechet_distance, frechet_from_features, gaussian_stats
from momu_models.evaluate.metrics.motion import (
    diversity_scores,
    kl_divergence,
    log_softmax,
    mean_kld,
    motion_fid,
    pairwise_kld,
)
from momu_models.evaluate.metrics.sync import (
    lagged_correlation,
    mel_flux,
    motion_envelope,
    music_envelope,
    sync_correlation,
)

__all__ = [
    "edge_speed_ratios",
    "joint_speed",
    "speed_profile",
    "PairScore",
    "aggregate",
    "beat_bins",
    "binned_scores",
    "f1_score",
    "match_within",
    "method_name",
    "motion_beats",
    "music_beats",
    "pair_scores",
    "tolerance_scores",
    "group_by_condition",
    "inter_diversity",
    "intra_diversity",
    "sample_cross_pairs",
    "EMBEDDERS",
    "Embedder",
    "EmbedderError",
    "LogMelStatsEmbedder",
    "VGGishEmbedder",
    "build_vggish",
    "clip_embedding",
    "fad_from_embeddings",
    "fad_from_files",
    "get_embedder",
    "load_vggish",
    "metric_name",
    "frechet_distance",
    "frechet_from_features",
    "gaussian_stats",
    "diversity_scores",
    "kl_divergence",
    "log_softmax",
    "mean_kld",
    "motion_fid",
    "pairwise_kld",
    "lagged_correlation",
    "mel_flux",
    "motion_envelope",
    "music_envelope",
    "sync_correlation",
]
