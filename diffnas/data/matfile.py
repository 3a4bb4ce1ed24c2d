"""Numeric arrays out of a MATLAB level-5 MAT-file, read without scipy.

The layout follows MathWorks' "MAT-File Format" (matfile_format.pdf, "Level 5 MAT-File Format"):
a 128-byte header (116 bytes of text, 8 of subsystem offset, a 2-byte version 0x0100 and the
endian mark "IM" or "MI"), then data elements, each an 8-byte tag (data type, byte count) and its
data padded to 8 bytes; a tag whose upper 16 bits are set is a "small data element" (count in
the upper half, type in the lower, data in the tag's last 4 bytes). A variable is a miMATRIX
element, or a miCOMPRESSED element holding a zlib stream of one. A numeric miMATRIX holds array
flags (class in the low byte, the complex/global/logical bits in the next), dimensions, name,
real part and, when complex, an imaginary part; the real part may be stored in a narrower type
than its class (MATLAB writes doubles holding 1..10 as uint8) and is in column-major order.

Why not scipy.io.loadmat: one flipped byte (the complex flag on a uint8 array) crashes its C
reader with a segmentation fault, and a damaged download should be a message, not a dead process.
This reader reads only what it is asked for, never inflates more than the wanted arrays' announced
size, and checks that size against the memory on hand before reading it.
"""
from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Collection
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import DataError

HEADER = 128
MI_MATRIX, MI_COMPRESSED = 14, 15
# data types (the spec's table "MAT-File Data Types"): miINT8 .. miUINT64
STORED = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8", 12: "i8", 13: "u8"}
# array classes (the spec's table "MATLAB Array Types (Classes)"): mxDOUBLE_CLASS .. mxUINT64_CLASS
NUMERIC = {6: "f8", 7: "f4", 8: "i1", 9: "u1", 10: "i2", 11: "u2", 12: "i4", 13: "u4", 14: "i8", 15: "u8"}
OTHER = {1: "a cell array", 2: "a struct", 3: "an object", 4: "text (a char array)", 5: "a sparse matrix",
         16: "a function handle", 17: "an opaque object"}
COMPLEX_FLAG, LOGICAL_FLAG = 0x08, 0x02   # in the flags byte, the second byte of the array-flags word
OPAQUE = 17           # MATLAB's string, table, datetime...: no dimensions subelement after the flags
MAX_DIMS = 64         # numpy's limit
DEFLATE_RATIO = 1032  # zlib's most: a compressed element of n bytes inflates to at most about 1032 n
MAX_SMALL = 1 << 16   # flags, dimensions and names are tiny; a larger count is damage, not data
CHUNK = 1 << 24       # bytes read or inflated at a time


class MatError(DataError):
    """The file is not a MAT-file this reader takes, or is damaged; the message says which part."""


class NotNumeric(DataError):
    """A wanted variable is there but is not an array of real numbers (text, a struct, complex...)."""


class _Raw:
    """Reads at most `size` bytes of the file from where it stands (an uncompressed variable)."""

    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f, self.left = f, size
        self.most = size   # the most bytes it can deliver: a larger announced size is damage

    def read(self, n: int) -> bytes:
        data = self.f.read(min(n, self.left))
        self.left -= len(data)
        return data


