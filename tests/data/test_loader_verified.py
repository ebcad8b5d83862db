"""The loader's record of verified tars (momu_data.loader.VERIFIED): a tar read to its end
and found sound is not hashed again while it is unchanged; a tar rewritten in place or
replaced is checked again in full, and its damage found; a damaged, truncated or freshly
written tar is not remembered. And the fast paths behind the loader's throughput (batches
without padding, the frame of meta.json, the tar reader's header lookups) give what the
general paths give."""

import hashlib
import importlib
import io
import os
import shutil
import tarfile
import time
import types

import numpy as np
import pytest
import torch
from media import rewrite_tar

from momu_data.loader import ShardError, VerifiedTars, collate, loader, open_shards
from momu_data.tar_reader import TarSamples
from momu_models.train.classifier import LOADER_FIELDS as CLASSIFIER_FIELDS
from momu_models.train.diffusion import LOADER_FIELDS as DIT_FIELDS
from momu_models.train.vae import LOADER_FIELDS as VAE_FIELDS

L = importlib.import_module("momu_data.loader")  # the module (momu_data.loader is also its function)
RACY_S = 0.2  # the tests' RACY_NS: shards older than this when a pass begins may be remembered
TRAIN_CLIPS = 12  # the toy shards: 12 train clips in 3 tars of 4


@pytest.fixture
def shards(toy_shards, tmp_path, monkeypatch):
    """A private copy of the toy shards, older than the (shortened) racy window; the
    process's record of verified tars cleared before and after."""
    out = tmp_path / "shards"
    shutil.copytree(toy_shards, out)
    monkeypatch.setattr(L.VERIFIED, "RACY_NS", int(RACY_S * 1e9))
    L.VERIFIED.clear()
    time.sleep(RACY_S + 0.05)
    yield out
    L.VERIFIED.clear()


@pytest.fixture
def hashed(monkeypatch):
    """The member names the loader hashes, one per sha256 call, in call order."""
    calls = []

    def sha256(data=b""):
        calls.append(bytes(data))
        return hashlib.sha256(data)

    monkeypatch.setattr(L, "hashlib", types.SimpleNamespace(sha256=sha256))
    return calls


@pytest.fixture
def valued(monkeypatch):
    """The keys whose values the loader checks (to_arrays), one per check, in call order."""
    calls = []
    check = L._check_values

    def counted(url, key, out, meta):
        calls.append(key)
        return check(url, key, out, meta)

    monkeypatch.setattr(L, "_check_values", counted)
    return calls


def draw(root, fields, **kw):
    """(keys, pose, mel) of a pass over the train split, in order."""
    batches = list(loader(root, split="train", batch_size=4, fields=fields, **kw))
    keys = [k for b in batches for k in b["key"]]
    pose, mel = (np.concatenate([b[f].numpy() for b in batches]) for f in ("pose", "mel"))
    return keys, pose, mel


def first_member(tar, name) -> tuple[str, int]:
    with tarfile.open(tar) as t:
        key = t.getnames()[0].split(".")[0]
        return key, t.getmember(f"{key}.{name}").offset_data


def flip(path, offset: int) -> None:
    """One bit flipped in place: same file (inode), same size."""
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x10]))


