"""Motion classifier training (`momu-train classifier`): the feature extractor of the
motion FID / Diversity / Mean KLD (appendix B.5), trained on the shards' pose clips.

Targets are one manifest label column (`--label genre|style|dancer|music|choreo`, read
from each sample's meta.json). The classes are the label values present in the train split,
sorted; clips with an empty label (or, in val, a value unseen in train) are skipped. Batches
are random crops of the train clips (mirrored and rescaled at random), as for the other
trainers; validation classifies whole val clips (what the metrics later encode) and reports
accuracy next to chance, the accuracy of the best constant answer (the largest val class).

The loop follows train/vae.py: an endless resumable BatchStream, safetensors checkpoints
(`--resume` continues exactly), metrics.jsonl/.csv (+ TensorBoard), torchrun gradient
averaging, and `model.safetensors` + `config.json` (encoder config, label, class list,
final val metrics) at the end.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from momu_data.io import write_json
from momu_data.loader import decode_checked, loader, open_shards, shard_urls
from momu_data.manifest import LABELS
from momu_data.skeleton import MIRROR
from momu_models.device import resolve_device
from momu_models.models.motion_encoder import PRESETS, MotionClassifier
from momu_models.train import distributed as D
from momu_models.train.args import TrainArgs
from momu_models.train.checkpoint import (
    load_checkpoint,
    read_state,
    require_finite,
    resume_checkpoint,
    save_checkpoint,
)
from momu_models.train.loop import (
    Bar,
    BatchStream,
    NonFiniteGuard,
    TrainError,
    check_shards,
    crop_frames,
    finite_update,
    grad_sync_hooks,
    to_device,
)
from momu_models.train.optim import adamw
from momu_models.train.runlog import RunLog

log = logging.getLogger(__name__)

# What the classifier reads of each clip: the motion and its labels (meta.json).
LOADER_FIELDS = ("pose", "meta")


@dataclass
class ClassifierTrainConfig(TrainArgs):
    # shared fields (train/args.py) whose default differs here
    run_dir: str = "runs/classifier"
    batch_size: int = 16
    # The paper fine-tunes a pretrained MotionBert with Adam at 1e-4 for 100 epochs; this
    # encoder starts from scratch and is small, so it takes a larger rate.
    lr: float = 1e-3
    warmup_steps: int = 50
    val_every: int = 200
    ckpt_every: int = 200
    val_batches: int = 50
    # the classifier trainer's own
    label: str = "genre"  # the manifest label to predict (momu_data.manifest.LABELS)
    steps: int = 1000
    # Random left-right mirror and +-10% scale of each train crop: a label never depends on
    # them, and with a few dozen clips the encoder otherwise memorises bodies, not movement.
    augment: bool = True


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up, then cosine decay to 10%: a small classifier on few clips keeps
    jumping between solutions at a constant rate; the decay lets the last steps settle."""
    if step < warmup:
        return (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * t))


def label_counts(shards, split: str, label: str, skip_corrupt: bool = False) -> Counter:
    """{value: clips} of one label over a split's shards ("" counts the unlabelled clips).

    Reads the samples through the loader's checks (open_shards + decode_checked), every
    shard on every rank: a damaged tar or sample is the loader's one-line ShardError naming
    the tar, sample and member, or (skip_corrupt) is left out of the counts, as training
    leaves it out (the same fields: a clip training drops is not counted)."""
    urls = shard_urls(shards, split)
    ds = decode_checked(
        open_shards(
            urls, skip_corrupt, fields=LOADER_FIELDS, shardshuffle=False, empty_check=False, nodesplitter=lambda u: u
        )
    )
    return Counter(str(s["meta"].get(label) or "") for s in ds)


class HasLabel:
    """Sample filter: keep clips whose label is one of the classes (a class, not a lambda,
    so DataLoader workers can pickle it)."""

    def __init__(self, label: str, classes):
        self.label, self.classes = label, set(classes)

    def __call__(self, sample: dict) -> bool:
        return str(sample["meta"].get(self.label) or "") in self.classes


