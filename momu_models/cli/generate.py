"""`momu-generate`: music and dance together, dance for a music, or music for a dance.

  momu-generate --joint --length 30s        both, by cross-guidance
  momu-generate --music song.mp3            dance for a music file (any format PyAV reads)
  momu-generate --video dance.mp4           music for a dance video (pose extracted with mediapipe)

Writes to --out (default outputs/): <name>.mp4 (skeleton with the music; for --video the
original video with the new music beside the extracted skeleton), <name>.wav (16 kHz),
<name>.npy (keypoints [T, 14, 2]) with <name>.json (fps) and <name>_beats.png.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

console = Console(stderr=True, soft_wrap=True)  # one-line errors stay one line


def _fail(msg: str):
    console.print(f"[red]error:[/red] {msg}")
    raise typer.Exit(2)


def generate(
    joint: bool = typer.Option(False, "--joint", help="Generate music and dance together (cross-guidance)."),
    music: Optional[Path] = typer.Option(None, "--music", help="Generate dance for this music (audio or video file)."),
    video: Optional[Path] = typer.Option(None, "--video", help="Generate music for the dance in this video."),
    length: Optional[str] = typer.Option(None, "--length", help="Length: seconds ('30s'), mm:ss ('0:30') or mel frames ('1875'). Default: 10s for --joint, the input's length otherwise."),
    out: Path = typer.Option(Path("outputs"), "--out", "-o", help="Output folder."),
    num_samples: int = typer.Option(1, "--num-samples", "-n", help="Samples to generate."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same output."),
    steps: int = typer.Option(50, "--steps", help="DDIM steps."),
    guidance_scale: float = typer.Option(3.0, "--guidance-scale", help="Classifier-free guidance scale (1: plain conditional model)."),
    cross_start: float = typer.Option(0.5, "--cross-start", help="--joint: fraction of the steps sampled unconditionally before cross-guidance starts (paper: 0.3-0.7 robust)."),
    checkpoints: Path = typer.Option(Path("runs"), "--checkpoints", help="Folder with vae/, motion2music/, music2motion/ runs."),
    vocoder: str = typer.Option("auto", "--vocoder", help="auto, hifigan, griffinlim or bigvgan (mel -> waveform)."),
    vocoder_checkpoint: Optional[Path] = typer.Option(None, "--vocoder-checkpoint", help="Local checkpoint for bigvgan (or a custom hifigan)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    smooth: float = typer.Option(0.032, "--smooth", help="Gaussian smoothing of the generated motion, sigma in seconds (0: off); removes the decoder's frame jitter, see docs/diffusion.md."),
):
    """Generate music for a dance, dance for a music, or both together."""
    import torch

    from momu_data import timebase as A

    from momu_data import features

    from momu_models.device import resolve_device
    from momu_models.generate.pipeline import GenerateError, generate_joint, generate_motion, generate_music, load_models, write_outputs
    from momu_models.diffusion.sampling import parse_length

    modes = [m for m, on in (("joint", joint), ("music", music is not None), ("video", video is not None)) if on]
    if len(modes) > 1:
        _fail("choose one of --joint, --music FILE, --video FILE")
    mode = modes[0] if modes else "joint"
    if num_samples < 1 or steps < 1:
        _fail("--num-samples and --steps must be at least 1")
    if smooth < 0:
        _fail("--smooth must be 0 (off) or a positive number of seconds")
    try:
        frames = parse_length(length, A.FPS) if length else None
    except ValueError as e:
        _fail(str(e))
    for p in (music, video):
        if p is not None and not p.exists():
            _fail(f"no such file: {p}")
    try:
        dev = resolve_device(device)
        tasks = {"joint": ("motion2music", "music2motion"), "music": ("music2motion",), "video": ("motion2music",)}[mode]
        models = load_models(checkpoints, tasks, dev)
        models.smooth_seconds = smooth
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        written = []
        voc = None
        if mode != "music":
            from momu_models.generate.vocoders import get_vocoder

            voc = get_vocoder(vocoder, str(vocoder_checkpoint) if vocoder_checkpoint else None, device=dev)
        if mode == "joint":
            frames = frames or parse_length("10s", A.FPS)
            res = generate_joint(models, frames, num_samples, seed, steps, guidance_scale, cross_start)
            t = time.perf_counter()
            wavs = [voc(m) for m in res.mels]
            res.timings["vocoder"] = time.perf_counter() - t
            for k, (pose, wav) in enumerate(zip(res.poses, wavs)):
                written.append(write_outputs(out, f"joint_s{seed}_{k}", pose, wav, title=f"joint sample {k} (seed {seed})"))
        elif mode == "music":
            from momu_data.media import MediaError, load_audio

            try:
                y, _ = load_audio(music)
            except MediaError as e:
                raise GenerateError(f"{music}: {e}") from None
            mel = features.log_mel(y)
            if frames:
                if frames > mel.shape[1]:
                    raise GenerateError(f"--length is {frames / A.FPS:.1f} s but {music.name} lasts {mel.shape[1] / A.FPS:.1f} s")
                mel = mel[:, :frames]
            res = generate_motion(models, mel, num_samples, seed, steps, guidance_scale)
            T = mel.shape[1]
            for k, pose in enumerate(res.poses):
                written.append(write_outputs(out, f"{music.stem}_dance_s{seed}_{k}", pose, y[: T * A.HOP],
                                             title=f"dance for {music.name}"))
        else:
            from momu_data.extract import motion_from_video
            from momu_data.media import MediaError

            try:
                pose, _ = motion_from_video(video)
            except MediaError as e:
                raise GenerateError(f"{video}: {e}") from None
            if frames:
                pose = pose[:frames]
            res = generate_music(models, pose, num_samples, seed, steps, guidance_scale)
            t = time.perf_counter()
            wavs = [voc(m) for m in res.mels]
            res.timings["vocoder"] = time.perf_counter() - t
            for k, wav in enumerate(wavs):
                written.append(write_outputs(out, f"{video.stem}_music_s{seed}_{k}", pose, wav, video=video,
                                             title=f"music for {video.name}"))
    except GenerateError as e:
        _fail(str(e))
    except Exception as e:  # vocoder problems (missing package / checkpoint) are one line too
        from momu_models.generate.vocoders import VocoderError

        if isinstance(e, VocoderError):
            _fail(str(e))
        raise
    res.timings["render_and_write"] = sum(w["render"] for w in written)
    total = time.perf_counter() - t0
    for w in written:
        console.print(f"wrote {w['mp4']} (+ .wav, .npy, .json, _beats.png)")
    console.print("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in res.timings.items()) + f"; total {total:.1f} s")


def main():
    typer.run(generate)


if __name__ == "__main__":
    main()
