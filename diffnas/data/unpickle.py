"""A restricted unpickler for the CIFAR python batches: it builds only dicts, lists, strings, numbers
and numeric numpy arrays and scalars, and refuses every other global before it is looked up, so a
crafted file cannot run code (https://docs.python.org/3/library/pickle.html, "Restricting Globals").

The official files are Python 2 pickles (protocol 2, numpy 1); users re-pickle them with Python 3 at
any protocol, under numpy 1 (numpy.core.*) or numpy 2 (numpy._core.*), sometimes with str keys and
numpy labels. `formats.read_cifar_batch` checks what comes out.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import DataError

# numpy's own functions, taken from what its __reduce__ names, so the deprecated numpy.core alias is not imported
_RECONSTRUCT = np.zeros(0).__reduce__()[0]  # _reconstruct(ndarray, (0,), b"b"), then BUILD sets the array's state
_SCALAR = np.int64(0).__reduce__()[0]  # scalar(dtype, raw bytes)
# messages of refusals: what the file holds that is not read, and (after the colon) what is
_READ = "only dicts, lists, strings, numbers and numeric numpy arrays are read"


class _Refused(Exception):
    """Something the restricted unpickler does not build; load_pickle prefixes the path."""


def _latin1(text: Any, encoding: Any = "latin1") -> bytes:
    """_codecs.encode as protocol 2 uses it for bytes: str to latin1, nothing else."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Refused(f"refused _codecs.encode({type(text).__name__}, {encoding!r}); "
                       "only str to latin1 (protocol 2 bytes)")
    return text.encode("latin1")


def _empty_bytes(*args: Any) -> bytes:
    """bytes() as protocol 2 uses it for b''; bytes(n) and the like are refused."""
    if args:
        raise _Refused("refused bytes() with arguments; only bytes() (protocol 2 b'')")
    return b""


class _Global:
    """What find_class hands out: calls `call`, and has no attributes a pickle could set. BUILD on a
    bare function would write into its __dict__ or reset its __defaults__, state one file could leave
    for the next; here BUILD is refused."""

    __slots__ = ("name", "call")

    def __init__(self, name: str, call: Any):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "call", call)

    def __call__(self, *args: Any) -> Any:
        return self.call(*args)

    def __setstate__(self, state: Any) -> None:
        raise _Refused(f"refused pickle BUILD on {self.name}: {_READ}")

    def __repr__(self) -> str:
        return self.name


def _ndarray(*args: Any) -> None:
    raise _Refused("refused a direct call of numpy.ndarray: numpy pickles name it only as _reconstruct's "
                   "first argument")


# numpy.ndarray, which numpy's pickles name only as _reconstruct's first argument; called directly
# (ndarray(shape) allocates memory that the file does not fill) it is refused
_NDARRAY = _Global("ndarray", _ndarray)


def _dtype(spec: Any, align: Any = False, copy: Any = True) -> np.dtype:
    """np.dtype as numpy pickles it: ('u1', False, True), a string name, then BUILD sets byte order and
    fields (whose own dtypes come through here too). Object dtypes are refused: an object array holds
    arbitrary Python objects, nothing a dataset needs."""
    if not isinstance(spec, (str, bytes)):
        raise _Refused(f"refused numpy dtype({spec!r}): numpy pickles name a dtype by a string such as 'u1'")
    dtype = np.dtype(spec.decode("latin1") if isinstance(spec, bytes) else spec, bool(align), bool(copy))
    if dtype.hasobject:
        raise _Refused(f"refused numpy {dtype!r}: Python object arrays are never read; {_READ}")
    return dtype


def _reconstruct(subtype: Any, shape: Any, placeholder: Any) -> np.ndarray:
    """ndarray.__reduce__'s _reconstruct(ndarray, (0,), b'b'): an empty array whose state (shape,
    dtype, the data as bytes) BUILD then sets. Any other arguments are refused."""
    if subtype is not _NDARRAY or shape != (0,) or placeholder not in (b"b", "b"):
        raise _Refused(f"refused numpy _reconstruct({subtype!r}, {shape!r}, {placeholder!r}): numpy pickles "
                       "write _reconstruct(ndarray, (0,), b'b')")
    return _RECONSTRUCT(np.ndarray, (0,), b"b")


