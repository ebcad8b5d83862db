"""The samples of a WebDataset tar, reading only the members asked for.

webdataset reads tars with Python's tarfile, which parses every header in full and reads
every member: about 0.7 ms per 9-member MoMu sample here, more than everything else the
loader does. A trainer needs two or three of the nine members (never the FLAC), so the
loader reads its tars with this small ustar / pax / GNU reader instead. It parses just a
header's name, size and type (its checksum verified) and skips the members not asked for
unread. A local tar is memory-mapped (copy-on-write): a member is then a memoryview of the
map, hashed and decoded in place with no copy (writable, so .npy arrays are too), and only
the pages of the members asked for are touched. Other streams (pipes, remote URLs) are read:
members asked for into bytearrays, the others skipped by reading.

A mapped tar must not shrink while its samples are in use (a file truncated under a map
raises SIGBUS on access); shards are written once and replaced by a folder swap
(momu_data.shards), which leaves a mapped file intact.

Samples are grouped as webdataset groups them (consecutive members with the same key: the
name up to the first dot of its last path part; the rest, lower-cased, is the member name),
and damage reads as it reads with tarfile's stream mode, so the loader's messages stay the
same: a bad first header raises tarfile.ReadError("bad checksum"), a member cut short
ReadError("unexpected end of data"), and a damaged header after the first ends the tar
quietly, as tarfile does; the loader's per-tar sample count names what was lost.
"""

from __future__ import annotations

import mmap
import os
import re
import stat as statmod
import struct
import tarfile
import zlib
from collections.abc import Iterator

BLOCK = 512
_ZEROS = bytes(BLOCK)
_REGULAR = (b"0", b"\0", b"7")  # file, old-style file, contiguous file
_GNU_TYPES = (b"L", b"K", b"S")  # GNU long name / long link name of the next header, sparse file
_EXTENDED = (b"x", b"g", b"L", b"K")  # pax headers (local, global), GNU long names: read, not members
# webdataset's rules: names matching this are metadata, skipped; key = up to the first dot.
_META = re.compile(r"__[^/]*__($|/)")
_SIGNED = struct.Struct("148b8x356b")
# name, size, checksum, type flag, ustar name prefix: the fields read, in one unpack
_FIELDS = struct.Struct("100s24x12s12x8s1s188x155s12x")


class _BadHeader(Exception):
    pass


def _number(field: bytes) -> int:
    """A header's octal (or GNU base-256) number field, as tarfile's nti reads it. A shard's
    headers repeat a few sizes: the fields seen are looked up (parsing one costs about a
    microsecond, and a sample has nine headers)."""
    n = _numbers.get(field)
    if n is None:
        n = _parse_number(field)
        if len(_numbers) < _LOOKUP_LIMIT:
            _numbers[field] = n
    return n


def _parse_number(field: bytes) -> int:
    if field[0] & 0x80:
        if field[0] not in (0x80, 0xFF):
            raise _BadHeader("invalid header")
        n = int.from_bytes(field[1:], "big")
        return n - (1 << (8 * (len(field) - 1))) if field[0] == 0xFF else n
    try:
        return int(field.split(b"\0", 1)[0].strip() or b"0", 8)
    except ValueError:
        raise _BadHeader("invalid header") from None


def _checksum(field: bytes) -> tuple[int, int]:
    """A header's checksum field -> (the checksum, what adler32's low half of a header with
    that field must be: 1 + its byte sum modulo 65521, see _header); looked up as _number."""
    c = _checksums.get(field)
    if c is None:
        chk = _parse_number(field)
        c = chk, (chk - 256 + sum(field) + 1) % 65521
        if len(_checksums) < _LOOKUP_LIMIT:
            _checksums[field] = c
    return c


_LOOKUP_LIMIT = 1 << 16  # fields remembered (of 12 and 8 bytes: a few MB at most)
_numbers: dict[bytes, int] = {}
_checksums: dict[bytes, tuple[int, int]] = {}


