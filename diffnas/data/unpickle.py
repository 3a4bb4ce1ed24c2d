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

from ..errors import DataError, reading

# numpy's own function, taken from what its __reduce__ names, so the deprecated numpy.core alias is not imported
# (Any: the stubs type __reduce__ as object's, str | tuple)
_SCALAR: Any = np.int64(0).__reduce__()[0]  # scalar(dtype, raw bytes)
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
    name: str
    call: Any

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


# what a numeric dtype's pickled state may say after its name: no sub-array, no fields, no custom
# size, alignment or flags (numpy writes (3, byte order, None, None, None, -1, -1, 0))
_PLAIN_DTYPE_STATE = (None, None, None, -1, -1, 0)
_NUMERIC_KINDS = "biuf"   # bool, signed and unsigned integers, floats


class _DtypeSpec:
    """What numpy.dtype(name, align, copy) gives a pickle: not a dtype yet. numpy's own BUILD
    (dtype.__setstate__) would set any fields, offsets, item size and flags it is handed, unchecked:
    a field at an offset past the item reads outside the array's buffer, and the object flag makes
    numpy take the raw bytes for Python object pointers. Here BUILD accepts only the state numpy
    writes for a plain numeric dtype (its byte order), and `dtype` is then that dtype, rebuilt from
    its name."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str):
        self.name = name
        self.dtype: np.dtype | None = None

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 8 and isinstance(state[1], bytes):
            state = (state[0], state[1].decode("latin1"), *state[2:])   # Python 2 pickles: b"<"
        if (self.dtype is None and isinstance(state, tuple) and len(state) == 8 and state[0] == 3
                and state[1] in ("<", ">", "|") and tuple(state[2:]) == _PLAIN_DTYPE_STATE):
            base = np.dtype(self.name)
            dtype = base if state[1] == "|" else base.newbyteorder(state[1])
            dtype = base if dtype.isnative else dtype
            if dtype.__reduce__()[2] == state:
                self.dtype = dtype
                return
        raise _Refused(f"refused numpy {np.dtype(self.name)!r} with state {_short(state)}: only plain numeric "
                       f"dtypes (no fields, sizes, offsets or flags) are read; {_READ}")

    def __repr__(self) -> str:
        return repr(self.dtype if self.dtype is not None else np.dtype(self.name))


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _dtype(spec: Any, align: Any = False, copy: Any = True) -> _DtypeSpec:
    """np.dtype as numpy pickles it: ('u1', False, True), then BUILD with the byte order. Only the
    names of numeric dtypes (bool, integers, floats) are taken: strings, void, structured and object
    dtypes are refused; so is an aligned one (align makes sense only with fields)."""
    if not isinstance(spec, (str, bytes)):
        raise _Refused(f"refused numpy dtype({_short(spec)}): numpy pickles name a dtype by a string such as 'u1'")
    name = spec.decode("latin1") if isinstance(spec, bytes) else spec
    try:
        dtype = np.dtype(name)
    except TypeError:
        raise _Refused(f"refused numpy dtype({name!r}): not a dtype name") from None
    if dtype.hasobject:
        raise _Refused(f"refused numpy {dtype!r}: Python object arrays are never read; {_READ}")
    if dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype is not None or align:
        raise _Refused(f"refused numpy {dtype!r}: only numeric dtypes (bool, integers, floats) are read; {_READ}")
    return _DtypeSpec(name)


def _numeric(dtype: Any, where: str) -> np.dtype:
    """The dtype a _DtypeSpec stands for once BUILD has checked its state."""
    if isinstance(dtype, _DtypeSpec) and dtype.dtype is not None:
        return dtype.dtype
    raise _Refused(f"refused {where} with dtype {_short(dtype)}: numpy pickles write a numeric dtype "
                   f"(numpy.dtype and its state)")


class _PendingArray(np.ndarray):
    """What _reconstruct gives a pickle: an empty array whose BUILD takes numpy's state (version,
    shape, dtype, Fortran order, the data as bytes) with the dtype checked; `load_pickle` hands out
    plain ndarray views of these."""

    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, tuple) and len(state) in (4, 5)):
            raise _Refused(f"refused numpy array state {_short(state)}: numpy pickles write "
                           "(version, shape, dtype, fortran, data)")
        at = len(state) - 3   # the dtype's place: (shape, dtype, ...) or (version, shape, dtype, ...)
        data = state[-1]
        if not isinstance(data, (bytes, bytearray)):
            raise _Refused(f"refused numpy array data of type {type(data).__name__}: numpy pickles write the "
                           "data of a numeric array as bytes")
        state = state[:at] + (_numeric(state[at], "a numpy array"),) + state[at + 1:]
        super().__setstate__(state)


def _reconstruct(subtype: Any, shape: Any, placeholder: Any) -> np.ndarray:
    """ndarray.__reduce__'s _reconstruct(ndarray, (0,), b'b'): an empty array whose state (shape,
    dtype, the data as bytes) BUILD then sets. Any other arguments are refused."""
    if subtype is not _NDARRAY or shape != (0,) or placeholder not in (b"b", "b"):
        raise _Refused(f"refused numpy _reconstruct({subtype!r}, {_short(shape)}, {_short(placeholder)}): "
                       "numpy pickles write _reconstruct(ndarray, (0,), b'b')")
    return _PendingArray((0,), np.uint8)


def _scalar(dtype: Any, raw: Any) -> np.generic:
    """A numpy scalar, as numpy pickles it: scalar(dtype, its itemsize raw bytes)."""
    dt = _numeric(dtype, "a numpy scalar")
    if not (isinstance(raw, bytes) and len(raw) == dt.itemsize):
        what = f"{len(raw)} bytes" if isinstance(raw, bytes) else type(raw).__name__
        raise _Refused(f"refused numpy scalar({dt!r}, {what}): numpy pickles write a dtype and its "
                       f"{dt.itemsize} bytes")
    return _SCALAR(dt, raw)


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any, axis_order: Any = None) -> np.ndarray:
    """numpy.core.numeric._frombuffer, what protocol 5 rebuilds a contiguous array with: the raw
    bytes, the dtype, the shape and the memory order ('K' with a permutation of the axes)."""
    ok = (isinstance(buf, (bytes, bytearray)) and isinstance(dtype, _DtypeSpec)
          and isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)
          and order in ("C", "F", "K")
          and (axis_order is None or isinstance(axis_order, tuple) and all(type(a) is int for a in axis_order)
               and sorted(axis_order) == list(range(len(shape)))))
    if not ok:
        tail = "" if axis_order is None else f", {_short(axis_order)}"
        raise _Refused(f"refused numpy _frombuffer({type(buf).__name__}, {_short(dtype)}, {_short(shape)}, "
                       f"{_short(order)}{tail}): numpy pickles write bytes, a dtype, a shape and the order "
                       "'C', 'F' or 'K'")
    array = np.frombuffer(buf, dtype=_numeric(dtype, "numpy _frombuffer"))  # numpy._core.numeric._frombuffer
    if order == "K" and axis_order is not None:
        return array.reshape(shape, order="C").transpose(axis_order)
    return array.reshape(shape, order=order)


def _plain(value: Any, seen: dict[int, Any] | None = None) -> Any:
    """The unpickled object with its arrays as plain ndarrays; a dtype on its own is refused (a CIFAR
    batch holds none, and an unchecked one must not leave here). A container met again (a pickle's
    memo shares it) is converted once: 40 lists each holding the one before twice are 40 lists, not
    2**40 copies (a 10 kB file that hung the reader), and a list that holds itself is no recursion."""
    if isinstance(value, _PendingArray):
        return value.view(np.ndarray)
    if isinstance(value, _DtypeSpec):
        raise _Refused(f"refused a bare numpy dtype ({value!r}): {_READ}")
    if not isinstance(value, (dict, list, tuple)):
        return value
    seen = {} if seen is None else seen
    if id(value) in seen:
        return seen[id(value)]
    if isinstance(value, tuple):   # a tuple cannot hold itself but through a list or dict, met first
        converted = tuple(_plain(v, seen) for v in value)
        seen[id(value)] = converted
        return converted
    if isinstance(value, list):
        plain_list: list[Any] = []
        seen[id(value)] = plain_list
        plain_list.extend(_plain(v, seen) for v in value)
        return plain_list
    plain_dict: dict[Any, Any] = {}
    seen[id(value)] = plain_dict
    plain_dict.update((_plain(k, seen), _plain(v, seen)) for k, v in value.items())
    return plain_dict


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
# what a corrupt or truncated pickle raises while being read (EOFError: cut short; OverflowError: a
# length field beyond what the machine can hold)
_PICKLE_FAILURES = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
                    IndexError, KeyError, struct.error, MemoryError, RecursionError, OverflowError)


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
        with reading(path), open(path, "rb") as f:
            return _plain(_RestrictedUnpickler(f).load())
    except _Refused as e:
        raise DataError(f"{path}: {e}") from None
    except _PICKLE_FAILURES as e:
        with open(path, "rb") as f:
            compressed = {b"\x1f\x8b": "gzip", b"PK": "zip", b"BZ": "bzip2", b"\xfd7": "xz"}.get(f.read(2))
        if compressed:   # a batch file compressed on its own: named as such, not "invalid load key, '\x1f'"
            raise DataError(f"{path}: {compressed}-compressed, not a pickle; decompress it (the official "
                            f"archive unpacks to plain pickle batch files)") from None
        raise DataError(f"{path}: truncated or corrupt pickle ({type(e).__name__}: {e})") from None