class _Inflate:
    """Inflates a miCOMPRESSED element's zlib stream on demand, never more than asked for."""

    def __init__(self, f: BinaryIO, size: int) -> None:
        self.raw, self.z, self.tail = _Raw(f, size), zlib.decompressobj(), b""
        self.most = DEFLATE_RATIO * size + 64

    def read(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n and not self.z.eof:
            source = self.tail or self.raw.read(1 << 16)
            if not source:
                break
            out += self.z.decompress(source, n - len(out))
            self.tail = self.z.unconsumed_tail
        return bytes(out)


def _exactly(src: _Raw | _Inflate, n: int, what: str) -> bytearray:
    out, got = bytearray(n), 0   # filled in place: a large array is never held twice
    view = memoryview(out)
    while got < n:
        part = src.read(min(CHUNK, n - got))
        if not part:
            raise MatError(f"ends inside {what} ({got} of {n} bytes)")
        view[got:got + len(part)] = part
        got += len(part)
    return out


def _tag(src: _Raw | _Inflate, endian: str, what: str) -> tuple[int, int, bytes | bytearray | None]:
    """(data type, byte count, the data of a small element or None)."""
    head = _exactly(src, 8, what)
    word, count = struct.unpack(endian + "II", head)
    if word >> 16:                                   # small data element: the data is in this tag
        small = word >> 16
        if small > 4:
            raise MatError(f"{what}: a small data element of {small} bytes (at most 4)")
        return word & 0xFFFF, small, head[4:4 + small]
    return word, count, None


def _small_element(src: _Raw | _Inflate, endian: str, what: str) -> tuple[int, bytes | bytearray]:
    kind, count, data = _tag(src, endian, what)
    if data is not None:
        return kind, data
    if count > MAX_SMALL:
        raise MatError(f"{what} announces {count} bytes")
    padded = _exactly(src, count + (-count % 8), what)
    return kind, padded[:count]


def _header(f: BinaryIO) -> str:
    head = f.read(HEADER)
    if len(head) < HEADER:
        raise MatError(f"{len(head)} bytes, shorter than the 128-byte MAT-file header"
                       + (" (an empty file)" if not head else ""))
    if not any(head):
        raise MatError("the header is all zero bytes (an unfinished download?)")
    mark = head[126:128]
    if mark not in (b"IM", b"MI"):
        raise MatError(f"no MAT-file header (bytes 126-127 are {mark!r}, not the endian mark 'IM' or 'MI')")
    endian = "<" if mark == b"IM" else ">"
    (version,) = struct.unpack(endian + "H", head[124:126])
    if version == 0x0200:
        raise NotImplementedError("MATLAB v7.3 (HDF5)")
    if version != 0x0100:
        raise MatError(f"MAT-file version {version:#06x}, expected 0x0100 (level 5)")
    return endian


def _matrix_head(src: _Raw | _Inflate, endian: str) -> tuple[int, int, tuple[int, ...], str]:
    """(class, flags byte, dimensions, name) from the first subelements of a miMATRIX: the array flags,
    the dimensions (but not for an opaque object, MATLAB's string or table) and the name."""
    kind, flags = _small_element(src, endian, "the array flags")
    if kind != 6 or len(flags) != 8:   # miUINT32, 2 words
        raise MatError(f"array flags of type {kind} and {len(flags)} bytes, expected 8 bytes of miUINT32")
    (word,) = struct.unpack(endian + "I", flags[:4])
    shape: tuple[int, ...] = ()
    if word & 0xFF != OPAQUE:
        kind, dims = _small_element(src, endian, "the dimensions")
        if kind != 5 or len(dims) % 4 or not 8 <= len(dims) <= 4 * MAX_DIMS:   # miINT32, 2 to 64 of them
            raise MatError(f"dimensions of type {kind} and {len(dims)} bytes, expected 2 to {MAX_DIMS} miINT32")
        shape = struct.unpack(f"{endian}{len(dims) // 4}i", dims)
        if min(shape) < 0:
            raise MatError(f"negative dimensions {shape}")
    kind, name = _small_element(src, endian, "the array name")
    if kind not in (1, 2):   # miINT8 (MATLAB), miUINT8 (some writers)
        raise MatError(f"an array name of type {kind}, expected miINT8")
    return word & 0xFF, (word >> 8) & 0xFF, tuple(shape), name.decode("latin-1")


def _numeric(src: _Raw | _Inflate, endian: str, name: str, klass: int, flags: int, shape: tuple[int, ...],
             afford: Callable[[str, int], None]) -> np.ndarray:
    if klass not in NUMERIC:
        raise NotNumeric(f"{name} is {OTHER.get(klass, f'of MATLAB class {klass}')}, not a numeric array")
    if flags & COMPLEX_FLAG:
        raise NotNumeric(f"{name} holds complex numbers, not real ones")
    count = int(np.prod(shape, dtype=object))
    target = np.dtype(endian + NUMERIC[klass])
    afford(name, count * target.itemsize)
    kind, size, small = _tag(src, endian, f"the data of {name}")
    if kind not in STORED:
        raise MatError(f"the data of {name} is of type {kind}, not a numeric MAT-file type")
    stored = np.dtype(endian + STORED[kind])
    if size != count * stored.itemsize:
        raise MatError(f"{name} is {'x'.join(map(str, shape))} = {count} values, but its data holds "
                       f"{size} bytes of {stored.name} = {size / stored.itemsize:g} values")
    if size > src.most:   # a tiny compressed element cannot hold it: refused before any buffer is made
        raise MatError(f"the data of {name} announces {size} bytes, more than its element can hold")
    if stored != target:   # the file's data and the array of its class are both held while converting
        afford(name, count * (target.itemsize + stored.itemsize))
    data = small if small is not None else _exactly(src, size, f"the data of {name}")
    values = np.frombuffer(data, dtype=stored, count=count)
    if stored != target:
        with np.errstate(invalid="ignore", over="ignore"):   # NaN or 300 into uint8: wraps, as loadmat's
            values = values.astype(target)
    values = values.reshape(shape, order="F").astype(target.newbyteorder("="), copy=False)
    return values.astype(bool) if flags & LOGICAL_FLAG else values


def read_mat(path: Path, wanted: Collection[str],
             afford: Callable[[str, int], None] = lambda name, size: None) -> tuple[dict[str, np.ndarray], list[str]]:
    """The numeric variables named in `wanted` (as arrays in native byte order, MATLAB's shape) and
    the names of every variable the file holds, in file order. `afford(name, bytes)` is called
    before a wanted array is read and may raise to refuse one too large.

    MatError names the damage (truncated, corrupt zlib data, a malformed element); NotNumeric a
    wanted variable that is not an array of real numbers; NotImplementedError means a v7.3 (HDF5)
    file; OSError comes through."""
    found: dict[str, np.ndarray] = {}
    names: list[str] = []
    with open(path, "rb") as f:
        endian = _header(f)
        size = f.seek(0, 2)
        at = HEADER
        while at < size:
            f.seek(at)
            if size - at < 8:
                if any(f.read()):   # zero padding after the last variable is harmless
                    raise MatError(f"{size - at} stray bytes after the last variable")
                break
            kind, count = struct.unpack(endian + "II", f.read(8))
            end = at + 8 + count
            if end > size:
                raise MatError(f"a variable at byte {at} announces {count} bytes, but the file ends {size - at - 8} "
                               f"bytes after its tag (truncated?)")
            if kind in (MI_MATRIX, MI_COMPRESSED):
                try:
                    src: _Raw | _Inflate = _Raw(f, count)
                    if kind == MI_COMPRESSED:
                        src = _Inflate(f, count)
                        inner, _, _ = _tag(src, endian, f"the compressed variable at byte {at}")
                        if inner != MI_MATRIX:
                            raise MatError(f"the compressed element at byte {at} holds type {inner}, not miMATRIX")
                    if count:   # an empty miMATRIX (no subelements) is an unnamed empty array
                        klass, flags, shape, name = _matrix_head(src, endian)
                        names.append(name)
                        if name in wanted:   # a name written twice: the last one, as MATLAB's load takes it
                            found[name] = _numeric(src, endian, name, klass, flags, shape, afford)
                except zlib.error as e:
                    raise MatError(f"the compressed variable at byte {at} is corrupt (zlib: {e})") from None
                except MemoryError:
                    raise MatError(f"not enough memory for the variable at byte {at}") from None
            at = end
    return found, names