def _header(h: bytes) -> tuple[str, int, bytes]:
    """(name, size, type flag) of a 512-byte header whose checksum is right.

    The checksum is the sum of the header's bytes with its own field as spaces (unsigned, or
    signed as some old tars have it). The sum is first compared modulo 65521 through adler32
    (whose low half is 1 + the byte sum modulo 65521; C speed, where Python's sum of 512
    bytes costs microseconds), and in full only when that differs; a header passes that
    way with a wrong sum only if its byte sum changed by a multiple of 65521, which takes
    at least 257 changed bytes."""
    name, size, field, kind, prefix = _FIELDS.unpack(h)
    chk, low = _checksum(field)
    if zlib.adler32(h) & 0xFFFF != low:
        if chk != 256 + sum(h) - sum(field) and chk != 256 + sum(_SIGNED.unpack(h)):
            raise _BadHeader("bad checksum")
    name = name.partition(b"\0")[0]
    if prefix[0] and kind not in _GNU_TYPES:  # a ustar long name (tarfile reads it so whatever the magic)
        name = prefix.partition(b"\0")[0] + b"/" + name
    size = _number(size)
    if size < 0:
        raise _BadHeader("invalid header")
    return name.decode("utf-8", "surrogateescape"), size, kind


def _pax(data: bytes) -> dict[str, str]:
    """The records of a pax extended header: b"<length> <key>=<value>\\n" each."""
    out, pos = {}, 0
    try:
        while pos < len(data) and data[pos] != 0:
            space = data.index(b" ", pos)
            length = int(data[pos:space])
            key, eq, value = data[space + 1 : pos + length - 1].partition(b"=")
            if length <= 0 or not eq:
                raise ValueError
            out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
            pos += length
    except ValueError:
        raise tarfile.ReadError("invalid pax header") from None
    return out


