"""Tiny files in the real dataset formats, for tests (any test file may import these).

Each writer puts files where the official download puts them and returns the arrays it wrote,
as {"train_images": uint8 (N, C, H, W), "train_labels": int64 (N,), "test_images", "test_labels"}.
"""

from __future__ import annotations

import gzip
import pickle
import struct
import sys
import types
from pathlib import Path

import numpy as np
from PIL import Image

Arrays = dict[str, np.ndarray]


class Py2Pickler(pickle._Pickler):  # the pure-Python pickler, whose dispatch table can be extended
    """Pickles like Python 2's cPickle did for the official CIFAR files: protocol 2, bytes and str as
    py2 `str` (BINSTRING opcodes; Python 3's protocol 2 would wrap bytes in `_codecs.encode` calls),
    and numpy arrays under the numpy 1 name numpy.core.multiarray._reconstruct."""

    def save_bytes(self, obj: bytes) -> None:
        n = len(obj)
        self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj if n < 256
                   else pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    def save_global(self, obj: object, name: str | None = None) -> None:
        if getattr(obj, "__name__", None) == "_reconstruct":
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
        else:
            super().save_global(obj, name)

    def save_str(self, obj: str) -> None:  # numpy's reduce tuples hold str ('u1', '|'); py2 had bytes
        self.save_bytes(obj.encode("ascii"))

    dispatch = pickle._Pickler.dispatch.copy()
    dispatch[bytes] = save_bytes
    dispatch[str] = save_str


class Numpy1Pickler(pickle._Pickler):
    """Pickles as Python 3 did under numpy 1, at any protocol: numpy's functions under their numpy 1
    module names (numpy.core.multiarray._reconstruct and .scalar, numpy.core.numeric._frombuffer),
    which numpy 2 moved to numpy._core. Its output for a CIFAR-like dict (uint8 array, int64 array, a list
    of int64 scalars, a float32 scalar) was byte for byte numpy 1.26.4's at protocols 0 to 5."""

    def save_global(self, obj: object, name: str | None = None) -> None:
        module = getattr(obj, "__module__", None) or ""
        if not module.startswith("numpy._core."):
            return super().save_global(obj, name)
        # interned, so that a module name written twice is memoized once, as numpy 1's pickles have it
        module, name = sys.intern("numpy.core." + module.removeprefix("numpy._core.")), obj.__name__
        if self.proto >= 4:
            self.save(module)
            self.save(name)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())
        self.memoize(obj)

    dispatch = pickle._Pickler.dispatch.copy()
    dispatch[types.FunctionType] = save_global  # _frombuffer is a Python function; the table bypasses self


def write_py2_pickle(path: Path, obj: object) -> None:
    with open(path, "wb") as f:
        Py2Pickler(f, protocol=2).dump(obj)


def _images(rng: np.random.Generator, n: int, c: int, h: int, w: int) -> np.ndarray:
    return rng.integers(0, 256, (n, c, h, w), dtype=np.uint8)


