"""`python -m benchmarks` (`make bench`): runs every benchmark and appends to RESULTS.md."""

import os
import sys

os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".cache", "numba"))
os.environ.setdefault("GLOG_minloglevel", "2")


ALL = ("extraction", "multi_dancer", "loader", "training", "generation", "vocoder", "hot_paths")
# Run on its own, with its own options (`python -m benchmarks gpu --help`): not part of ALL.
GPU = "gpu"


def main(argv=None):
    """`python -m benchmarks [extraction] [multi_dancer] [loader] [training] [generation] [vocoder] [hot_paths]
    [--cuda] [--quick]`: --quick skips the paper presets (minutes on a CPU); --cuda also runs on the GPU;
    --paper-steps=N times the paper preset's generation with N DDIM steps, scaled to 50;
    --shards=DIR also times the loader on a shard root of your own (e.g. the demo's).
    hot_paths (the figures of docs/diffusion.md and docs/training.md, "On the GPU") runs on the CPU,
    one thread, in process time, whatever --cuda / --quick say (about a minute).
    `python -m benchmarks gpu [--out DIR] [--tiny] [--budget S] [--device cuda|cpu]`: the prepared
    GPU check (benchmarks/gpu.py, docs/gpu.md), which takes its own options."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == GPU:
        from benchmarks import gpu

        return gpu.main(args[1:])
    import torch

    quick = "--quick" in args
    cuda = "--cuda" in args or torch.cuda.is_available()
    which = [a for a in args if not a.startswith("--")] or list(ALL)
    paper_steps = [int(a.split("=", 1)[1]) for a in args if a.startswith("--paper-steps=")]
    shards = [a.split("=", 1)[1] for a in args if a.startswith("--shards=")]
    presets = ("tiny", "small") if quick else ("tiny", "small", "paper")
    devices = ["cpu"] + (["cuda"] if cuda else [])
    for name in which:
        if name == "extraction":
            from benchmarks import extraction

            print(extraction.run())
        elif name == "multi_dancer":
            from benchmarks import multi_dancer

            print(multi_dancer.run())
        elif name == "loader":
            from benchmarks import loader

            print(loader.run(shards[0] if shards else None))
        elif name == "training":
            from benchmarks import training

            for d in devices:
                print(training.run(d, presets))
        elif name == "generation":
            from benchmarks import generation

            for d in devices:
                print(generation.run(d, presets, measured_steps={"paper": paper_steps[0]} if paper_steps else None))
        elif name == "vocoder":
            from benchmarks import vocoder

            print(vocoder.run())
        elif name == "hot_paths":
            from benchmarks import hot_paths

            print(hot_paths.run())
        else:
            raise SystemExit(f"unknown benchmark {name!r}: choose from {', '.join(ALL)} (or `gpu` alone)")


if __name__ == "__main__":
    main()
