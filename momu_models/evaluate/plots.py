"""Beat plots of a generated/reference pair (`momu-eval plot`, `momu-eval beats --plot`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from momu_data import features
from momu_data.timebase import FPS, SR
from momu_models.evaluate.metrics.beats import DEFAULT_BIN_S, PairScore, beat_bins, method_name


def plot_pair(
    out: Path,
    stem: str,
    duration: float,
    gen_beats,
    ref_beats,
    ref_y: np.ndarray,
    gen_y: np.ndarray | None = None,
    pose: np.ndarray | None = None,
    fps: float | None = None,
    score: PairScore | None = None,
    tolerance: float | None = None,
    bin_s: float = DEFAULT_BIN_S,
) -> Path:
    """PNG of one pair: the generated signal (music onset envelope, or the motion's kinematic
    amplitude) above the reference music's onset envelope, both beat sets as vertical lines
    on both panels, and, for the binned metric, the matched bins shaded."""
    import librosa
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    def envelope(y):
        # onset_detect's own envelope (default hop 512), so peaks line up with the beats.
        env = librosa.onset.onset_strength(y=y, sr=SR)
        return librosa.times_like(env, sr=SR), env

    if pose is not None:
        amp = features.kinematic_amplitude(features.resample_to_fps(pose, fps, FPS))
        top = (np.arange(amp.size) / FPS, amp, "generated motion: kinematic amplitude")
    else:
        top = (*envelope(gen_y), "generated music: onset strength")
    bottom = (*envelope(ref_y), "reference music: onset strength")

    fig, axes = plt.subplots(2, 1, figsize=(12, 5), sharex=True)
    matched = None
    if tolerance is None:
        g = beat_bins(gen_beats, duration, bin_s)
        r = beat_bins(ref_beats, duration, bin_s)
        matched = np.flatnonzero(g & r)
    gb = [t for t in gen_beats if 0 <= t < duration]
    rb = [t for t in ref_beats if 0 <= t < duration]
    for ax, (t, y, label) in zip(axes, (top, bottom)):
        keep = t <= duration
        ax.plot(t[keep], y[keep], color="0.3", lw=0.8, label=label)
        if matched is not None:
            for k in matched:
                ax.axvspan(k * bin_s, min((k + 1) * bin_s, duration), color="tab:green", alpha=0.12, lw=0)
        for i, b in enumerate(gb):
            ax.axvline(b, color="tab:red", lw=1.0, label="generated beats" if i == 0 else None)
        for i, b in enumerate(rb):
            ax.axvline(b, color="tab:blue", lw=1.0, ls="--", label="reference beats" if i == 0 else None)
        ax.set_xlim(0, duration)
        ax.legend(loc="upper right", fontsize=7)
    axes[-1].set_xlabel("time (s)")
    title = stem
    if score is not None:
        rule = method_name(tolerance, bin_s) + ("; shaded: matched bins" if matched is not None else "")
        title += f"   BCS {100 * score.bcs:.1f}  BHS {100 * score.bhs:.1f}  ({rule})"
    axes[0].set_title(title, fontsize=10)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
