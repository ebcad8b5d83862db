"""What the neural vocoders (HiFi-GAN, BigVGAN) share: weights-only checkpoint loading, weight-norm
folding, and `GANVocoder` (adapt our mel to the checkpoint's, run the generator, resample to 16 kHz)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from momu_data.timebase import SR
from momu_models.generate.vocoders.base import Vocoder, VocoderError
from momu_models.generate.vocoders.mel import MelAdapter


def fold_weight_norm(state: dict) -> dict:
    """Replace weight-normed params by plain weights: w = g * v / ||v|| (norm over all dims but 0).

    Accepts the old `X.weight_g` / `X.weight_v` names (torch.nn.utils.weight_norm, as in the
    released HiFi-GAN and BigVGAN files) and the new parametrization names
    (`X.parametrizations.weight.original0/1`); plain `X.weight` passes through. Folding once
    at load is exactly what `remove_weight_norm` does, without building the wrapped modules.
    """
    out: dict = {}
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for k, v in state.items():
        dotted = "." + k  # so that a top-level module's "weight_g" matches like "conv.weight_g"
        for g_name, v_name in (
            (".weight_g", ".weight_v"),
            (".parametrizations.weight.original0", ".parametrizations.weight.original1"),
        ):
            if dotted.endswith(g_name):
                pairs.setdefault(dotted[: -len(g_name)], {})["g"] = v
                break
            if dotted.endswith(v_name):
                pairs.setdefault(dotted[: -len(v_name)], {})["v"] = v
                break
        else:
            out[k] = v
    for prefix, p in pairs.items():
        if set(p) != {"g", "v"}:
            raise VocoderError(f"checkpoint has half of a weight-norm pair for {prefix[1:]!r}")
        g, v = p["g"].float(), p["v"].float()
        norm = v.reshape(v.shape[0], -1).norm(dim=1).reshape(-1, *([1] * (v.dim() - 1)))
        out[(prefix + ".weight")[1:]] = g * v / norm
    return out


def load_generator_weights(module: nn.Module, state: dict, what: str) -> None:
    """Strict load after folding weight norm; a mismatch is a one-line error naming the keys."""
    state = fold_weight_norm(state)
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise VocoderError(
            f"{what} does not match the generator architecture/config: "
            f"{len(missing)} missing keys {missing[:4]}, {len(unexpected)} unexpected keys {unexpected[:4]}"
        )
    bad = [k for k in own if own[k].shape != state[k].shape]
    if bad:
        raise VocoderError(f"{what}: shape mismatch for {bad[:4]} (wrong config.json for these weights?)")
    module.load_state_dict(state, strict=True)


def read_generator_state(path: Path) -> dict:
    """The generator state dict of a checkpoint file: under "generator" (as released) or bare."""
    # weights_only: tensors and plain containers only; never unpickle arbitrary objects.
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt file, or a full pickle that weights_only refuses
        raise VocoderError(
            f"cannot load {path} as a weights-only torch file: {type(e).__name__}: {str(e)[:200]}"
        ) from None
    if isinstance(ckpt, dict) and isinstance(ckpt.get("generator"), dict):
        return ckpt["generator"]
    if isinstance(ckpt, dict) and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return ckpt  # a bare generator state dict
    raise VocoderError(f"{path} holds no generator state dict (expected a dict with key 'generator')")


class GANVocoder(Vocoder):
    """Shared path of the neural vocoders: adapt the mel, run the generator, resample to 16 kHz."""

    def __init__(self, generator: nn.Module, h: dict, device="cpu", offset: float | str = "auto"):
        self.device = torch.device(device)
        self.generator = generator.eval().to(self.device)
        for p in self.generator.parameters():
            p.requires_grad_(False)
        self.config = h
        self.adapter = MelAdapter(h, offset)
        upsample = int(np.prod(h["upsample_rates"]))
        if upsample != self.adapter.hop:
            raise VocoderError(f"config: upsample_rates multiply to {upsample} but hop_size is {self.adapter.hop}")

    def _synthesise(self, mel: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(self.adapter(mel)).to(self.device)
        with torch.inference_mode():
            y = self.generator(x)[:, 0].float().cpu().numpy()
        if self.adapter.sr == SR:
            return y
        import librosa

        # soxr_hq: band-limited, fast; the band above 8 kHz is cut as our mel has none.
        return librosa.resample(y, orig_sr=self.adapter.sr, target_sr=SR, res_type="soxr_hq", axis=-1)
