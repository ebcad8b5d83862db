"""Shard integrity: checksums per sample, damaged tars named by the loader and by
`momu-data inspect --verify`, skip_corrupt, impossible values, stale temporary folders of
killed `shard` runs, and byte-identical shards from two runs. Fault injection on copies of
the session's toy shards (byte flips, truncation, tar header flips)."""

import errno
import hashlib
import json
import logging
import shutil
import subprocess
import sys
import tarfile

import numpy as np
import pytest
from media import rewrite_tar
from typer.testing import CliRunner

from momu_data.cli.data import app
from momu_data.loader import CHECKSUMS, MEL_CEILING, MEL_FLOOR, ShardError, loader
from momu_data.shards import clean_stale_temporaries, encode_sample, write_shards

runner = CliRunner()
TAR = "train/000000.tar"


@pytest.fixture
def shards(toy_shards, tmp_path):
    """A private copy of the toy shards (12 train clips in 3 tars of 4) to damage."""
    out = tmp_path / "shards"
    shutil.copytree(toy_shards, out)
    return out


def member(tar, name) -> tarfile.TarInfo:
    with tarfile.open(tar) as t:
        return t.getmember(name)


def names(tar) -> list[str]:
    with tarfile.open(tar) as t:
        return t.getnames()


def tar_keys(tar) -> list[str]:
    """The sample keys of a tar, in its order."""
    return list(dict.fromkeys(n.split(".")[0] for n in names(tar)))


def flip(path, offset: int, bit: int = 0x10) -> None:
    b = bytearray(path.read_bytes())
    b[offset] ^= bit
    path.write_bytes(bytes(b))


def train_keys(root) -> list[str]:
    import pyarrow.parquet as pq

    return [r["key"] for r in pq.read_table(root / "manifest.parquet").to_pylist() if r["split"] == "train"]


def load_keys(root, **kw) -> tuple[list[str], object]:
    dl = loader(root, split="train", batch_size=4, **kw)
    return [k for b in dl for k in b["key"]], dl.check


def one_line_error(root, **kw) -> str:
    with pytest.raises(ShardError) as e:
        load_keys(root, **kw)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def verify(root):
    r = runner.invoke(app, ["inspect", str(root), "--verify"])
    return r.exit_code, [line for line in r.output.splitlines() if line.startswith("damaged: ")], r.output


def test_every_sample_carries_checksums_of_its_members(toy_shards):
    tar = toy_shards / TAR
    with tarfile.open(tar) as t:
        first = t.getnames()[0].split(".")[0]
        files = {m.name.split(".", 1)[1]: t.extractfile(m).read() for m in t.getmembers() if m.name.startswith(first)}
    sums = json.loads(files.pop(CHECKSUMS))
    assert (
        set(sums)
        == set(files)
        == {
            "amp.npy",
            "audio.flac",
            "beats.json",
            "conf.npy",
            "dirgram.npy",
            "meta.json",
            "mel.npy",
            "pose.npy",
        }
    )
    assert all(hashlib.sha256(files[k]).hexdigest() == v for k, v in sums.items())
    index = json.loads((toy_shards / "train.wids.json").read_text())["shardlist"]
    assert index[0]["sha256"] == hashlib.sha256(tar.read_bytes()).hexdigest()
    code, damaged, out = verify(toy_shards)
    assert code == 0 and not damaged and "16 samples intact, 0 damaged" in out


def test_flipped_mel_byte_is_named_and_can_be_skipped(shards, caplog):
    tar = shards / TAR
    key = tar_keys(tar)[0]
    flip(tar, member(tar, f"{key}.mel.npy").offset_data + 1000)
    msg = one_line_error(shards)
    assert msg.startswith(f"{tar}: sample {key}: mel.npy: sha256 mismatch")
    code, damaged, _ = verify(shards)
    assert code == 1 and damaged == [f"damaged: {tar}: sample {key}: mel.npy: sha256 mismatch: the bytes are damaged"]
    with caplog.at_level(logging.WARNING, logger="momu_data.loader"):
        keys, check = load_keys(shards, skip_corrupt=True)
    assert sorted(keys) == sorted(k for k in train_keys(shards) if k != key)
    assert check.skipped == 1 and check.damaged_tars == {str(tar)}
    assert "skipped 1 damaged shard samples in 1 tar(s)" in caplog.text