def test_unchanged_tars_are_hashed_once_changed_ones_again(shards, hashed):
    tars = sorted((shards / "train").glob("*.tar"))
    first = draw(shards, DIT_FIELDS)
    # the DiT reads pose, mel and meta.json (and the checksum record, which is not hashed)
    assert len(hashed) == 3 * TRAIN_CLIPS and len(first[0]) == TRAIN_CLIPS
    assert len(L.VERIFIED) == len(tars)
    hashed.clear()
    again = draw(shards, DIT_FIELDS)
    assert hashed == []  # unchanged and verified: not hashed again, the same clips and values
    assert again[0] == first[0] and np.array_equal(again[1], first[1]) and np.array_equal(again[2], first[2])
    # the VAE also reads amp.npy, which no pass has checked yet: every member it reads is hashed
    draw(shards, VAE_FIELDS)
    assert len(hashed) == 4 * TRAIN_CLIPS
    hashed.clear()
    draw(shards, VAE_FIELDS)
    draw(shards, DIT_FIELDS)  # fewer members than checked: covered too
    assert hashed == []

    # a bit flipped in place (same inode and size, a new modification time): checked in full again
    key, mel = first_member(tars[0], "mel.npy")
    ino = os.stat(tars[0]).st_ino
    flip(tars[0], mel + 100)
    assert os.stat(tars[0]).st_ino == ino
    with pytest.raises(ShardError, match=f"^{tars[0]}: sample {key}: mel.npy: sha256 mismatch"):
        draw(shards, DIT_FIELDS)
    assert len(hashed) > 0
    hashed.clear()
    keys = draw(shards, VAE_FIELDS, skip_corrupt=True)[0]
    assert key not in keys and len(keys) == TRAIN_CLIPS - 1
    # the damaged tar stays unremembered: hashed again on every pass; the others are not
    hashed.clear()
    draw(shards, DIT_FIELDS, skip_corrupt=True)
    assert len(hashed) == 3 * 4

    # a tar replaced by another file (a new inode) with damage in a member; the first one mended
    flip(tars[0], mel + 100)
    key1, pose = first_member(tars[1], "pose.npy")
    data = bytearray(tars[1].read_bytes())
    data[pose + 200] ^= 0x01
    tmp = tars[1].with_suffix(".new")
    tmp.write_bytes(bytes(data))
    os.replace(tmp, tars[1])
    with pytest.raises(ShardError, match=f"^{tars[1]}: sample {key1}: pose.npy: sha256 mismatch"):
        draw(shards, VAE_FIELDS)


def test_trainers_batch_stream_hashes_the_first_epoch_only(shards, hashed):
    from momu_models.train.args import TrainArgs
    from momu_models.train.loop import BatchStream

    cfg = TrainArgs(shards=str(shards), batch_size=4, shuffle_buffer=8, crop_seconds=2.0)
    stream = BatchStream(cfg, 50, 0, 1, fields=DIT_FIELDS)
    epochs = {}
    while stream.epoch < 3:
        before = len(hashed)
        batch = next(stream)
        epochs.setdefault(stream.epoch, []).append((batch["key"], len(hashed) - before))
    assert sum(len(k) for k, _ in epochs[0]) == sum(len(k) for k, _ in epochs[1]) == TRAIN_CLIPS
    assert sum(n for _, n in epochs[0]) == 3 * TRAIN_CLIPS and sum(n for _, n in epochs[1]) == 0


def test_loader_workers_share_the_record_across_epochs(shards, monkeypatch):
    """With DataLoader workers (a new set each epoch, as on CUDA): the workers hand the tars
    they found sound back to the trainer's process, whose record the next loaders' workers
    start from. Epoch 1's workers start during epoch 0 (the lookahead), before any tar was
    found sound, so they may hash again; epoch 2's start when all of epoch 0 is in, and from
    then on no worker hashes anything. The draws are the same clips every epoch."""
    import multiprocessing as mp

    from momu_models.train.args import TrainArgs
    from momu_models.train.loop import BatchStream

    count = mp.get_context("fork").Value("i", 0)  # shared with the forked workers

    def sha256(data=b""):
        with count.get_lock():
            count.value += 1
        return hashlib.sha256(data)

    monkeypatch.setattr(L, "hashlib", types.SimpleNamespace(sha256=sha256))
    cfg = TrainArgs(shards=str(shards), batch_size=4, shuffle_buffer=8, crop_seconds=2.0, num_workers=2)
    stream = BatchStream(cfg, 50, 0, 1, fields=DIT_FIELDS)
    keys, at_start = {}, {}
    while stream.epoch < 5:
        batch = next(stream)
        at_start.setdefault(stream.epoch, count.value)  # all earlier epochs' hashing is done by now
        keys.setdefault(stream.epoch, []).extend(batch["key"])
        assert L._RECORD not in batch
    assert 3 * TRAIN_CLIPS <= at_start[2] <= 2 * 3 * TRAIN_CLIPS and len(L.VERIFIED) == 3
    assert at_start[4] == at_start[2]  # epochs 2 and 3: nothing hashed
    assert all(sorted(keys[e]) == sorted(keys[0]) and len(keys[e]) == TRAIN_CLIPS for e in range(4))


