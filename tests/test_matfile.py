"""diffnas.data.matfile: MAT v5 numeric arrays read without scipy, checked against scipy's loadmat
on the files both read, and against damage that crashed loadmat's C reader."""

from __future__ import annotations

import re
import struct
import zlib

import numpy as np
import pytest
from formats_fixtures import mat_element, mat_file, mat_variable, write_svhn

from diffnas.data import load_dataset
from diffnas.data.matfile import MatError, NotNumeric, read_mat
from diffnas.errors import DataError

loadmat = pytest.importorskip("scipy.io").loadmat
savemat = pytest.importorskip("scipy.io").savemat


def _arrays(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"X": rng.integers(0, 256, (4, 3, 2, 5), dtype=np.uint8),
            "y": rng.integers(1, 11, (5, 1)).astype(np.float64),
            "wide": rng.standard_normal((3, 7)).astype(np.float32),
            "i16": rng.integers(-300, 300, (2, 2, 2), dtype=np.int16),
            "u64": rng.integers(0, 2**63, (1, 4), dtype=np.uint64),
            "empty": np.zeros((0, 3))}


@pytest.mark.parametrize("compress", [False, True])
def test_savemat_files_read_as_loadmat_reads_them(tmp_path, compress):
    path = tmp_path / "a.mat"
    arrays = _arrays(np.random.default_rng(0))
    savemat(path, arrays, do_compression=compress)
    got, names = read_mat(path, arrays)
    theirs = loadmat(path)
    assert names == list(arrays)
    for name, array in arrays.items():
        assert got[name].dtype == theirs[name].dtype == array.dtype, name
        np.testing.assert_array_equal(got[name], theirs[name])
        np.testing.assert_array_equal(got[name], array)


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("compress", [False, True])
def test_big_endian_compact_storage_and_small_elements_as_loadmat_reads_them(tmp_path, endian, compress):
    """What MATLAB writes and savemat does not: y as doubles stored in uint8, big-endian files,
    data small enough to sit in its tag."""
    path = tmp_path / "a.mat"
    x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    y = np.array([[1.0, 10.0, 3.0]])
    tiny = np.array([[7]], dtype=np.int16)   # 2 bytes of data: a small data element
    path.write_bytes(mat_file(mat_variable("X", x, endian, compress=compress),
                              mat_variable("y", y, endian, stored="u1", compress=compress),
                              mat_variable("t", tiny, endian, compress=compress), endian=endian))
    theirs = loadmat(path, mat_dtype=True)   # mat_dtype: the class's type, as MATLAB shows it
    got, names = read_mat(path, ("X", "y", "t"))
    assert names == ["X", "y", "t"]
    for name, want in (("X", x), ("y", y), ("t", tiny)):
        assert got[name].dtype == want.dtype and got[name].dtype.isnative
        np.testing.assert_array_equal(got[name], theirs[name])
        np.testing.assert_array_equal(got[name], want)


def test_only_wanted_variables_are_read_and_every_name_is_listed(tmp_path):
    path = tmp_path / "a.mat"
    big = np.zeros((50, 50), np.float64)
    path.write_bytes(mat_file(mat_variable("big", big, compress=True), mat_variable("y", np.ones((2, 1)))))
    asked = []
    got, names = read_mat(path, ("y",), lambda name, size: asked.append((name, size)))
    assert list(got) == ["y"] and names == ["big", "y"] and asked == [("y", 16)]


def test_an_array_too_large_is_refused_before_its_data_is_read(tmp_path):
    """The size check runs on the announced dimensions, before anything is inflated."""
    path = tmp_path / "a.mat"
    body = (mat_element(6, struct.pack("<II", 9, 0)) + mat_element(5, struct.pack("<4i", 32, 32, 3, 2**28))
            + mat_element(1, b"X") + struct.pack("<II", 2, 2**32 - 8))
    packed = zlib.compress(struct.pack("<II", 14, len(body) + 2**20) + body)
    path.write_bytes(mat_file(struct.pack("<II", 15, len(packed)) + packed))

    def afford(name: str, size: int) -> None:
        raise DataError(f"{name}: {size} bytes")

    with pytest.raises(DataError, match=f"^X: {32 * 32 * 3 * 2**28} bytes$"):
        read_mat(path, ("X",), afford)