def test_truncated_tar_is_one_line_naming_it(shards):
    tar = shards / TAR
    second = tar_keys(tar)[1]
    cut = member(tar, f"{second}.mel.npy").offset_data + 100
    tar.write_bytes(tar.read_bytes()[:cut])
    msg = one_line_error(shards)
    assert msg.startswith(f"{tar}: truncated or garbled tar (ReadError: unexpected end of data)")
    keys, check = load_keys(shards, skip_corrupt=True)
    # the tar's first sample is intact; its second is cut, its third and fourth are lost
    assert len(keys) == len(train_keys(shards)) - 3 and check.skipped == 3
    code, damaged, _ = verify(shards)
    assert code == 1 and f"damaged: {tar}: truncated or garbled tar" in damaged[0]
    assert any(f"sample {second}: pose.npy: missing" in d for d in damaged)
    # a tar gone altogether: the loader reads what is there; --verify and a list of URLs name it
    gone = shards / "train" / "000001.tar"
    gone.unlink()
    code, damaged, _ = verify(shards)
    assert code == 1 and f"damaged: {gone}: missing (4 samples listed)" in damaged
    with pytest.raises(ShardError, match=f"^{gone}: cannot read the tar \\(No such file or directory\\)"):
        load_keys([str(gone)])


def test_tar_header_flip_names_the_tar_and_the_lost_samples(shards):
    tar = shards / TAR
    keys_in_tar = tar_keys(tar)
    # a damaged header mid-tar: the reader stops there without an error; the count tells
    flip(tar, member(tar, f"{keys_in_tar[2]}.amp.npy").offset + 3, 0x01)
    msg = one_line_error(shards)
    assert msg.startswith(f"{tar}: 2 of 4 samples missing: the tar ends early")
    code, damaged, _ = verify(shards)
    assert code == 1 and damaged == [
        f"damaged: {tar}: sample {k}: missing: the tar ends before it (truncated, or a damaged tar header)"
        for k in keys_in_tar[2:]
    ]
    # the first header: the tar cannot be opened
    flip(tar, 5, 0x01)
    assert one_line_error(shards).startswith(f"{tar}: truncated or garbled tar (ReadError: bad checksum)")
    keys, check = load_keys(shards, skip_corrupt=True)
    assert len(keys) == len(train_keys(shards)) - 4 and check.skipped == 4


def set_value(member, index, value):
    return lambda s: s[member].__setitem__(index, value)


