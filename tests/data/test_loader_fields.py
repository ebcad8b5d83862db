"""The loader's field selection: a trainer's fields only are read, hashed and decoded; damage
in the members it does not read goes unnoticed there, damage in those it reads is still a
ShardError. And the tar reader behind it reads tars as webdataset's (tarfile's) reader does."""

import io
import shutil
import tarfile

import numpy as np
import pytest

from momu_data.loader import CHECKSUMS, ShardError, decode_member, loader, members_of, open_shards
from momu_data.tar_reader import TarSamples
from momu_models.train.classifier import LOADER_FIELDS as CLASSIFIER_FIELDS
from momu_models.train.diffusion import LOADER_FIELDS as DIT_FIELDS
from momu_models.train.vae import LOADER_FIELDS as VAE_FIELDS

TAR = "train/000000.tar"


@pytest.fixture
def shards(toy_shards, tmp_path):
    out = tmp_path / "shards"
    shutil.copytree(toy_shards, out)
    return out


def first_key_and_offset(tar, member: str) -> tuple[str, int]:
    with tarfile.open(tar) as t:
        key = t.getnames()[0].split(".")[0]
        return key, t.getmember(f"{key}.{member}").offset_data


def flip(path, offset: int) -> None:
    b = bytearray(path.read_bytes())
    b[offset + 10] ^= 0x10
    path.write_bytes(bytes(b))


def batches(root, fields):
    return list(loader(root, split="train", batch_size=4, fields=fields))


def test_trainer_fields_read_only_their_members(toy_shards):
    assert DIT_FIELDS == ("pose", "mel") and set(VAE_FIELDS) == {"pose", "mel", "amp"}
    assert set(CLASSIFIER_FIELDS) == {"pose", "meta"}
    full, dit = batches(toy_shards, None), batches(toy_shards, DIT_FIELDS)
    assert set(full[0]) == {"key", "pose", "conf", "mel", "amp", "meta", "mask", "length"}
    assert set(dit[0]) == {"key", "pose", "mel", "mask", "length"}
    for a, b in zip(full, dit):  # the same clips, the same values
        assert a["key"] == b["key"]
        for k in ("pose", "mel", "mask", "length"):
            assert np.array_equal(a[k].numpy(), b[k].numpy())
    assert set(batches(toy_shards, ["mel"])[0]) == {"key", "mel", "mask", "length"}  # any iterable of names
    # undecoded: the FLAC and the other members are not read at all, only named
    sample = next(iter(open_shards([str(toy_shards / TAR)], fields=DIT_FIELDS, shardshuffle=False)))
    assert {k for k in sample if not k.startswith("__")} == {"pose.npy", "mel.npy", "meta.json", CHECKSUMS}
    assert sorted(sample["__skipped__"]) == ["amp.npy", "audio.flac", "beats.json", "conf.npy", "dirgram.npy"]
    assert members_of(("amp",)) == {"amp.npy", CHECKSUMS}  # meta.json comes with pose only
    with pytest.raises(ValueError, match="unknown loader field.*audio"):
        loader(toy_shards, split="train", fields=("pose", "audio"))


def test_damage_in_unread_members_passes_in_read_ones_raises(shards):
    tar = shards / TAR
    key, flac = first_key_and_offset(tar, "audio.flac")
    flip(tar, flac)
    every = [k for b in batches(shards, DIT_FIELDS) for k in b["key"]]
    assert key in every and len(every) == 12  # the DiT never reads the FLAC
    with pytest.raises(ShardError, match=f"^{tar}: sample {key}: audio.flac: sha256 mismatch"):
        batches(shards, None)  # every field: every member read and checked
    _, conf = first_key_and_offset(tar, "conf.npy")
    flip(tar, conf)
    assert len([k for b in batches(shards, VAE_FIELDS) for k in b["key"]]) == 12
    _, mel = first_key_and_offset(tar, "mel.npy")
    flip(tar, mel)
    for fields in (DIT_FIELDS, VAE_FIELDS, ("mel",)):
        with pytest.raises(ShardError, match=f"^{tar}: sample {key}: mel.npy: sha256 mismatch"):
            batches(shards, fields)
    keys = [
        k for b in loader(shards, split="train", batch_size=4, fields=DIT_FIELDS, skip_corrupt=True) for k in b["key"]
    ]
    assert key not in keys and len(keys) == 11
    # the classifier reads pose and labels: the damaged mel is not its concern
    assert len([k for b in batches(shards, CLASSIFIER_FIELDS) for k in b["key"]]) == 12


def test_an_unread_member_missing_from_the_tar_is_still_named(shards):
    tar = shards / TAR
    key, _ = first_key_and_offset(tar, "dirgram.npy")
    with tarfile.open(tar) as t:
        kept = [(m, t.extractfile(m).read()) for m in t.getmembers() if m.name != f"{key}.dirgram.npy"]
    with tarfile.open(tar, "w") as t:
        for m, data in kept:
            t.addfile(m, io.BytesIO(data))
    with pytest.raises(ShardError, match=f"^{tar}: sample {key}: dirgram.npy: missing \\(listed in the checksum"):
        batches(shards, DIT_FIELDS)