def _scalar(dtype: Any, raw: Any) -> np.generic:
    """A numpy scalar, as numpy pickles it: scalar(dtype, its itemsize raw bytes)."""
    if not (isinstance(dtype, np.dtype) and isinstance(raw, bytes) and len(raw) == dtype.itemsize):
        what = f"{len(raw)} bytes" if isinstance(raw, bytes) else type(raw).__name__
        raise _Refused(f"refused numpy scalar({dtype!r}, {what}): numpy pickles write a dtype and its "
                       f"{dtype.itemsize if isinstance(dtype, np.dtype) else 'itemsize'} bytes")
    return _SCALAR(dtype, raw)


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any, axis_order: Any = None) -> np.ndarray:
    """numpy.core.numeric._frombuffer, what protocol 5 rebuilds a contiguous array with: the raw
    bytes, the dtype, the shape and the memory order ('K' with a permutation of the axes)."""
    ok = (isinstance(buf, (bytes, bytearray)) and isinstance(dtype, np.dtype)
          and isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)
          and order in ("C", "F", "K")
          and (axis_order is None or isinstance(axis_order, tuple) and all(type(a) is int for a in axis_order)
               and sorted(axis_order) == list(range(len(shape)))))
    if not ok:
        tail = "" if axis_order is None else f", {axis_order!r}"
        raise _Refused(f"refused numpy _frombuffer({type(buf).__name__}, {dtype!r}, {shape!r}, {order!r}{tail}): "
                       "numpy pickles write bytes, a dtype, a shape and the order 'C', 'F' or 'K'")
    array = np.frombuffer(buf, dtype=dtype)  # numpy._core.numeric._frombuffer, line for line
    if order == "K" and axis_order is not None:
        return array.reshape(shape, order="C").transpose(axis_order)
    return array.reshape(shape, order=order)


_ADMITTED: dict[tuple[str, str], Any] = {
    # ndarrays, protocols 0-4: _reconstruct + BUILD; under numpy 1 (the official files) and numpy 2
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "dtype"): _dtype,
    # ndarrays, protocol 5 (contiguous arrays, the data written in-band)
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    # numpy scalars, e.g. labels written as list(np_array)
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    # Python 3's protocol 2 writes bytes as _codecs.encode(text, "latin1") and b"" as bytes(); both are
    # narrowed to exactly that (no other encoding, no bytes(n) allocation)
    ("_codecs", "encode"): _latin1,
    ("__builtin__", "bytes"): _empty_bytes,
    ("builtins", "bytes"): _empty_bytes,
}
_PICKLE_GLOBALS: dict[tuple[str, str], _Global] = {
    key: _Global(f"{key[0]}.{key[1]}", call) for key, call in _ADMITTED.items()}
_PICKLE_GLOBALS[("numpy", "ndarray")] = _NDARRAY
# what a corrupt or truncated pickle raises while being read (EOFError: cut short)
_PICKLE_FAILURES = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
                    IndexError, KeyError, struct.error, MemoryError)


class _NoBuffers:
    """The `buffers` of a file pickled with buffer_callback: its array data is not in the file."""

    def __iter__(self) -> _NoBuffers:
        return self

    def __next__(self) -> Any:
        raise _Refused("refused an out-of-band pickle buffer: the file was written with pickle's "
                       "buffer_callback and does not hold its array data")


class _RestrictedUnpickler(pickle.Unpickler):
    """Admits only what a CIFAR batch holds: dicts, lists, bytes, str, numbers, numeric numpy arrays
    and scalars.

    Every other global (builtins.eval, os.system, subprocess.Popen, numpy.load, ...) is refused before
    it is looked up, so a crafted file cannot run code (https://docs.python.org/3/library/pickle.html,
    "Restricting Globals"); the numpy ones admitted accept only the arguments numpy's pickles write.
    """

    def __init__(self, file: BinaryIO):
        super().__init__(file, encoding="bytes", buffers=_NoBuffers())  # the official files are Python 2 pickles

    def find_class(self, module: str, name: str) -> Any:
        allowed = _PICKLE_GLOBALS.get((module, name))
        if allowed is None:
            raise _Refused(f"refused pickle global {module}.{name}: {_READ}")
        return allowed

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused(f"refused pickle persistent id {pid!r}: {_READ}")


def load_pickle(path: Path) -> Any:
    """Unpickle `path` with the restricted unpickler; refused, corrupt or truncated files raise DataError."""
    try:
        with open(path, "rb") as f:
            return _RestrictedUnpickler(f).load()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    except _Refused as e:
        raise DataError(f"{path}: {e}") from None
    except _PICKLE_FAILURES as e:
        raise DataError(f"{path}: truncated or corrupt pickle ({type(e).__name__}: {e})") from None
