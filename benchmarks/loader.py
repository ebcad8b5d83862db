"""Loader throughput: clips/s of one process drawing train batches as the trainers do.

The DiT trainer's draw (BatchStream: shuffle buffer 256, 4 s random crops, batch 8, the
DiT's fields pose + mel), the VAE's (pose, mel, amp) and every field (what the loader
read before fields existed: all nine members, FLAC included, read and hashed), on:

- a synthetic shard set in the current format (checksums; 6 s clips with real log-mels of
  synthetic songs, FLAC audio, about 350 KB a clip), made here by the shard writer's own
  encoder;
- optionally a real shard root (`--shards=DIR`, e.g. the demo's).

Each rate is reported as wall-clock clips/s and as clips per CPU-second of this process
(time.process_time), the best and the median of several repeats: on a shared machine the
wall rate also measures the other processes; the CPU rate much less so.

Each draw is measured twice: as a first pass (the process's record of verified tars off, so
every pass hashes the members it reads and checks their values, as a trainer's first epoch
does, and every epoch of a DataLoader worker, which starts afresh each epoch), and as the
later passes of one process that has read the shards once (`momu_data.loader.VERIFIED`:
unchanged tars found sound are neither hashed nor value-checked again, only decoded).
"""

from __future__ import annotations

import io
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import append_results

CLIP_SECONDS = 6.0
CROP_SECONDS = 4.0
BATCH = 8


def make_shards(out: Path, clips: int = 256, per_tar: int = 128, seed: int = 0) -> Path:
    """A train split of `clips` synthetic clips in the current shard format (encode_sample:
    members + sha256.json; deterministic tars as momu-data shard writes them) and its wids
    index, so the loader's sample-count check runs too. Returns the shard root."""
    import json

    import numpy as np
    import soundfile as sf
    import webdataset as wds

    from momu_data import timebase as A
    from momu_data.features import amplitude_from_flux, directogram, kinematic_flux, log_mel
    from momu_data.shards import TAR_MTIME, TAR_OWNER, encode_sample
    from momu_data.synth.music import make_song

    rng = np.random.default_rng(seed)
    T = int(CLIP_SECONDS * A.FPS)
    songs = []
    for _ in range(4):  # four songs, their clips reused under new keys: the bytes are what count
        y = make_song(rng, CLIP_SECONDS + 1, sr=A.SR).audio[: T * A.HOP].astype(np.float32)
        buf = io.BytesIO()
        sf.write(buf, np.clip(y, -1, 1), A.SR, format="FLAC", subtype="PCM_16")
        songs.append((log_mel(y)[:, :T].astype(np.float32), buf.getvalue()))
    (out / "train").mkdir(parents=True)
    with wds.ShardWriter(
        str(out / "train" / "%06d.tar"),
        maxcount=per_tar,
        verbose=0,
        encoder=False,
        mtime=TAR_MTIME,
        user=TAR_OWNER,
        group=TAR_OWNER,
    ) as sink:
        for i in range(clips):
            mel, flac = songs[i % len(songs)]
            pose = np.cumsum(rng.normal(0, 0.02, (T, 14, 2)), 0).astype(np.float32) + rng.uniform(-1, 1, (1, 14, 2))
            dgram = directogram(pose)
            sample = {
                "__key__": f"bench_{i // 10:03d}-{i % 10:04d}",
                "pose.npy": pose.astype(np.float32),
                "conf.npy": rng.uniform(0.5, 1, (T, 14)).astype(np.float32),
                "mel.npy": mel,
                "amp.npy": amplitude_from_flux(kinematic_flux(dgram)),
                "dirgram.npy": dgram.astype(np.float32),
                "beats.json": {"kinematic": [0.5, 1.0], "onsets": [0.5, 1.0]},
                "audio.flac": flac,
                "meta.json": {
                    "key": f"bench_{i:04d}",
                    "video": f"bench_{i // 10:03d}",
                    "frame_start": 0,
                    "frame_end": T,
                    "duration": CLIP_SECONDS,
                    "fps": A.FPS,
                    "centre": [320.0, 240.0],
                    "scale": 60.0,
                    "width": 640,
                    "height": 480,
                },
            }
            sink.write(encode_sample(sample))
    tars = sorted((out / "train").glob("*.tar"))
    counts = [min(per_tar, clips - k * per_tar) for k in range(len(tars))]
    index = {"shardlist": [{"url": f"train/{p.name}", "nsamples": n} for p, n in zip(tars, counts)]}
    (out / "train.wids.json").write_text(json.dumps(index))
    return out