def test_impossible_values_are_caught_at_load_time(shards):
    import librosa

    from momu_data import timebase as A

    # the log-mel's possible range: floor log(1e-5); ceiling |STFT| <= sum(window) times the largest filter sum
    fb = librosa.filters.mel(sr=A.SR, n_fft=A.N_FFT, n_mels=A.N_MELS, fmin=A.FMIN, fmax=A.FMAX, norm="slaney")
    window = librosa.filters.get_window("hann", A.WIN, fftbins=True)
    assert MEL_CEILING == pytest.approx(np.log(window.sum() * fb.sum(1).max()), abs=1e-3)
    assert MEL_FLOOR == pytest.approx(np.log(1e-5))

    tar = shards / TAR
    original = tar.read_bytes()
    key = tar_keys(tar)[1]
    cases = [
        ("pose.npy", set_value("pose.npy", (3, 2, 0), np.nan), "1 non-finite values (NaN or inf)"),
        ("mel.npy", set_value("mel.npy", (5, 7), np.inf), "1 non-finite values"),
        (
            "mel.npy",
            set_value("mel.npy", (5, 7), 40.0),
            "log-mel in [-11.51, 40], outside the possible [-11.51, 3.53]",
        ),
        ("mel.npy", set_value("mel.npy", (5, 7), -30.0), "outside the possible"),
        ("amp.npy", set_value("amp.npy", 9, 3.0), "amplitude in [0, 3], outside [0, 1]"),
        ("pose.npy", set_value("pose.npy", (0, 4, 1), 1e30), "joints 1e+30 torso units from the centre (limit 1000)"),
        # joints far outside a known frame (pixels: pose * scale + centre)
        (
            "pose.npy",
            lambda s: s["meta.json"].update(width=400, height=480) or s["pose.npy"].__iadd__(20),
            "far outside the 400x480 frame",
        ),
        ("conf.npy", lambda s: s.__setitem__("conf.npy", s["conf.npy"][:-1]), "shape [249, 14], expected [250, 14]"),
    ]
    for name, change, reason in cases:
        tar.write_bytes(original)
        rewrite_tar(tar, lambda k, s, f=change: f(s) if k == key else None)
        msg = one_line_error(shards)
        assert msg.startswith(f"{tar}: sample {key}: {name}: ") and reason in msg, msg
    keys, check = load_keys(shards, skip_corrupt=True)
    assert check.skipped == 1 and sorted(keys) == sorted(k for k in train_keys(shards) if k != key)


def test_shards_without_checksums_still_load(shards):
    """Shards written before checksums (no sha256.json): loaded, damage found as far as it can be."""
    for tar in sorted((shards / "train").glob("*.tar")):
        rewrite_tar(tar, None)
        assert not [n for n in names(tar) if n.endswith(CHECKSUMS)]
    keys, check = load_keys(shards)
    assert sorted(keys) == sorted(train_keys(shards)) and check.skipped == 0
    tar = shards / TAR
    key = tar_keys(tar)[0]
    flip(tar, member(tar, f"{key}.mel.npy").offset_data + 8, 0x41)  # the npy header: undecodable
    msg = one_line_error(shards)
    assert msg.startswith(f"{tar}: sample {key}: mel.npy: unreadable")


def test_dataloader_worker_errors_stay_one_line(shards):
    """A DataLoader worker's error reaches the main process as ExceptionWrapper(...).reraise():
    ShardError(the worker's whole traceback). Done here without a worker process (torch
    then waits 5 s for a failed worker to exit), with the same torch code."""
    from torch._utils import ExceptionWrapper

    tar = shards / TAR
    key = tar_keys(tar)[0]
    flip(tar, member(tar, f"{key}.pose.npy").offset_data + 300)
    try:
        load_keys(shards)
    except ShardError as e:
        original = str(e)
        wrapped = ExceptionWrapper(where="in DataLoader worker process 0")
    assert original.startswith(f"{tar}: sample {key}: pose.npy: sha256 mismatch")
    assert wrapped.exc_msg.count("\n") > 3  # the traceback
    with pytest.raises(ShardError) as e:
        wrapped.reraise()
    assert str(e.value) == original


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temporaries_of_dead_runs_are_removed_live_ones_kept(tmp_path):
    out = tmp_path / "shards"
    (out / "train").mkdir(parents=True)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = dead_pid()
        for name in (f".shards.tmp-{dead}", f".shards.old-{dead}", f".shards.tmp-{live.pid}", f".other.tmp-{dead}"):
            (tmp_path / name / "train").mkdir(parents=True)
            (tmp_path / name / "train" / "000000.tar").write_bytes(b"x" * 1000)
        removed = clean_stale_temporaries(out)
        assert sorted(p.name for p in removed) == [f".shards.old-{dead}", f".shards.tmp-{dead}"]
        left = sorted(p.name for p in tmp_path.iterdir())
        assert left == [f".other.tmp-{dead}", f".shards.tmp-{live.pid}", "shards"]
        # killed between the two renames of the swap: the old set is moved back, not deleted
        shutil.rmtree(out)
        (tmp_path / f".shards.old-{dead}" / "train").mkdir(parents=True)
        (tmp_path / f".shards.old-{dead}" / "train" / "000000.tar").write_bytes(b"old set")
        (tmp_path / f".shards.tmp-{dead}").mkdir()
        assert [p.name for p in clean_stale_temporaries(out)] == [f".shards.tmp-{dead}"]
        assert (out / "train" / "000000.tar").read_bytes() == b"old set"
    finally:
        live.kill()
        live.wait()


