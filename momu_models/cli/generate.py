"""`momu-generate`: music and dance together, dance for a music, or music for a dance.

  momu-generate --joint --length 30s        both, by cross-guidance
  momu-generate --music song.mp3            dance for a music file (any format PyAV reads)
  momu-generate --video dance.mp4           music for a dance video (pose extracted with mediapipe)

Writes to --out (default outputs/): <name>.mp4 (skeleton with the music; for --video the
original video with the new music beside the extracted skeleton), <name>.wav (16 kHz),
<name>.npy (keypoints [T, 14, 2]) with <name>.json (fps) and <name>_beats.png; with
--export, the motion also for pose-guided video tools (OpenPose JSON, control frames; docs/export.md).
--no-render leaves out the mp4, the one file that needs PyAV and OpenCV (a models-only install,
docs/install.md).

The same from Python: `momu_models.generate.pipeline.MoMuPipeline` (this command validates the
options, calls one of its methods and saves the result).
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from momu_data.cli.common import console, fail, setup_logging
from momu_data.export import DEFAULT_FPS, ExportError, ExportSettings
from momu_data.timebase import FPS
from momu_models.generate.length import parse_length


def generate(
    joint: bool = typer.Option(False, "--joint", help="Generate music and dance together (cross-guidance)."),
    music: Path | None = typer.Option(None, "--music", help="Generate dance for this music (audio or video file)."),
    video: Path | None = typer.Option(None, "--video", help="Generate music for the dance in this video."),
    # Temporal editing (docs/editing.md): keep a dance or a music, or parts of it; generate the rest.
    prefix_motion: Path | None = typer.Option(
        None,
        "--prefix-motion",
        help="A dance to continue (--music, --joint), or to keep parts of with --keep / --regenerate: .npy keypoints "
        "as written here, an extracted item DATA/items/ID.npz, or a video.",
    ),
    prefix_music: Path | None = typer.Option(
        None,
        "--prefix-music",
        help="A music to continue (--video, --joint), or to keep parts of with --keep / --regenerate (audio, video).",
    ),
    keyframes: Path | None = typer.Option(
        None, "--keyframes", help="Poses to pass through at given times (JSON, docs/editing.md), in-betweened."
    ),
    keep: list[str] = typer.Option(
        [], "--keep", help="Keep only seconds A:B (e.g. 2:4.5, 6:) of the --prefix-* input(s); repeatable."
    ),
    regenerate: list[str] = typer.Option(
        [], "--regenerate", help="Generate seconds A:B anew, keeping the rest of the --prefix-* input(s); repeatable."
    ),
    paste: bool = typer.Option(
        True,
        "--paste/--no-paste",
        help="Put the kept input back exactly, fading into the generation over --seam (--no-paste: the VAE's "
        "decoding of it).",
    ),
    seam: float = typer.Option(0.5, "--seam", help="Seconds over which kept parts fade into the generated ones."),
    length: str | None = typer.Option(
        None,
        "--length",
        help=(
            "Length: seconds ('30s'), mm:ss ('0:30') or mel frames ('1875'). Default: 10s for --joint, the input's "
            "length otherwise."
        ),
    ),
    out: Path = typer.Option(Path("outputs"), "--out", "-o", help="Output folder."),
    num_samples: int = typer.Option(1, "--num-samples", "-n", help="Samples to generate."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same output."),
    steps: int | None = typer.Option(
        None,
        "--steps",
        help="Sampling steps. Default: 50 for paper-preset runs (the paper's DDIM), 12 for the CPU presets "
        "(DPM-Solver++: as good on the beat as 50 DDIM steps, a quarter of the time; docs/results.md).",
        show_default=False,
    ),
    solver: str | None = typer.Option(
        None,
        "--solver",
        help="ddim or dpm++2m (DPM-Solver++(2M)). Default: ddim for paper-preset runs, dpm++2m for the CPU presets.",
        show_default=False,
    ),
    guidance_scale: float | None = typer.Option(
        None,
        "--guidance-scale",
        help="Classifier-free guidance scale (1: plain conditional model). Default: the scale `momu-eval guidance` "
        "chose for each run (its guidance.json), else 3.",
        show_default=False,
    ),
    cross_start: float = typer.Option(
        0.5,
        "--cross-start",
        help=(
            "--joint: fraction of the steps sampled unconditionally before cross-guidance starts (paper: 0.3-0.7 "
            "robust)."
        ),
    ),
    checkpoints: Path = typer.Option(
        Path("runs"), "--checkpoints", help="Folder with vae/, motion2music/, music2motion/ runs."
    ),
    vocoder: str = typer.Option("auto", "--vocoder", help="auto, hifigan, griffinlim or bigvgan (mel -> waveform)."),
    vocoder_checkpoint: Path | None = typer.Option(
        None, "--vocoder-checkpoint", help="Local checkpoint for bigvgan (or a custom hifigan)."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    smooth: float | None = typer.Option(
        None,
        "--smooth",
        help=(
            "Gaussian smoothing of the generated motion, sigma in seconds (0: off); removes the decoder's frame "
            "jitter, see docs/diffusion.md. Default: off for paper-preset runs (as the paper), 0.032 otherwise."
        ),
    ),
    # Exports for pose-guided video tools (momu_data.export, docs/export.md).
    export: list[str] = typer.Option(
        [],
        "--export",
        help="Also write the motion as openpose (BODY_25 JSON per frame), pose-video (mp4), pose-frames (PNGs), csv "
        "or npz: repeatable or a comma list (docs/export.md).",
    ),
    export_fps: float = typer.Option(DEFAULT_FPS, "--export-fps", help="Frame rate of the exports (e.g. 24, 25, 30)."),
    canvas: str | None = typer.Option(
        None,
        "--canvas",
        help="Export canvas WIDTHxHEIGHT, e.g. 512x768 (default: the reference dancer's frame, else 512x768).",
    ),
    reference_dancer: Path | None = typer.Option(
        None,
        "--reference-dancer",
        help="Place and size the exported skeleton as the dancer of this video (pose extracted with mediapipe) "
        "or extracted item (DATA/items/ID.npz).",
    ),
    render: bool = typer.Option(
        True,
        "--render/--no-render",
        help="Write the mp4 (skeleton with the music). --no-render writes the rest (wav, npy, json, beat plot) "
        "without PyAV and OpenCV, e.g. on a models-only GPU machine.",
    ),
):
    """Generate music for a dance, dance for a music, or both together."""
    # torch: loaded when a command runs, not for --help
    from momu_data.optional import MissingPackage, import_optional
    from momu_models.generate.pipeline import MODE_TASKS, GenerateError, MoMuPipeline
    from momu_models.generate.render import RENDER_NEEDS, RENDER_PURPOSE
    from momu_models.generate.vocoders import VocoderError

    modes = [m for m, on in (("joint", joint), ("music", music is not None), ("video", video is not None)) if on]
    if len(modes) > 1:
        fail("choose one of --joint, --music FILE, --video FILE")
    mode = modes[0] if modes else "joint"
    if num_samples < 1 or (steps is not None and steps < 1):
        fail("--num-samples and --steps must be at least 1")
    if smooth is not None and smooth < 0:
        fail("--smooth must be 0 (off) or a positive number of seconds")
    try:
        frames = parse_length(length, FPS) if length else None
    except ValueError as e:
        fail(str(e))
    for p in (music, video):
        if p is not None and not p.exists():
            fail(f"no such file: {p}")
    exports = None
    if export or canvas or reference_dancer:
        if not export:
            fail("--canvas and --reference-dancer go with --export FORMAT")
        try:
            exports = ExportSettings.parse(export, export_fps, canvas, reference_dancer)
        except ExportError as e:
            fail(str(e))
    edit = None
    if prefix_motion or prefix_music or keyframes or keep or regenerate:
        from momu_models.generate.editing import parse_range
        from momu_models.generate.pipeline import Edit

        for p in (prefix_motion, prefix_music, keyframes):
            if p is not None and not p.exists():
                fail(f"no such file: {p}")
        if keep and regenerate:
            fail("choose --keep (ranges to keep) or --regenerate (ranges to generate anew), not both")
        try:
            ranges = [parse_range(r) for r in keep or regenerate]
        except ValueError as e:
            fail(str(e))
        edit = Edit(
            motion=prefix_motion,
            music=prefix_music,
            keep=ranges if keep else None,
            regenerate=ranges if regenerate else None,
            keyframes=keyframes,
            seam=seam,
            paste=paste,
        )
    method = {"joint": "joint", "music": "dance_for_music", "video": "music_for_dance"}[mode]
    try:
        pipe = MoMuPipeline.from_pretrained(
            checkpoints,
            tasks=MODE_TASKS[method],
            device=device,
            vocoder=vocoder,
            vocoder_checkpoint=vocoder_checkpoint,
            smooth=smooth,
        )
        if render:  # before sampling: fail fast, naming --no-render
            import_optional(*RENDER_NEEDS, purpose=RENDER_PURPOSE)
        t0 = time.perf_counter()
        common = dict(
            num_samples=num_samples, seed=seed, steps=steps, guidance_scale=guidance_scale, edit=edit, solver=solver
        )
        if mode == "joint":
            result = pipe.joint(frames, cross_start=cross_start, **common)
        elif mode == "music":
            result = pipe.dance_for_music(music, frames, **common)
        else:
            result = pipe.music_for_dance(video, frames, **common)
        written = result.save(out, export=exports, render=render)
    # vocoder problems (missing package / checkpoint) and a missing PyAV or OpenCV are one line too
    except (GenerateError, VocoderError, ExportError, MissingPackage) as e:
        fail(str(e))
    total = time.perf_counter() - t0
    for w in written:
        if w["mp4"] is not None:
            console.print(f"wrote {w['mp4']} (+ .wav, .npy, .json, _beats.png)")
        else:
            console.print(f"wrote {w['wav']} (+ .npy, .json, _beats.png; no mp4: --no-render)")
        if w["exported"]:
            files = ", ".join(v for k, v in w["exported"].items() if k != "frames")
            console.print(f"exported {w['exported']['frames']} frames at {exports.fps:g} fps: {files}")
    console.print("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items()) + f"; total {total:.1f} s")


def main():
    setup_logging()
    typer.run(generate)


if __name__ == "__main__":
    main()