def draw_rate(
    shards, fields, clips: int = 2000, repeats: int = 5, shuffle_buffer: int = 256, first_pass: bool = False
) -> dict:
    """Clips/s of `clips` clips drawn as a trainer's BatchStream draws them (4 s crops, batch
    8): per repeat, wall and process-CPU rates. first_pass: every pass as a first pass (the
    record of verified tars off), after a first batch (imports, opening); else after one whole
    pass over the shards, which this process then knows to be sound."""
    from momu_data.loader import VERIFIED
    from momu_data.timebase import FPS
    from momu_models.train.args import TrainArgs
    from momu_models.train.loop import BatchStream

    cfg = TrainArgs(shards=str(shards), batch_size=BATCH, shuffle_buffer=shuffle_buffer, crop_seconds=CROP_SECONDS)
    VERIFIED.clear()
    VERIFIED.enabled = not first_pass
    try:
        if not first_pass:  # a tar changed less than RACY_NS before a pass is not remembered by it
            changed = max(max(p.stat().st_mtime_ns, p.stat().st_ctime_ns) for p in Path(shards).glob("train/*.tar"))
            time.sleep(max(0.0, (changed + VERIFIED.RACY_NS - time.time_ns()) / 1e9))
        stream = BatchStream(cfg, int(CROP_SECONDS * FPS), 0, 1, fields=fields)
        next(stream)
        while not first_pass and stream.epoch == 0:  # the rest of the first pass
            next(stream)
        wall, cpu = [], []
        for _ in range(repeats):
            t, c, n = time.perf_counter(), time.process_time(), 0
            while n < clips:
                n += len(next(stream)["key"])
            wall.append(n / (time.perf_counter() - t))
            cpu.append(n / (time.process_time() - c))
    finally:
        VERIFIED.enabled = True
    return {"wall": wall, "cpu": cpu, "verified_tars": len(VERIFIED)}


def _fmt(r: dict) -> str:
    w, c = r["wall"], r["cpu"]
    return (
        f"{statistics.median(c):.0f} clips/s per CPU-second (best {max(c):.0f}); "
        f"wall {statistics.median(w):.0f} (best {max(w):.0f})"
    )


def run(shards: str | None = None, clips: int = 2000, repeats: int = 5) -> str:
    from momu_models.train.diffusion import LOADER_FIELDS as DIT_FIELDS
    from momu_models.train.vae import LOADER_FIELDS as VAE_FIELDS

    draws = [("DiT fields " + "+".join(DIT_FIELDS), DIT_FIELDS), ("VAE fields " + "+".join(VAE_FIELDS), VAE_FIELDS)]
    draws.append(("every field (all members read)", None))
    rows = []
    with tempfile.TemporaryDirectory() as td:
        synth = make_shards(Path(td) / "shards")
        mb = sum(p.stat().st_size for p in (synth / "train").glob("*.tar")) / 256 / 1e3
        sets = [(f"synthetic current-format shards (256 clips of {CLIP_SECONDS:g} s, {mb:.0f} KB each)", synth)]
        if shards:
            sets.append((f"shards at {shards}", Path(shards)))
        for name, root in sets:
            rows.append((f"**{name}**", ""))
            for label, fields in draws:
                for first in (True, False):
                    when = "first pass" if first else "later passes (tars verified in this process)"
                    rows.append(
                        (
                            f"{label}, {CROP_SECONDS:g} s crops, batch {BATCH}: {when}",
                            _fmt(draw_rate(root, fields, clips, repeats, first_pass=first)),
                        )
                    )
    return append_results(
        "Loader",
        rows,
        f"Target: at least 2500 clips/s from one process for DiT/VAE training with {CROP_SECONDS:g} s crops. "
        f"Each figure: the median (and best) of {repeats} repeats of {clips} clips. First pass: every pass "
        "hashes the members it reads and checks their values (the record of verified tars off), as a trainer's "
        "first epoch does and every epoch of a DataLoader worker (a fresh process each epoch); after a first "
        "batch. Later passes: "
        "after one whole pass, unchanged tars found sound are decoded only (not hashed, nor their values checked).",
    )