def write_tar(path, members, fmt=tarfile.PAX_FORMAT) -> None:
    with tarfile.open(path, "w", format=fmt) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                t.addfile(info)
                continue
            info.size, info.mtime = len(data), 1.5  # a float mtime: pax headers
            t.addfile(info, io.BytesIO(data))


def webdataset_samples(path) -> list[dict]:
    from webdataset.tariterators import group_by_keys, tar_file_expander

    with open(path, "rb") as f:
        samples = group_by_keys(tar_file_expander([{"url": "u", "stream": f}]))
        return [{k: bytes(v) if isinstance(v, bytes) else v for k, v in s.items()} for s in samples]


class Pipe(io.RawIOBase):
    """A stream that cannot seek and returns short reads, as a pipe does."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), 700, len(self.data) - self.pos)
        b[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_tar_reader_reads_as_webdataset_does(tmp_path, fmt):
    deep = "d" * 60 + "/" + "e" * 60 + "/clip_1"  # over 100 characters: a ustar prefix, or pax / GNU long names
    members = [
        ("a/", None),
        ("__meta__", b"skipped by both"),
        ("clip_0.pose.npy", b"p" * 1000),
        ("clip_0.MEL.npy", b"m" * 513),
        ("clip_0.meta.json", b"{}"),
        (f"{deep}.pose.npy", b"q" * 512),
        (f"{deep}.extra.tar.gz", b""),
        ("nodot", b"x"),
    ]
    if fmt == tarfile.USTAR_FORMAT:
        members = [(n, d) for n, d in members if len(n) <= 100 or n.startswith("d")]
    path = tmp_path / "t.tar"
    write_tar(path, members, fmt)
    want = webdataset_samples(path)
    for s in want:
        s["__url__"] = "u"
    with open(path, "rb") as f:
        mapped = [{k: bytes(v) if k[:2] != "__" else v for k, v in s.items()} for s in TarSamples(f, "u")]
    piped = [dict(s) for s in TarSamples(io.BufferedReader(Pipe(path.read_bytes()), 300), "u")]
    assert mapped == piped == want and [s["__key__"] for s in want] == ["clip_0", deep]
    with open(path, "rb") as f:
        picked = list(TarSamples(f, "u", {"mel.npy"}))
    assert [bytes(picked[0]["mel.npy"])] == [b"m" * 513] and picked[0]["__skipped__"] == ["pose.npy", "meta.json"]
    assert picked[1]["__skipped__"] == ["pose.npy", "extra.tar.gz"]


def test_tar_reader_damage_reads_as_tarfile_reads_it(tmp_path):
    path = tmp_path / "t.tar"
    write_tar(path, [("c0.a.npy", b"a" * 2000), ("c0.b.npy", b"b" * 2000), ("c1.a.npy", b"c" * 10)])
    data = path.read_bytes()
    with tarfile.open(path) as t:
        second = t.getmember("c0.b.npy")
    for stream in (lambda d: open(_write(tmp_path / "x.tar", d), "rb"), lambda d: io.BufferedReader(Pipe(d))):
        # cut inside a member that is read, and inside one that is skipped
        for members in (None, {"a.npy"}):
            r = TarSamples(stream(data[: second.offset_data + 100]), "u", members)
            with pytest.raises(tarfile.ReadError, match="unexpected end of data"):
                list(r)
            assert r.partial["__key__"] == "c0"  # what was read of the sample it broke in
        bad = bytearray(data)
        bad[5] ^= 1
        with pytest.raises(tarfile.ReadError, match="bad checksum"):
            list(TarSamples(stream(bytes(bad)), "u"))
        bad = bytearray(data)
        bad[second.offset + 3] ^= 1  # a later header: the tar ends there, as with tarfile
        assert [s["__key__"] for s in TarSamples(stream(bytes(bad)), "u")] == ["c0"]


def _write(path, data):
    path.write_bytes(data)
    return path


def test_npy_members_decode_as_np_load_does():
    def npy(a, **kw):
        buf = io.BytesIO()
        np.save(buf, a, **kw)
        return buf.getvalue()

    for a in (np.arange(24, dtype=">f4").reshape(2, 3, 4), np.asfortranarray(np.ones((3, 5), np.int16)), np.zeros(0)):
        got = decode_member("x.npy", npy(a))
        assert got.dtype == a.dtype and np.array_equal(got, a) and got.flags.writeable
    shared = bytearray(npy(np.arange(5.0)))
    decode_member("x.npy", shared)[0] = 7.0  # from a bytearray: no copy
    assert np.load(io.BytesIO(bytes(shared)))[0] == 7.0
    with pytest.raises(ValueError, match="Object arrays"):
        decode_member("x.npy", npy(np.array([{"a": 1}], dtype=object), allow_pickle=True))
    with pytest.raises(ValueError, match="the header says"):
        decode_member("x.npy", npy(np.arange(5.0))[:-3])