def test_values_are_checked_until_a_whole_pass_passed_them(shards, hashed, valued):
    first = draw(shards, VAE_FIELDS)
    assert len(valued) == TRAIN_CLIPS and len(hashed) == 4 * TRAIN_CLIPS
    valued.clear()
    hashed.clear()
    again = draw(shards, VAE_FIELDS)
    assert valued == [] and hashed == []  # unchanged and sound: decoded only, the same values
    assert again[0] == first[0] and np.array_equal(again[1], first[1]) and np.array_equal(again[2], first[2])
    draw(shards, DIT_FIELDS)  # fields whose values passed (and members checked): nothing checked
    assert valued == [] and hashed == []
    # the classifier's fields (pose, meta): meta.json was hashed, but no pass has given out meta
    batches = list(loader(shards, split="train", batch_size=4, fields=CLASSIFIER_FIELDS))
    assert len(valued) == TRAIN_CLIPS and hashed == []
    valued.clear()
    again = list(loader(shards, split="train", batch_size=4, fields=CLASSIFIER_FIELDS))
    assert valued == [] and [b["meta"] for b in again] == [b["meta"] for b in batches]
    assert all(isinstance(m, dict) and m["key"] for b in again for m in b["meta"])

    # a pass that stops early remembers nothing of the tar it stopped in: the first batch of
    # 4 is out once the batcher has the 5th clip, the first of the second tar
    L.VERIFIED.clear()
    valued.clear()
    next(iter(loader(shards, split="train", batch_size=4, fields=DIT_FIELDS)))
    assert len(valued) == 5 and len(L.VERIFIED) == 1
    valued.clear()
    draw(shards, DIT_FIELDS)
    assert len(valued) == TRAIN_CLIPS - 4 and len(L.VERIFIED) == 3


def test_decoding_without_checks_gives_what_to_arrays_gives(toy_shards):
    urls = [str(p) for p in sorted((toy_shards / "train").glob("*.tar"))]
    n = 0
    for sample in open_shards(urls, shardshuffle=False):
        for fields in (L.ALL_FIELDS, DIT_FIELDS, VAE_FIELDS, CLASSIFIER_FIELDS):
            want, got = L.to_arrays(sample, fields), L._decoded(sample, fields)
            assert list(got) == list(want) and got["key"] == want["key"]
            for f in fields:
                if f == "meta":
                    assert got[f] == want[f]
                else:
                    assert got[f].dtype == want[f].dtype == np.float32 and np.array_equal(got[f], want[f])
        n += 1
    assert n == TRAIN_CLIPS


def test_a_tar_with_impossible_values_is_checked_every_pass(shards, valued):
    tar = sorted((shards / "train").glob("*.tar"))[1]
    with tarfile.open(tar) as t:
        in_tar = sorted({m.name.split(".")[0] for m in t.getmembers()})
    bad = in_tar[2]

    def impossible(key, sample):  # an amplitude no extraction gives, under a checksum that matches it
        if key == bad:
            sample["amp.npy"][7] = 3.0

    rewrite_tar(tar, impossible)
    time.sleep(RACY_S + 0.05)
    for _ in range(2):
        with pytest.raises(ShardError, match=f"^{tar}: sample {bad}: amp.npy: amplitude in"):
            draw(shards, VAE_FIELDS)
    for _ in range(2):
        valued.clear()
        keys = draw(shards, VAE_FIELDS, skip_corrupt=True)[0]
        assert bad not in keys and len(keys) == TRAIN_CLIPS - 1
    assert sorted(valued) == in_tar  # the damaged tar's clips; the other tars' are remembered
    assert draw(shards, DIT_FIELDS)[0].count(bad) == 1  # the DiT does not read amp: no damage for it


def test_damaged_truncated_or_fresh_tars_are_not_remembered(shards, hashed, monkeypatch):
    tars = sorted((shards / "train").glob("*.tar"))
    # truncated at a header: the tar ends early without an error from the reader; the wids index
    # names the missing samples (skip_corrupt: skipped), and the tar is not remembered
    with tarfile.open(tars[2]) as t:
        cut = t.getmembers()[9].offset  # the second sample's first header (9 members a sample)
    with open(tars[2], "r+b") as f:
        f.truncate(cut)
    time.sleep(RACY_S + 0.05)
    dl = loader(shards, split="train", batch_size=4, fields=DIT_FIELDS, skip_corrupt=True)
    keys = [k for b in dl for k in b["key"]]
    assert len(keys) == TRAIN_CLIPS - 3 and dl.check.skipped == 3
    assert len(L.VERIFIED) == 2 and not L.VERIFIED.covers(VerifiedTars.identity(str(tars[2]), os.stat(tars[2])), None)
    with pytest.raises(ShardError, match=f"^{tars[2]}: 3 of 4 samples missing"):
        draw(shards, DIT_FIELDS)

    # a tar changed less than RACY_NS before its pass began is checked but not remembered: a
    # change within its timestamps' granularity could keep them (here every tar is that fresh)
    monkeypatch.setattr(L.VERIFIED, "RACY_NS", 60 * 10**9)
    tars[0].write_bytes(tars[0].read_bytes())
    L.VERIFIED.clear()
    for _ in range(2):
        hashed.clear()
        keys = draw(shards, DIT_FIELDS, skip_corrupt=True)[0]
        assert len(keys) == TRAIN_CLIPS - 3 and len(hashed) == 3 * len(keys) and len(L.VERIFIED) == 0
    monkeypatch.setattr(L.VERIFIED, "RACY_NS", int(RACY_S * 1e9))
    time.sleep(RACY_S + 0.05)
    draw(shards, DIT_FIELDS, skip_corrupt=True)
    hashed.clear()
    draw(shards, DIT_FIELDS, skip_corrupt=True)
    assert len(hashed) == 3 and len(L.VERIFIED) == 2  # the truncated tar's one clip