class TarSamples:
    """Iterate over the samples of one tar stream: {"__key__", "__url__", member: its bytes
    (a memoryview of the mapped file, or a bytearray)}; with `members` (a set of member
    names such as {"mel.npy", "sha256.json"}) only those are read and the names of the
    others are listed, in tar order, in the sample's "__skipped__".

    Raises tarfile.ReadError (or ValueError for a repeated member name) on damage; the
    sample it broke in, as far as it was read, is then `partial` (webdataset passes such a
    sample on, so the loader's checks name its missing members)."""

    def __init__(self, stream, url: str, members=None):
        self.stream, self.url = stream, url
        self.members = None if members is None else frozenset(members)
        self.partial: dict | None = None
        # A local file: mapped, read at _pos up to _end. A stream that can seek: _pos, _end
        # known (skips seek, and a member that would end past the end is known to be cut
        # before reading it). Otherwise _end is None and skips read.
        self._map = self._view = None
        # os.stat_result of the tar when it is a local file read from its start (what the
        # loader's record of verified tars is keyed on), else None
        self.stat: os.stat_result | None = None
        self._pos, self._end = self._extent(stream)

    def _extent(self, stream) -> tuple[int, int | None]:
        try:
            if not stream.seekable():
                return 0, None
            here = stream.tell()
            try:
                fd = stream.fileno()
            except (AttributeError, OSError, ValueError):
                end = stream.seek(0, os.SEEK_END)
                stream.seek(here)
                return here, end
            st = os.fstat(fd)
            end = st.st_size
            if here == 0 and statmod.S_ISREG(st.st_mode):
                self.stat = st
            if end > here:
                self._map = mmap.mmap(fd, 0, access=mmap.ACCESS_COPY)  # holds its own descriptor
                self._view = memoryview(self._map)
            return here, end
        except (AttributeError, OSError, ValueError):
            return 0, None

    def _block(self) -> bytes:
        if self._map is not None:
            h = self._map[self._pos : self._pos + BLOCK]
        else:
            h = self.stream.read(BLOCK)
        self._pos += len(h)
        return h

    def _read(self, n: int) -> bytearray | memoryview:
        if self._end is not None and self._pos + n > self._end:
            raise tarfile.ReadError("unexpected end of data")
        if self._view is not None:
            self._pos += n
            return self._view[self._pos - n : self._pos]
        buf = bytearray(n)
        got = self.stream.readinto(buf) if n else 0
        while got < n:  # a pipe may return less than asked before its end
            more = self.stream.readinto(memoryview(buf)[got:])
            if not more:
                raise tarfile.ReadError("unexpected end of data")
            got += more
        self._pos += n
        return buf

    def _skip(self, n: int, pad: int) -> None:
        """Skip n bytes of data (all must be there) and its padding (may be cut at the end)."""
        f = self.stream
        if self._end is not None:
            if self._pos + n > self._end:
                raise tarfile.ReadError("unexpected end of data")
            if n + pad and self._map is None:
                f.seek(n + pad, os.SEEK_CUR)
            self._pos += n + pad
            return
        left = n + pad
        while left > 0:
            chunk = f.read(min(left, 1 << 20))
            if not chunk:
                if left > pad:
                    raise tarfile.ReadError("unexpected end of data")
                return
            left -= len(chunk)

    def __iter__(self) -> Iterator[dict]:
        members, url = self.members, self.url
        # A mapped tar is read here in line (its headers are most of the reader's time); the
        # methods above read other streams, and a mapped tar's damaged end.
        mapped, view, end = self._map, self._view, self._end
        first, pending = True, {}  # pending: the name/size a pax or GNU header sets for the next
        sample = skipped = None
        while True:
            if mapped is not None:
                pos = self._pos
                h = mapped[pos : pos + BLOCK]
                self._pos = pos + len(h)
            else:
                h = self._block()
            if len(h) < BLOCK or h == _ZEROS:
                if first and len(h) < BLOCK:
                    raise tarfile.ReadError("empty file" if not h else "truncated header")
                break  # the end (or a tar cut at a header: the sample count tells)
            try:
                name, size, kind = _header(h)
            except _BadHeader as e:
                if first:
                    raise tarfile.ReadError(str(e)) from None
                if pending:
                    raise tarfile.ReadError("missing or bad subsequent header") from None
                break  # tarfile ends a tar here without an error
            first = False
            pad = -size % BLOCK
            if kind in _EXTENDED:
                data = bytes(self._read(size))
                self._skip(0, pad)
                if kind == b"x":
                    pending.update(_pax(data))
                elif kind == b"L":
                    pending["path"] = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                continue  # global pax headers and long link names change nothing we read
            if pending:
                name = pending.get("path", name)
                if "size" in pending:
                    try:
                        size = int(pending["size"])
                    except ValueError:
                        raise tarfile.ReadError("invalid pax header") from None
                    pad = -size % BLOCK
                pending = {}
            # webdataset's key: the name up to the first dot of its last part; the rest, the member
            dot = name.find(".", name.rfind("/") + 1)
            if kind not in _REGULAR or dot < 1 or name[dot - 1] == "/" or (name[:2] == "__" and _META.match(name)):
                self._skip(size, pad)  # directories, links, metadata, names without a key
                continue
            key, member = name[:dot], name[dot + 1 :].lower()
            if sample is None or key != sample["__key__"]:
                if sample is not None:
                    self.partial = None
                    yield sample
                sample = self.partial = {"__key__": key, "__url__": url}
                skipped = None
            if member in sample or (skipped is not None and member in skipped):
                raise ValueError(f"{name}: duplicate file name in tar file {member}")
            pos = self._pos
            if members is None or member in members:
                if view is not None and pos + size <= end:
                    sample[member] = view[pos : pos + size]
                    self._pos = pos + size + pad
                else:
                    sample[member] = self._read(size)
                    self._skip(0, pad)
            else:
                if mapped is not None and pos + size <= end:
                    self._pos = pos + size + pad
                else:
                    self._skip(size, pad)
                if skipped is None:
                    skipped = sample["__skipped__"] = []
                skipped.append(member)
        self.partial = None
        if sample is not None:
            yield sample