def test_data_larger_than_its_dimensions_is_refused_without_inflating_it(tmp_path):
    """A compressed variable of 8 values whose data announces 64 MB of zeros."""
    path = tmp_path / "a.mat"
    body = (mat_element(6, struct.pack("<II", 9, 0)) + mat_element(5, struct.pack("<2i", 2, 4))
            + mat_element(1, b"X") + struct.pack("<II", 2, 2**26))
    packed = zlib.compress(struct.pack("<II", 14, len(body) + 2**26) + body + bytes(2**26))
    path.write_bytes(mat_file(struct.pack("<II", 15, len(packed)) + packed))
    with pytest.raises(MatError, match=r"^X is 2x4 = 8 values, but its data holds 67108864 bytes of uint8"):
        read_mat(path, ("X",))


@pytest.mark.parametrize("flags, klass, says", [(0x08, 9, "X holds complex numbers, not real ones"),
                                                (0, 5, "X is a sparse matrix, not a numeric array"),
                                                (0, 4, "X is text (a char array), not a numeric array"),
                                                (0, 2, "X is a struct, not a numeric array"),
                                                (0, 99, "X is of MATLAB class 99, not a numeric array")])
def test_a_wanted_variable_that_is_not_real_numbers_is_named(tmp_path, flags, klass, says):
    path = tmp_path / "a.mat"
    data = bytearray(mat_file(mat_variable("X", np.zeros((2, 2), np.uint8), flags=flags)))
    data[144] = klass   # the class byte of the array flags: header 128 + miMATRIX tag 8 + flags tag 8
    path.write_bytes(bytes(data))
    with pytest.raises(NotNumeric, match=f"^{re.escape(says)}$"):
        read_mat(path, ("X",))


def test_svhn_file_with_the_complex_flag_set_on_x_is_a_message_not_a_segfault(tmp_path):
    """One flipped byte (the complex flag on X) made scipy's loadmat die with a segmentation fault."""
    write_svhn(tmp_path / "svhn")
    path = tmp_path / "svhn" / "train_32x32.mat"
    data = bytearray(path.read_bytes())
    assert data[145] == 0   # the flags byte of X's array flags, as savemat writes it
    data[145] = 0x08
    path.write_bytes(bytes(data))
    with pytest.raises(DataError) as info:
        load_dataset("svhn", tmp_path)
    assert str(info.value) == (f"{path}: X holds complex numbers, not real ones; SVHN's X holds uint8 images and "
                               f"y labels in 1..10")


@pytest.mark.parametrize("compress", [False, True])
def test_every_single_byte_damage_is_a_data_error_or_a_read(tmp_path, compress):
    """Each byte of a small file set to 0x00, 0x08, 0x7f and 0xff in turn: the reader returns arrays or
    raises DataError (MatError/NotNumeric), never another exception."""
    path = tmp_path / "a.mat"
    good = mat_file(mat_variable("X", np.arange(24, dtype=np.uint8).reshape(2, 3, 4), compress=compress),
                    mat_variable("y", np.array([[1.0, 10.0]]), stored="u1", compress=compress))
    outcomes = {"read": 0, "refused": 0}
    for at in range(len(good)):
        for value in (0x00, 0x08, 0x7F, 0xFF):
            data = bytearray(good)
            data[at] = value
            path.write_bytes(bytes(data))
            try:
                read_mat(path, ("X", "y"))
                outcomes["read"] += 1
            except NotImplementedError:   # bytes 124-125 turned into the v7.3 version
                outcomes["refused"] += 1
            except DataError:
                outcomes["refused"] += 1
    assert outcomes["read"] and outcomes["refused"]


@pytest.mark.parametrize("compress", [False, True])
def test_every_truncation_is_refused_by_name(tmp_path, compress):
    path = tmp_path / "a.mat"
    good = mat_file(mat_variable("X", np.arange(24, dtype=np.uint8).reshape(2, 3, 4), compress=compress))
    for length in (*range(128), *range(129, len(good))):
        path.write_bytes(good[:length])
        with pytest.raises(MatError):
            read_mat(path, ("X",))
    path.write_bytes(good[:128])   # a header and no variable: nothing found, the caller names what is missing
    assert read_mat(path, ("X",)) == ({}, [])
    path.write_bytes(good)
    assert read_mat(path, ("X",))[0]["X"].shape == (2, 3, 4)


def test_corrupt_zlib_data_is_named(tmp_path):
    path = tmp_path / "a.mat"
    data = bytearray(mat_file(mat_variable("X", np.arange(240, dtype=np.uint8).reshape(2, 120), compress=True)))
    data[140:150] = bytes(10)
    path.write_bytes(bytes(data))
    with pytest.raises(MatError, match=r"^the compressed variable at byte 128 is corrupt \(zlib: "):
        read_mat(path, ("X",))