def tar_digests(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.glob("*/*.tar"))}


def test_two_runs_give_byte_identical_shards_and_failures_leave_nothing(toy_shards, tmp_path, monkeypatch):
    data = toy_shards.parent / "data"
    a, b = tmp_path / "a", tmp_path / "b"
    stale = tmp_path / f".b.tmp-{dead_pid()}"
    (stale / "train").mkdir(parents=True)
    write_shards(data, a, (6, 1, 1), shard_size=4)
    write_shards(data, b, (6, 1, 1), shard_size=4)
    assert not stale.exists()  # the second run removed a killed run's folder first
    digests = tar_digests(a)
    assert len(digests) == 5 and digests == tar_digests(b) == tar_digests(toy_shards)
    for split in ("train", "val", "test"):
        assert (a / f"{split}.wids.json").read_bytes() == (b / f"{split}.wids.json").read_bytes()
    # a full disk in the middle of a run: one line, the previous set unchanged, no temporary folder left
    import momu_data.shards as S

    calls = []

    def full(sample):
        calls.append(1)
        if len(calls) > 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        return encode_sample(sample)

    monkeypatch.setattr(S, "encode_sample", full)
    r = runner.invoke(app, ["shard", str(data), "--out", str(b), "--split", "6/1/1", "--shard-size", "4"])
    assert r.exit_code == 1 and r.output.strip().splitlines()[-1].startswith(
        f"error: cannot write shards to {b}: No space left on device; the previous shard set"
    )
    assert tar_digests(b) == digests and sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_trainers_stop_on_damage_in_one_line_or_skip_it(shards, tmp_path, monkeypatch):
    from momu_models.cli.train import app as train_app
    from momu_models.train import vae as TV
    from momu_models.train.args import TrainArgs
    from momu_models.train.loop import BatchStream

    tar = shards / TAR
    key = tar_keys(tar)[0]
    flip(tar, member(tar, f"{key}.mel.npy").offset_data + 4000)
    # the train stream of every trainer: one line naming tar, sample and member; or skipped
    cfg = TrainArgs(shards=str(shards), batch_size=4, shuffle_buffer=0)
    with pytest.raises(ShardError, match=f"^{tar}: sample {key}: mel.npy: sha256 mismatch"):
        next(BatchStream(cfg, 64, 0, 1))
    cfg.skip_corrupt = True
    stream = BatchStream(cfg, 64, 0, 1)
    keys = [k for _ in range(3) for k in next(stream)["key"]]  # one epoch: 11 clips in batches of 4
    assert sorted(keys) == sorted(k for k in train_keys(shards) if k != key) and stream.epoch == 0
    # the command: --skip-corrupt reaches the trainer's config; a ShardError is one line
    seen = []

    def train(cfg, progress=True):
        seen.append(cfg)
        next(BatchStream(cfg, 64, 0, 1))
        return {"loss": 1.0}

    monkeypatch.setattr(TV, "train", train)
    r = runner.invoke(train_app, ["vae", str(shards), "-o", str(tmp_path / "r")])
    assert r.exit_code == 2 and r.output.strip().splitlines()[-1].startswith(f"error: {tar}: sample {key}: mel.npy")
    r = runner.invoke(train_app, ["vae", str(shards), "--skip-corrupt", "-o", str(tmp_path / "r")])
    assert r.exit_code == 0 and [c.skip_corrupt for c in seen] == [False, True]