def test_inspect_verify_hashes_everything_whatever_this_process_verified(shards, hashed):
    from momu_data.inspect import verify_shards

    draw(shards, None)  # every member of the train tars checked, and remembered
    assert len(L.VERIFIED) == 3 and len(hashed) == 8 * TRAIN_CLIPS
    hashed.clear()
    draw(shards, None)
    assert hashed == []
    out = verify_shards(shards)
    assert out.intact == 16 and not out.damage
    assert len(hashed) == 8 * 16  # every member but the checksum record, of all 16 clips (train, val, test)


def test_verified_tars_record(tmp_path):
    path = tmp_path / "a.tar"
    path.write_bytes(b"x" * 1024)
    st = os.stat(path)
    ident = VerifiedTars.identity(str(path), st)
    assert ident == (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    assert VerifiedTars.identity("pipe:cat x", None) is None
    v = VerifiedTars(limit=2)
    now = max(st.st_mtime_ns, st.st_ctime_ns)
    dit = frozenset({"pose.npy", "mel.npy", "meta.json", "sha256.json"})
    later = now + 10 * v.RACY_NS  # a pass that began well after the file's last change
    assert not v.add(ident, dit, now + v.RACY_NS - 1) and len(v) == 0  # changed just before: racy
    assert not v.add(None, dit, later)  # not a local file
    assert v.add(ident, dit, later) and len(v) == 1
    assert v.covers(ident, dit) and v.covers(ident, frozenset({"mel.npy"}))
    assert not v.covers(ident, dit | {"amp.npy"}) and not v.covers(ident, None)
    assert v.add(ident, frozenset({"amp.npy"}), later) and v.covers(ident, dit | {"amp.npy"})
    assert v.add(ident, None, later) and v.covers(ident, None) and v.covers(ident, dit)
    assert not v.covers(None, dit)
    # another state of the same file is another tar
    moved = (*ident[:4], ident[4] + 1, ident[5])
    assert not v.covers(moved, dit)
    v.enabled = False
    assert not v.covers(ident, dit) and not v.add(moved, dit, later)
    v.enabled = True
    assert v.add(moved, dit, later) and v.add((*ident[:3], 7, *ident[4:]), dit, later)  # over the limit:
    # the tar remembered first goes
    assert len(v) == 2 and not v.covers(ident, dit) and v.covers(moved, dit)
    v.clear()
    assert len(v) == 0

    # what a loader worker hands on: only what it learnt since it last did, and a merge of
    # that into another record covers the same
    w = VerifiedTars()
    w.merge({moved: (dit, frozenset({"pose"}))})
    w.keep_news()
    assert w.take_news() == {}
    assert w.add(moved, dit, later) and w.take_news() == {}  # nothing new about it
    assert w.add(ident, dit, later, ("pose", "mel"))
    news = w.take_news()
    assert news == {ident: (dit, frozenset({"pose", "mel"}))} and w.take_news() == {}
    parent = VerifiedTars()
    parent.merge(news)
    assert parent.covers(ident, dit) and parent.values_cover(ident, ("pose", "mel")) and len(parent) == 1
    parent.enabled = False
    parent.merge({moved: (dit, frozenset())})
    assert len(parent) == 1


def test_a_check_without_a_record_hashes_every_pass(shards, hashed):
    urls = [str(p) for p in sorted((shards / "train").glob("*.tar"))]
    for _ in range(2):
        check = L.ShardCheck(urls, fields=DIT_FIELDS, verified=None)
        n = sum(1 for _ in L.decode_checked(open_shards(urls, check=check, shardshuffle=False)))
        assert n == TRAIN_CLIPS
    assert len(hashed) == 2 * 3 * TRAIN_CLIPS and len(L.VERIFIED) == 0


def test_collate_without_padding_stacks_as_padding_does():
    rng = np.random.default_rng(0)

    def clip(T):
        return {
            "key": f"k{T}",
            "pose": rng.normal(size=(T, 14, 2)).astype(np.float32),
            "mel": rng.normal(size=(80, T)).astype(np.float32),
            "amp": rng.uniform(size=T).astype(np.float32),
        }

    same = [clip(30) for _ in range(3)]
    b = collate(same)
    assert b["pose"].dtype == b["mel"].dtype == b["amp"].dtype == torch.float32
    assert np.array_equal(b["pose"].numpy(), np.stack([s["pose"] for s in same]))
    assert np.array_equal(b["mel"].numpy(), np.stack([s["mel"] for s in same]))
    assert b["mask"].all() and b["mask"].shape == (3, 30) and b["length"].tolist() == [30, 30, 30]
    # strided views (crops) and float64 arrays are copied and cast as assignment does
    wide = rng.normal(size=(80, 50))
    views = [{**s, "mel": wide[:, 10:40]} for s in same]
    assert np.array_equal(collate(views)["mel"].numpy()[1], wide[:, 10:40].astype(np.float32))
    mixed = same[:2] + [clip(20)]
    p = collate(mixed)
    assert p["length"].tolist() == [30, 30, 20] and p["mask"].numpy().sum(1).tolist() == [30, 30, 20]
    assert np.array_equal(p["mel"].numpy()[2, :, :20], mixed[2]["mel"])
    assert np.all(p["mel"].numpy()[2, :, 20:] == np.float32(L.MEL_FLOOR)) and np.all(p["amp"].numpy()[2, 20:] == 0)
    assert np.array_equal(p["pose"].numpy()[:2], b["pose"].numpy()[:2])


def test_frame_of_meta_reads_as_numpy_does():
    base = {"scale": 60.0, "width": 640, "height": 480}
    want = ((320.0, 240.0), 60.0, 640.0, 480.0)
    for centre in ([320.0, 240.0], [320, 240], [[320, 240]], (320.0, 240.0), np.array([320.0, 240.0])):
        frame = L._frame({**base, "centre": centre})
        assert frame == want and all(type(c) is float for c in frame[0]), centre
    for centre in (None, "ab", "12", [1.0], [1.0, 2.0, 3.0], {"x": 1}, [1.0, "a"]):
        assert L._frame({**base, "centre": centre}) is None, centre
    assert L._frame({"centre": [1.0, 2.0], "scale": None, "width": 1, "height": 1}) is None


def test_shapes_of_fields_follow_frame_shapes():
    for f, shape in L.FRAME_SHAPES.items():
        assert L._SHAPE_OF[f](7) == tuple(7 if d == "T" else d for d in shape)


def test_tar_header_lookups_still_check_every_header(tmp_path):
    """The reader remembers the size and checksum fields it parsed: a damaged header whose
    fields were seen before is still refused, and a tar reads the same the second time."""
    path = tmp_path / "t.tar"
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in (("c0.a.npy", b"a" * 700), ("c0.b.npy", b"b" * 700), ("c1.a.npy", b"c" * 700)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    data = path.read_bytes()
    with open(path, "rb") as f:
        once = [{k: bytes(v) if k[:2] != "__" else v for k, v in s.items()} for s in TarSamples(f, "u")]
    with open(path, "rb") as f:
        twice = [{k: bytes(v) if k[:2] != "__" else v for k, v in s.items()} for s in TarSamples(f, "u")]
    assert once == twice and [s["__key__"] for s in once] == ["c0", "c1"] and once[0]["b.npy"] == b"b" * 700
    bad = bytearray(data)
    bad[3] ^= 0x01  # the first header's name: its checksum field is unchanged (and remembered)
    path.write_bytes(bytes(bad))
    with open(path, "rb") as f, pytest.raises(tarfile.ReadError, match="bad checksum"):
        list(TarSamples(f, "u"))
    bad = bytearray(data)
    bad[124 + 10] = ord("1")  # the size field's last digit: 700 -> 697 bytes, checksum unchanged
    path.write_bytes(bytes(bad))
    with open(path, "rb") as f, pytest.raises(tarfile.ReadError, match="bad checksum"):
        list(TarSamples(f, "u"))