def write_cifar10(root: Path, per_batch: int = 3, test: int = 4, seed: int = 0) -> Arrays:
    """root/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("train_images", "train_labels")}
    for i, name in enumerate([f"data_batch_{b}" for b in range(1, 6)] + ["test_batch"]):
        n = test if name == "test_batch" else per_batch
        x, y = _images(rng, n, 3, 32, 32), rng.integers(0, 10, n)
        write_py2_pickle(folder / name, {
            b"batch_label": f"training batch {i + 1} of 5".encode(), b"labels": [int(v) for v in y],
            b"data": x.reshape(n, 3072), b"filenames": [f"img_{i}_{j}.png".encode() for j in range(n)]})
        if name == "test_batch":
            test_x, test_y = x, y
        else:
            out["train_images"].append(x)
            out["train_labels"].append(y)
    write_py2_pickle(folder / "batches.meta", {b"label_names": [b"airplane"] * 10, b"num_vis": 3072,
                                               b"num_cases_per_batch": per_batch})
    return {"train_images": np.concatenate(out["train_images"]), "train_labels": np.concatenate(out["train_labels"]),
            "test_images": test_x, "test_labels": test_y}


def write_cifar100(root: Path, train: int = 6, test: int = 4, seed: int = 0) -> Arrays:
    """root/cifar-100-python/{train, test, meta} with fine and coarse labels."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    arrays: Arrays = {}
    for part, n in (("train", train), ("test", test)):
        x, y = _images(rng, n, 3, 32, 32), rng.integers(0, 100, n)
        write_py2_pickle(folder / part, {b"filenames": [b"f.png"] * n, b"batch_label": part.encode(),
                                         b"fine_labels": [int(v) for v in y],
                                         b"coarse_labels": [int(v) // 5 for v in y], b"data": x.reshape(n, 3072)})
        arrays[f"{part}_images"], arrays[f"{part}_labels"] = x, y
    write_py2_pickle(folder / "meta", {b"fine_label_names": [b"apple"] * 100, b"coarse_label_names": [b"x"] * 20})
    return arrays


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: magic 0x0000 08 D, D big-endian uint32 sizes, the values."""
    return struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    data = idx_bytes(np.ascontiguousarray(array, dtype=np.uint8))
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def write_mnist(folder: Path, train: int = 5, test: int = 3, gz: bool = True, seed: int = 0) -> Arrays:
    """The four IDX files of MNIST / Fashion-MNIST, directly in `folder`."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays: Arrays = {}
    for part, prefix, n in (("train", "train", train), ("test", "t10k", test)):
        x, y = _images(rng, n, 1, 28, 28), rng.integers(0, 10, n)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", x[:, 0], gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", y.astype(np.uint8), gz)
        arrays[f"{part}_images"], arrays[f"{part}_labels"] = x, y
    return arrays


def write_mnist_npz(path: Path, train: int = 5, test: int = 3, seed: int = 0, **replace: np.ndarray) -> Arrays:
    """Keras's mnist.npz layout: x_train uint8 (N, 28, 28), y_train uint8 (N,), x_test, y_test
    (np.savez, uncompressed, as keras.datasets.mnist ships it). `replace` overrides or adds arrays."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: Arrays = {}
    npz: dict[str, np.ndarray] = {}
    for part, n in (("train", train), ("test", test)):
        x, y = _images(rng, n, 1, 28, 28), rng.integers(0, 10, n)
        npz[f"x_{part}"], npz[f"y_{part}"] = x[:, 0], y.astype(np.uint8)
        arrays[f"{part}_images"], arrays[f"{part}_labels"] = x, y
    npz.update(replace)
    np.savez(path, **{k: v for k, v in npz.items() if v is not None})
    return arrays


def write_svhn(folder: Path, train: int = 5, test: int = 3, seed: int = 0) -> Arrays:
    """train_32x32.mat and test_32x32.mat: X uint8 (32, 32, 3, N), y (N, 1) in 1..10, 10 = digit 0."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays: Arrays = {}
    for part, n in (("train", train), ("test", test)):
        x, digits = _images(rng, n, 3, 32, 32), rng.integers(0, 10, n)
        digits[:1] = 0  # make sure the 10 -> 0 case is present
        savemat(folder / f"{part}_32x32.mat", {"X": x.transpose(2, 3, 1, 0),
                                               "y": np.where(digits == 0, 10, digits).astype(np.uint8)[:, None]})
        arrays[f"{part}_images"], arrays[f"{part}_labels"] = x, digits
    return arrays


# MAT-file level 5 by hand (MathWorks "MAT-File Format"), for what scipy's savemat never writes: big-endian
# files, data stored narrower than its class (MATLAB's habit: doubles 1..10 as uint8), small data elements
# for data, a damaged flag. scipy's loadmat reads all of these, so tests can check this writer against it.
MAT_CLASS = {"f8": 6, "f4": 7, "i1": 8, "u1": 9, "i2": 10, "u2": 11, "i4": 12, "u4": 13, "i8": 14, "u8": 15}
MAT_TYPE = {"i1": 1, "u1": 2, "i2": 3, "u2": 4, "i4": 5, "u4": 6, "f4": 7, "f8": 9, "i8": 12, "u8": 13}


def mat_element(kind: int, data: bytes, endian: str = "<", small: bool = True) -> bytes:
    """One data element: an 8-byte tag and its data padded to 8 bytes, or a small data element."""
    if small and len(data) <= 4:
        return struct.pack(endian + "I", len(data) << 16 | kind) + data.ljust(4, b"\0")
    return struct.pack(endian + "II", kind, len(data)) + data + bytes(-len(data) % 8)


def mat_variable(name: str, array: np.ndarray, endian: str = "<", stored: str | None = None, flags: int = 0,
                 compress: bool = False) -> bytes:
    """A numeric miMATRIX (or a miCOMPRESSED one) of `array`, its data written as `stored` (default its own
    type), in column-major order; `flags` goes into the flags byte (0x08 complex, 0x02 logical)."""
    code = array.dtype.str[1:]
    data = np.asfortranarray(array).astype(np.dtype(endian + (stored or code))).tobytes(order="F")
    body = (mat_element(6, struct.pack(endian + "II", flags << 8 | MAT_CLASS[code], 0), endian)
            + mat_element(5, struct.pack(f"{endian}{array.ndim}i", *array.shape), endian)
            + mat_element(1, name.encode(), endian) + mat_element(MAT_TYPE[stored or code], data, endian))
    matrix = struct.pack(endian + "II", 14, len(body)) + body
    if compress:
        import zlib
        packed = zlib.compress(matrix)
        return struct.pack(endian + "II", 15, len(packed)) + packed
    return matrix


def mat_file(*variables: bytes, endian: str = "<") -> bytes:
    """A level-5 header (text, subsystem offset, version 0x0100, endian mark) and the variables."""
    text = b"MATLAB 5.0 MAT-file, written by diffnas's tests".ljust(116, b" ")
    mark = b"IM" if endian == "<" else b"MI"
    return text + bytes(8) + struct.pack(endian + "H", 0x0100) + mark + b"".join(variables)


def write_image(path: Path, array: np.ndarray) -> None:
    """Save a uint8 (C, H, W) array, C = 1 or 3, with the format from the suffix."""
    image = Image.fromarray(array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0))
    suffix = path.suffix.lower()
    kwargs = ({"quality": 100, "subsampling": 0} if suffix in (".jpg", ".jpeg")
              else {"lossless": True} if suffix == ".webp" else {})
    image.save(path, **kwargs)


def flat_images(rng: np.random.Generator, n: int, c: int, h: int, w: int) -> np.ndarray:
    """Images of one colour each (JPEG keeps flat colours within a unit or two)."""
    return np.broadcast_to(rng.integers(0, 256, (n, c, 1, 1), dtype=np.uint8), (n, c, h, w)).copy()


def write_tiny_imagenet(root: Path, wnids: tuple[str, ...] = ("n02", "n01", "n03"), per_class: int = 2,
                        val: int = 4, seed: int = 0) -> Arrays:
    """root/tiny-imagenet-200/ with wnids.txt, train/<wnid>/images/*.JPEG, val/images + annotations.

    Labels are indices into sorted(wnids). The first train image is grayscale, as some real ones are.
    """
    rng = np.random.default_rng(seed)
    base = root / "tiny-imagenet-200"
    (base / "val" / "images").mkdir(parents=True)
    (base / "wnids.txt").write_text("".join(f"{w}\n" for w in wnids))
    order = sorted(wnids)
    train_x, train_y = [], []
    for wnid in order:
        folder = base / "train" / wnid / "images"
        folder.mkdir(parents=True)
        (base / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
        for j, image in enumerate(flat_images(rng, per_class, 3, 64, 64)):
            if not train_x:
                image = np.repeat(image[:1], 3, axis=0)
                Image.fromarray(image[0]).save(folder / f"{wnid}_{j}.JPEG", quality=100)
            else:
                write_image(folder / f"{wnid}_{j}.JPEG", image)
            train_x.append(image)
            train_y.append(order.index(wnid))
    val_x = flat_images(rng, val, 3, 64, 64)
    val_y = rng.integers(0, len(wnids), val)
    lines = []
    for j, (image, label) in enumerate(zip(val_x, val_y)):
        write_image(base / "val" / "images" / f"val_{j}.JPEG", image)
        lines.append(f"val_{j}.JPEG\t{order[label]}\t0\t0\t63\t63\n")
    (base / "val" / "val_annotations.txt").write_text("".join(lines))
    return {"train_images": np.stack(train_x), "train_labels": np.asarray(train_y),
            "test_images": val_x, "test_labels": val_y}


def write_image_folder(root: Path, classes: tuple[str, ...] = ("dog", "cat"), per_class: int = 2,
                       size: tuple[int, int] = (6, 5), channels: int = 3, seed: int = 0) -> Arrays:
    """root/{train,test}/<class>/<i>.png (lossless), size = (H, W); labels index sorted(classes)."""
    rng = np.random.default_rng(seed)
    arrays: Arrays = {}
    for part in ("train", "test"):
        xs, ys = [], []
        for label, name in enumerate(sorted(classes)):
            (root / part / name).mkdir(parents=True)
            for j in range(per_class):
                image = _images(rng, 1, channels, *size)[0]
                write_image(root / part / name / f"{j}.png", image)
                xs.append(image)
                ys.append(label)
        arrays[f"{part}_images"], arrays[f"{part}_labels"] = np.stack(xs), np.asarray(ys)
    return arrays
