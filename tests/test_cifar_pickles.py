"""CIFAR python pickles besides the official Python 2 files: Python 3 re-pickles at every protocol under
numpy 1 and numpy 2 module names, str keys, numpy labels; and what the restricted unpickler refuses."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from formats_fixtures import Numpy1Pickler, write_cifar10, write_cifar100

from diffnas.data import load_dataset
from diffnas.errors import DataError

# numpy's pickle helpers, as its reduce names them (numpy._core.* under numpy 2, numpy.core.* under numpy 1)
_reconstruct = np.zeros(0).__reduce__()[0]
scalar = np.int64(0).__reduce__()[0]
_frombuffer = np.zeros(1).__reduce_ex__(5)[0]
CORE = _reconstruct.__module__.rpartition(".")[0]
# the installed numpy's own names, and numpy 1's; the pickler and the package its arrays are rebuilt from
PICKLERS = {"installed-numpy": (pickle.Pickler, CORE), "numpy1-names": (Numpy1Pickler, "numpy.core")}


def repickle(folder: Path, protocol: int, pickler: type = pickle.Pickler,
             change: Callable[[dict], dict] = lambda batch: batch) -> None:
    """Re-pickle every batch file as a user would: pickle.load(encoding="bytes"), change, pickler.dump."""
    for path in sorted(folder.iterdir()):
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        if b"data" in batch:
            batch = change(batch)
        with open(path, "wb") as f:
            pickler(f, protocol=protocol).dump(batch)


def write_test_batch(root: Path, batch: object, **dump) -> Path:
    """CIFAR-10 in root, its test_batch replaced by pickle.dumps(batch, **dump)."""
    write_cifar10(root)
    path = root / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(pickle.dumps(batch, **dump))
    return path


def message(info) -> str:
    text = str(info.value)
    assert "\n" not in text
    return text


def loads_as(arrays: dict, root: Path, name: str = "cifar10") -> None:
    ds = load_dataset(name, root)
    for part in ("train", "test"):
        np.testing.assert_array_equal(getattr(ds, part).images.numpy(), arrays[f"{part}_images"])
        np.testing.assert_array_equal(getattr(ds, part).labels.numpy(), arrays[f"{part}_labels"])


# ------------------------------------------------------------------------------------------- accepted

@pytest.mark.parametrize("numpy", PICKLERS)
@pytest.mark.parametrize("protocol", range(6))
def test_python3_repickles_with_numpy_labels_at_every_protocol(tmp_path, protocol, numpy):
    arrays = write_cifar10(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"

    def numpy_labels(batch: dict) -> dict:  # `list(np_array)`: a list of numpy int64 scalars
        return {**batch, b"labels": list(np.asarray(batch[b"labels"], np.int64))}

    pickler, core = PICKLERS[numpy]
    repickle(folder, protocol, pickler, numpy_labels)
    raw = (folder / "test_batch").read_bytes()
    # protocol 5 passes an array's bytes to numeric._frombuffer, the others use multiarray._reconstruct
    assert f"{core}.{'numeric' if protocol == 5 else 'multiarray'}".encode() in raw
    assert b"scalar" in raw and (b"_frombuffer" in raw) == (protocol == 5)
    loads_as(arrays, tmp_path)


@pytest.mark.parametrize("labels", [
    lambda y: [int(v) for v in y],
    lambda y: list(y.astype(np.uint8)),
    lambda y: y.astype(np.int64),
    lambda y: y.astype(np.uint8),
    lambda y: np.repeat(y.astype(np.int32), 2)[::2],
    lambda y: [float(v) for v in y],  # whole numbers written as floats name a class without doubt
    lambda y: y.astype(np.float32),
], ids=["ints", "uint8-scalars", "int64-array", "uint8-array", "int32-strided", "whole-floats", "float32-array"])
@pytest.mark.parametrize("protocol", [2, 5])
def test_labels_as_numpy_integers_or_whole_numbers(tmp_path, protocol, labels):
    arrays = write_cifar10(tmp_path)
    repickle(tmp_path / "cifar-10-batches-py", protocol,
             change=lambda batch: {**batch, b"labels": labels(np.asarray(batch[b"labels"]))})
    loads_as(arrays, tmp_path)


@pytest.mark.parametrize("name, write", [("cifar10", write_cifar10), ("cifar100", write_cifar100)])
@pytest.mark.parametrize("protocol", [2, 5])
def test_str_keys(tmp_path, name, write, protocol):
    arrays = write(tmp_path)
    folder = next(tmp_path.iterdir())
    repickle(folder, protocol, change=lambda batch: {k.decode(): v for k, v in batch.items()})
    loads_as(arrays, tmp_path, name)


@pytest.mark.parametrize("layout", [np.asfortranarray, lambda x: np.repeat(x, 2, axis=1)[:, ::2]],
                         ids=["fortran", "strided-view"])
@pytest.mark.parametrize("numpy", PICKLERS)
def test_protocol_5_arrays_of_any_memory_layout(tmp_path, layout, numpy):
    arrays = write_cifar10(tmp_path)
    repickle(tmp_path / "cifar-10-batches-py", 5, PICKLERS[numpy][0],
             lambda batch: {**batch, b"data": layout(batch[b"data"])})
    loads_as(arrays, tmp_path)


# ------------------------------------------------------------------------------------------- labels refused

N = 4  # write_cifar10 puts 4 images in test_batch


@pytest.mark.parametrize("labels, found", [
    ([1.5] * N, "holds 1.5 (float) at index 0"),
    ([2, 3, 1, np.float64(0.25)], "holds 0.25 (float64) at index 3"),
    ([1, True, 2, 3], "holds True (bool) at index 1"),
    (np.array([0, 1, 2, 3.5]), "holds 3.5 (float64) at index 3"),
    (np.array([True, False, True, True]), f"holds True ({type(np.True_).__name__}) at index 0"),
    ([1, 2, 3, float("nan")], "holds nan (float) at index 3"),
    (["3"] * N, "holds '3' (str) at index 0"),
    ([None] * N, "holds None (NoneType) at index 0"),
    ([[1]] * N, "holds [1] (list) at index 0"),
])
def test_labels_that_are_not_integers_are_refused(tmp_path, labels, found):
    path = write_test_batch(tmp_path, {b"data": np.zeros((N, 3072), np.uint8), b"labels": labels}, protocol=5)
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", tmp_path)
    assert message(info) == f"{path}: 'labels' {found}, expected integer class indices 0..9"


@pytest.mark.parametrize("labels, found", [
    ([0, 1, 10, 2], "holds 10 at index 2"), ([0, -1, 1, 2], "holds -1 at index 1"),
    (np.array([0, 1, 2, 300], np.int64), "holds 300 at index 3"), ([2**70] * N, f"holds {2**70} at index 0"),
])
def test_labels_out_of_range_name_the_file(tmp_path, labels, found):
    path = write_test_batch(tmp_path, {b"data": np.zeros((N, 3072), np.uint8), b"labels": labels}, protocol=2)
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", tmp_path)
    assert message(info) == f"{path}: 'labels' {found}, expected integer class indices 0..9"


@pytest.mark.parametrize("labels, found", [
    (np.zeros((N, 1), np.int64), "is an int64 array of shape (4, 1)"),
    ({1: 2}, "is a dict"),
    ([0, 1, 2], "has 3 entries for 4 images"),
])
def test_labels_of_the_wrong_shape_are_refused(tmp_path, labels, found):
    path = write_test_batch(tmp_path, {b"data": np.zeros((N, 3072), np.uint8), b"labels": labels}, protocol=4)
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", tmp_path)
    assert message(info) == f"{path}: 'labels' {found}, expected {N} integer class indices (a list or a 1-D array)"


# ------------------------------------------------------------------------------------------- unpickler refusals

class _Call:
    """Pickles as the call f(*args): how a crafted file calls an admitted global with arguments of its choice."""

    def __init__(self, f: Callable, *args: object):
        self.f, self.args = f, args

    def __reduce__(self):
        return self.f, self.args


@pytest.mark.parametrize("payload, refused", [
    (np.array([1, 2], dtype=object), "refused numpy dtype('O')"),
    (np.zeros(2, dtype=[("a", "u1"), ("b", "O")]), "refused numpy dtype('V9')"),  # structured: before its fields
    (_Call(np.dtype, [("a", "u1"), ("b", "O")]), "refused numpy dtype([('a', 'u1'), ('b', 'O')])"),
    (_Call(np.ndarray, (1 << 20,)), "refused a direct call of numpy.ndarray"),
    (_Call(_reconstruct, np.ndarray, (1 << 20,), b"b"), "refused numpy _reconstruct(ndarray, (1048576,), b'b')"),
    (_Call(scalar, np.dtype("i8"), 5), "refused numpy scalar(dtype('int64'), int)"),
    (_Call(scalar, np.dtype("i8"), b"\x05"), "refused numpy scalar(dtype('int64'), 1 bytes)"),
    (_Call(_frombuffer, "abc", np.dtype("u1"), (3,), "C"), "refused numpy _frombuffer(str, dtype('uint8'), (3,), 'C')"),
    (_Call(_frombuffer, b"abc", np.dtype("u1"), 3, "C"), "refused numpy _frombuffer(bytes, dtype('uint8'), 3, 'C')"),
])
@pytest.mark.parametrize("protocol", [2, 5])
def test_numpy_globals_admit_only_plain_arrays_and_scalars(tmp_path, payload, refused, protocol):
    path = write_test_batch(tmp_path, {b"data": np.zeros((N, 3072), np.uint8), b"labels": [0] * N,
                                       b"filenames": payload}, protocol=protocol)
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", tmp_path)
    text = message(info)
    assert text.startswith(f"{path}: {refused}: ") and "corrupt" not in text and "unsafe" not in text


class _Dtype:
    """Pickles as numpy.dtype(name) followed by BUILD with `state`, as numpy writes a dtype, but with
    the state of the crafter's choice: numpy's own dtype.__setstate__ would take any of these."""

    def __init__(self, name: str, state: tuple):
        self.name, self.state = name, state

    def __reduce__(self):
        return np.dtype, (self.name, False, True), self.state


class _Array:
    """Pickles as numpy does an array (_reconstruct, then BUILD with (1, shape, dtype, False, data))."""

    def __init__(self, dtype: object, shape: tuple, data: bytes):
        self.dtype, self.shape, self.data = dtype, shape, data

    def __reduce__(self):
        return _reconstruct, (np.ndarray, (0,), b"b"), (1, self.shape, self.dtype, False, self.data)


U8 = np.dtype("u8").__reduce__()[2]   # (3, '<', None, None, None, -1, -1, 0) on a little-endian machine


@pytest.mark.parametrize("state", [
    # a field 100 MB past the 8-byte item: reading the element reads (or faults) outside the buffer
    (3, "|", None, ("a",), {"a": (np.dtype("u8"), 100_000_000)}, 8, 1, 0),
    (3, "|", None, ("a",), {"a": (np.dtype("u8"), 0)}, 8, 1, 0),   # any fields at all
    (3, U8[1], None, None, None, -1, -1, 63),   # the object flag: the raw bytes taken as object pointers
    (3, U8[1], None, None, None, 4096, 1, 0),   # an item size larger than the type
    (3, U8[1], ("u1", (8,)), None, None, -1, -1, 0),   # a sub-array
    (3, "=", None, None, None, -1, -1, 0),      # not a byte order numpy writes
    (2, U8[1], None, None, None, -1, -1, 0),
    "not a tuple",
])
@pytest.mark.parametrize("where", ["data", "labels"])
def test_a_dtype_state_other_than_numpys_plain_one_is_refused(tmp_path, state, where):
    """numpy.dtype.__setstate__ sets fields, offsets, item size and flags unchecked; a crafted state
    must be refused before any array is made with it (a field past the item made the process read
    outside the buffer and crash; the object flag made numpy take file bytes for pointers)."""
    crafted = _Array(_Dtype("u8", state), (N,), bytes(8 * N))
    batch = {b"data": np.zeros((N, 3072), np.uint8), b"labels": [0] * N, where.encode(): crafted}
    path = write_test_batch(tmp_path, batch, protocol=2)
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", tmp_path)
    assert message(info).startswith(f"{path}: refused numpy dtype('uint64') with state ")


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_numpys_own_dtype_states_are_read_in_either_byte_order(tmp_path, byteorder):
    labels = np.arange(N, dtype=np.dtype("i8").newbyteorder(byteorder)) % 10
    state = labels.dtype.__reduce__()[2]
    crafted = _Array(_Dtype("i8", state), (N,), labels.tobytes())
    write_test_batch(tmp_path, {b"data": np.zeros((N, 3072), np.uint8), b"labels": crafted}, protocol=2)
    ds = load_dataset("cifar10", tmp_path)
    assert ds.test.labels.tolist() == [i % 10 for i in range(N)]


@pytest.mark.parametrize("payload, refused", [
    (b"\x80\x02c_codecs\nencode\n}X\x01\x00\x00\x00aK\x01sb.", "_codecs.encode"),  # BUILD with a dict state
    (b"\x80\x02cnumpy\nndarray\nN}X\x0c\x00\x00\x00__defaults__K\x01s\x86b.", "ndarray"),  # slot state
])
def test_admitted_globals_take_no_state(tmp_path, payload, refused):
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    path.write_bytes(payload)
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", tmp_path)
    assert message(info).startswith(f"{path}: refused pickle BUILD on {refused}: ")
    path.write_bytes(pickle.dumps({b"data": np.zeros((3, 3072), np.uint8), b"labels": [1, 2, 3]}, protocol=2))
    load_dataset("cifar10", tmp_path)  # the next file reads as if the first had never been seen


def test_object_array_as_data_is_refused(tmp_path):
    data = np.empty((N, 3072), dtype=object)
    data[:] = 0
    path = write_test_batch(tmp_path, {b"data": data, b"labels": [0] * N}, protocol=5)
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", tmp_path)
    assert message(info).startswith(f"{path}: refused numpy dtype('O'): ")


@pytest.mark.parametrize("payload, shown", [
    (b"cos\nsystem\n(S'true'\ntR.", "os.system"),
    (b"\x80\x02cbuiltins\neval\nX\x01\x00\x00\x001\x85R.", "builtins.eval"),
    (b"\x80\x02cnumpy\nload\nX\x01\x00\x00\x00x\x85R.", "numpy.load"),
    (b"\x80\x02cnumpy._core.multiarray\nfrombuffer\nX\x01\x00\x00\x00x\x85R.", "numpy._core.multiarray.frombuffer"),
])
def test_refused_global_says_what_is_read(tmp_path, payload, shown):
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    path.write_bytes(payload)
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", tmp_path)
    assert message(info) == (f"{path}: refused pickle global {shown}: only dicts, lists, strings, numbers and "
                             "numeric numpy arrays are read")


def test_out_of_band_buffers_are_named(tmp_path):
    buffers: list = []
    path = write_test_batch(tmp_path, {b"data": np.zeros((N, 3072), np.uint8), b"labels": [0] * N},
                            protocol=5, buffer_callback=buffers.append)
    assert buffers
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", tmp_path)
    assert message(info) == (f"{path}: refused an out-of-band pickle buffer: the file was written with "
                             "pickle's buffer_callback and does not hold its array data")


@pytest.mark.parametrize("keys, found", [
    ({"data": 1}, "keys ['data']"), ({b"data": 1, "x": 2}, "keys ['x', b'data']"), ([1, 2], "a list")])
def test_not_a_batch_names_both_key_spellings(tmp_path, keys, found):
    path = write_test_batch(tmp_path, keys, protocol=2)
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", tmp_path)
    assert message(info) == (f"{path}: not a CIFAR batch: expected keys 'data' and 'labels' (str or bytes), "
                             f"found {found}")


def test_a_list_shared_many_times_is_read_once_not_copied_per_reference(tmp_path, monkeypatch):
    """40 lists each holding the one before twice: a 10 kB pickle whose 2**40 paths hung the reader
    (each reference converted to a copy of its own); a list holding itself is read too."""
    import signal

    shared: list = [b"a"]
    for _ in range(40):
        shared = [shared, shared]
    selfish: list = []
    selfish.append(selfish)
    batch = {b"data": np.zeros((N, 3072), np.uint8), b"labels": [1] * N, b"filenames": shared, b"x": selfish}
    write_test_batch(tmp_path, batch, protocol=2)

    def too_long(*_):
        raise TimeoutError("the reader copied every reference to the shared list")

    previous = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(30)
    try:
        ds = load_dataset("cifar10", tmp_path)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert ds.test.labels.tolist() == [1] * N


def test_a_length_beyond_the_machine_is_a_corrupt_file(tmp_path):
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(b"\x80\x04\x8d" + b"\xff" * 8)   # BINUNICODE8 of 2**64 - 1 bytes
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", tmp_path)
    assert message(info).startswith(f"{path}: truncated or corrupt pickle (OverflowError: ")