def test_an_svhn_file_the_system_refuses_to_read_says_so(tmp_path, monkeypatch):
    """A .mat without read permission was "Reader needs file name or open file-like object" (scipy's)."""
    from diffnas.data import matfile

    write_svhn(tmp_path / "svhn")
    path = tmp_path / "svhn" / "train_32x32.mat"

    def refused(*args, **kwargs):   # the tests run as root, whom chmod does not stop
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(matfile, "open", refused, raising=False)
    with pytest.raises(DataError) as info:
        load_dataset("svhn", tmp_path)
    assert str(info.value) == f"{path}: cannot read (Permission denied)"


def _matrix(body: bytes, compress: bool) -> bytes:
    element = struct.pack("<II", 14, len(body)) + body
    if compress:
        packed = zlib.compress(element)
        return struct.pack("<II", 15, len(packed)) + packed
    return element


@pytest.mark.parametrize("compress", [False, True])
def test_a_matlab_string_or_table_variable_is_skipped_not_a_damaged_file(tmp_path, compress):
    """MATLAB writes a string, table or datetime as an opaque object (class 17): array flags, then its
    name, with no dimensions; the reader took the name for the dimensions and refused the whole file.
    loadmat reads the y after it, as this reader must."""
    meta = mat_variable("", np.array([[0xDD000000], [2], [1], [1], [1], [1]], np.uint32))
    opaque = (mat_element(6, struct.pack("<II", 17, 0)) + mat_element(1, b"s") + mat_element(1, b"MCOS")
              + mat_element(1, b"string") + meta)
    path = tmp_path / "a.mat"
    y = mat_variable("y", np.ones((3, 1)), stored="u1", compress=compress)
    path.write_bytes(mat_file(_matrix(opaque, compress), y))
    got, names = read_mat(path, ("y",))
    assert names == ["s", "y"]
    np.testing.assert_array_equal(got["y"], loadmat(path, variable_names=["y"], mat_dtype=True)["y"])
    with pytest.raises(NotNumeric, match="^s is an opaque object, not a numeric array$"):
        read_mat(path, ("s",))


def test_logical_arrays_are_bool_as_loadmat_and_matlab_give_them(tmp_path):
    path = tmp_path / "a.mat"
    savemat(path, {"y": np.array([[True, False, True]])})
    got = read_mat(path, ("y",))[0]["y"]
    assert got.dtype == loadmat(path, mat_dtype=True)["y"].dtype == np.bool_
    assert got.tolist() == [[True, False, True]]


def test_a_name_written_twice_is_read_as_its_last_as_matlabs_load_does(tmp_path):
    path = tmp_path / "a.mat"
    path.write_bytes(mat_file(mat_variable("y", np.ones((2, 1))), mat_variable("y", np.full((2, 1), 7.0))))
    with pytest.warns(UserWarning, match="Duplicate variable name"):   # scipy's MatReadWarning
        theirs = loadmat(path)["y"].tolist()
    assert read_mat(path, ("y",))[0]["y"].tolist() == [[7.0], [7.0]] == theirs


def test_more_dimensions_than_numpy_holds_is_a_mat_error(tmp_path):
    path = tmp_path / "a.mat"
    body = (mat_element(6, struct.pack("<II", 6, 0)) + mat_element(5, struct.pack("<65i", *[1] * 65))
            + mat_element(1, b"y") + mat_element(9, struct.pack("<d", 1.0)))
    path.write_bytes(mat_file(_matrix(body, False)))
    with pytest.raises(MatError, match="expected 2 to 64 miINT32"):
        read_mat(path, ("y",))


def test_a_tiny_compressed_element_announcing_a_gigabyte_is_refused_before_any_buffer(tmp_path, monkeypatch):
    """185 bytes announcing 1 GiB of data: the reader zero-filled a 1 GiB buffer before finding the
    stream short (1.2 GB of memory for a damaged download)."""
    from diffnas.data import matfile

    body = (mat_element(6, struct.pack("<II", 9, 0)) + mat_element(5, struct.pack("<2i", 1024, 2**20))
            + mat_element(1, b"X") + struct.pack("<II", 2, 2**30))
    packed = zlib.compress(struct.pack("<II", 14, len(body) + 2**30) + body)
    path = tmp_path / "a.mat"
    path.write_bytes(mat_file(struct.pack("<II", 15, len(packed)) + packed))
    real = matfile._exactly

    def guarded(src, n, what):
        assert n <= 2**20, f"a buffer of {n} bytes for {what}"
        return real(src, n, what)

    monkeypatch.setattr(matfile, "_exactly", guarded)
    with pytest.raises(MatError, match=f"^the data of X announces {2**30} bytes, more than its element can hold$"):
        read_mat(path, ("X",))