def augment(pose: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror half the clips of [B, T, 14, 2] (x -> -x around the hip centre, left and right
    swapped) and scale each by a factor in [0.9, 1.1]. Padded frames stay 0."""
    B = pose.shape[0]
    flip = torch.rand(B, generator=generator, device=pose.device) < 0.5
    scale = 0.9 + 0.2 * torch.rand(B, generator=generator, device=pose.device)
    mirrored = pose[:, :, list(MIRROR)] * torch.tensor([-1.0, 1.0], device=pose.device)
    out = torch.where(flip[:, None, None, None], mirrored, pose)
    return out * scale[:, None, None, None]


def targets(batch: dict, label: str, index: dict, device) -> torch.Tensor:
    # built on the host, then queued to the device without waiting for it (as to_device)
    y = torch.tensor([index[str(m.get(label) or "")] for m in batch["meta"]])
    return y.to(device, non_blocking=True)


@torch.no_grad()
def validate(model: MotionClassifier, cfg: ClassifierTrainConfig, device) -> dict:
    """Accuracy and loss on whole val clips (train if there is no val split), and chance:
    the accuracy of the best constant answer on these clips (the largest class's share),
    which no classifier that ignores the motion can beat."""
    root = Path(cfg.shards)
    split = "val" if list((root / "val").glob("*.tar")) else "train"
    index = {c: i for i, c in enumerate(model.classes)}
    keep = HasLabel(cfg.label, model.classes)
    model.eval()
    n = correct = 0
    per_class = torch.zeros(len(model.classes))
    loss = 0.0
    for i, b in enumerate(
        loader(root, split=split, batch_size=cfg.batch_size, skip_corrupt=cfg.skip_corrupt, fields=LOADER_FIELDS)
    ):
        if i >= cfg.val_batches:
            break
        sel = [k for k, m in enumerate(b["meta"]) if keep({"meta": m})]
        if not sel:
            continue
        b = to_device(b, device)
        y = targets({"meta": [b["meta"][k] for k in sel]}, cfg.label, index, device)
        logits = model(b["pose"][sel], b["mask"][sel])
        loss += float(F.cross_entropy(logits.float(), y, reduction="sum"))
        correct += int((logits.argmax(-1) == y).sum())
        per_class += torch.bincount(y.cpu(), minlength=len(model.classes)).float()
        n += len(sel)
    model.train()
    if n == 0:
        return {}
    return {
        "acc": correct / n,
        "chance": float(per_class.max()) / n,
        "loss": loss / n,
        "clips": float(n),
        "split_is_val": float(split == "val"),
    }


def train(cfg: ClassifierTrainConfig, progress: bool = True) -> dict:
    """Train (or resume) a motion classifier; returns the final validation metrics."""
    if cfg.preset not in PRESETS:
        raise TrainError(f"unknown preset {cfg.preset!r}: choose {', '.join(PRESETS)}")
    if cfg.label not in LABELS:
        raise TrainError(f"--label must be one of {', '.join(LABELS)}, got {cfg.label!r}")
    check_shards(cfg)
    counts = label_counts(cfg.shards, "train", cfg.label, cfg.skip_corrupt)
    classes = sorted(v for v in counts if v)
    if len(classes) < 2:
        have = f"only {classes[0]!r}" if classes else "none"
        raise TrainError(
            f"--label {cfg.label}: the train split of {cfg.shards} has {len(classes)} class(es) "
            f"({have}; {counts.get('', 0)} unlabelled clip(s)); a classifier needs at least 2"
        )
    index = {c: i for i, c in enumerate(classes)}

    device_name = resolve_device(cfg.device)
    rank, world, device = D.init(device_name)
    run = Path(cfg.run_dir)
    torch.manual_seed(cfg.seed)
    mcfg = PRESETS[cfg.preset]
    model = MotionClassifier(mcfg, classes, cfg.label).to(device)
    opt = adamw(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.warmup_steps, cfg.steps))
    gen = torch.Generator(device=device).manual_seed(cfg.seed + 7919 * rank)  # augmentation draws
    step, epoch, consumed = 0, 0, 0
    skipped_state = None  # the non-finite step counts of a resumed run

    ck = resume_checkpoint(run) if cfg.resume else None
    if cfg.resume and ck is None and D.is_main():
        log.info("no checkpoint in %s/checkpoints: starting from scratch", run)
    if ck is not None:
        saved = read_state(ck)
        if (
            saved.get("encoder") != mcfg.to_dict()
            or saved.get("classes") != classes
            or saved.get("label") != cfg.label
        ):
            raise TrainError(
                f"checkpoint {ck} was trained with preset {saved.get('preset')!r}, label "
                f"{saved.get('label')!r} and classes {saved.get('classes')}: resume with the same "
                f"options and shards, or use another --run-dir"
            )
        state = load_checkpoint(ck, {"classifier": model}, {"opt": opt})
        sched.load_state_dict(state["scheduler"])
        gen.set_state(torch.tensor(state["generator"], dtype=torch.uint8))
        step = state["step"]
        epoch, consumed = state["data"]["epoch"], state["data"]["consumed"]
        skipped_state = state.get("nonfinite")

    hooks = grad_sync_hooks([model], world) if world > 1 else []
    runlog = RunLog(run, enabled=D.is_main())
    guard = NonFiniteGuard(runlog=runlog, state=skipped_state)
    if D.is_main():
        write_json(run / "train_config.json", asdict(cfg))
        log.info(
            "%s: %d classes, train clips per class %s%s",
            cfg.label,
            len(classes),
            ", ".join(f"{c} {counts[c]}" for c in classes),
            f"; {counts['']} unlabelled skipped" if counts.get("") else "",
        )
    stream = BatchStream(
        cfg,
        crop_frames(cfg, model.factor),
        rank,
        world,
        epoch,
        consumed,
        select=HasLabel(cfg.label, classes),
        fields=LOADER_FIELDS,
        device=device,
    )
    autocast = torch.bfloat16 if device.type == "cuda" else None
    metrics: dict = {}
    bar = Bar(cfg.steps, step, enabled=progress and D.is_main(), name="classifier")
    t_last, clips_since = time.perf_counter(), 0
    try:
        while step < cfg.steps:
            batch = to_device(next(stream), device)
            y = targets(batch, cfg.label, index, device)
            pose = augment(batch["pose"], gen) if cfg.augment else batch["pose"]
            with torch.autocast(device.type, dtype=autocast) if autocast else contextlib.nullcontext():
                logits = model(pose, batch["mask"])
            loss = F.cross_entropy(logits.float(), y)
            applied, gnorm = finite_update(loss, opt, cfg.grad_clip)
            sched.step()
            step += 1
            guard.update(step, applied, batch, float(loss.detach()))
            clips_since += len(batch["key"]) * world
            if step % cfg.log_every == 0 or step == cfg.steps:
                dt = time.perf_counter() - t_last
                out = {
                    "loss": loss.item(),
                    "acc": float((logits.argmax(-1) == y).float().mean()),
                    "grad_norm": float(gnorm),
                    "lr": sched.get_last_lr()[0],
                    "clips_per_s": clips_since / dt,
                }
                runlog.log(step, out, prefix="train/")
                bar.update(step, cfg.label, out["loss"], out["clips_per_s"])
                t_last, clips_since = time.perf_counter(), 0
            if step % cfg.val_every == 0 or step == cfg.steps:
                if D.is_main():
                    metrics = validate(model, cfg, device)
                    runlog.log(step, metrics, prefix="val/")
                    bar.note(step, metrics)
                D.barrier()
            if step % cfg.ckpt_every == 0 or step == cfg.steps:
                if D.is_main():
                    save_checkpoint(
                        run,
                        step,
                        {"classifier": model},
                        {"opt": opt},
                        {
                            "preset": cfg.preset,
                            "encoder": mcfg.to_dict(),
                            "label": cfg.label,
                            "classes": classes,
                            "scheduler": sched.state_dict(),
                            "generator": gen.get_state().tolist(),
                            "data": {"epoch": stream.epoch, "consumed": stream.consumed},
                            "nonfinite": guard.state_dict(),
                        },
                    )
                D.barrier()
        if world > 1:
            D.check_in_sync([model], device)
        if D.is_main():
            require_finite({"classifier": model}, run / "model.safetensors")
            model.save_pretrained(
                run,
                {"preset": cfg.preset, "steps": step, "train_counts": {c: counts[c] for c in classes}, "val": metrics},
            )
    finally:
        bar.close()
        runlog.close()
        for h in hooks:
            h.remove()
        D.cleanup()
    return metrics
