"""Readers of the official dataset file formats, each returning plain numpy arrays.

Images come back as uint8 (N, C, H, W), labels as int64 (N,). Every failure is a `DataError` that
names the file. Nothing here knows registry names or default folders: `loaders.py` finds the files.
Formats: CIFAR python pickles (https://www.cs.toronto.edu/~kriz/cifar.html), IDX
(http://yann.lecun.com/exdb/mnist/), Keras's mnist.npz (read with allow_pickle=False), SVHN format 1 .mat
(http://ufldl.stanford.edu/housenumbers/),
and image files decoded with Pillow (Tiny-ImageNet, image folders), optionally resized to one square size.
"""

from __future__ import annotations

import codecs
import gzip
import math
import os
import re
import struct
import unicodedata
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..distributed import is_main
from ..errors import DataError, reading
from ..notices import bar_settings, option, progress_shown, say
from .augment import resized_shape
from .matfile import MatError, NotNumeric, read_mat
from .unpickle import load_pickle

Arrays = tuple[np.ndarray, np.ndarray]  # images uint8 (N, C, H, W), labels int64 (N,)

# ---------------------------------------------------------------------------------------------
# CIFAR-10 / CIFAR-100: pickled dicts {b"data": uint8 (N, 3072), b"labels" | b"fine_labels": [int]}, read by
# unpickle.load_pickle.

def _entry(batch: dict, key: str) -> Any:
    """batch[b"key"] (the official files), else batch["key"] (re-pickled with str keys)."""
    return batch[key.encode()] if key.encode() in batch else batch[key]


def _shown(value: Any) -> str:
    """A label as a message shows it: numbers plainly (1.5, not np.float64(1.5)), anything else by repr."""
    return str(value) if isinstance(value, (int, float, np.number, np.bool_)) else repr(value)


def _first_fraction(values: np.ndarray) -> int | None:
    """The index of the first value of a float array that is not a finite whole number, or None."""
    fractional = np.flatnonzero(~np.isfinite(values) | (values != np.floor(values)))
    return int(fractional[0]) if fractional.size else None


def _some(where: str, n: int) -> None:
    """DataError when a file (or a part of one) holds no images: a split of 0 images was taken and
    failed later on a batch size, naming no file."""
    if n == 0:
        raise DataError(f"{where} holds no images")


def _labels(path: Path, key: str, raw: Any, n: int, classes: int) -> np.ndarray:
    """int64 (n,) class indices from a list or tuple of integers, or a 1-D array. numpy integers
    count as integers, and so do floats that are whole numbers (3.0); bools, fractions and labels
    outside 0..classes-1 are refused."""
    where, expected = f"{path}: {key!r}", f"expected integer class indices 0..{classes - 1}"
    wanted = f"expected {n} integer class indices (a list or a 1-D array)"
    if isinstance(raw, np.ndarray):
        if raw.shape != (n,):
            article = "an" if raw.dtype.name[0] in "aeio" else "a"
            raise DataError(f"{where} is {article} {raw.dtype.name} array of shape {raw.shape}, {wanted}")
    elif isinstance(raw, (list, tuple)):
        if len(raw) != n:
            raise DataError(f"{where} has {len(raw)} entries for {n} images, {wanted}")
    else:
        raise DataError(f"{where} is a {type(raw).__name__}, {wanted}")
    if isinstance(raw, (list, tuple)) and all(type(value) is int for value in raw):
        try:  # the official files' plain ints: checked at numpy speed below
            raw = np.asarray(raw, np.int64)
        except OverflowError:  # beyond int64: the loop names it
            pass
    if isinstance(raw, np.ndarray) and raw.dtype.kind in "iuf":
        i = _first_fraction(raw) if raw.dtype.kind == "f" else None
        if i is not None:
            raise DataError(f"{where} holds {_shown(raw[i])} ({type(raw[i]).__name__}) at index {i}, {expected}")
        outside = np.flatnonzero((raw < 0) | (raw >= classes))
        if outside.size:
            i = int(outside[0])
            raise DataError(f"{where} holds {int(raw[i])} at index {i}, {expected}")
        return raw.astype(np.int64)
    out = np.empty(n, np.int64)
    for i, value in enumerate(raw):
        # bool is an int subclass, np.bool_ is not an np.integer
        whole = ((isinstance(value, (int, np.integer)) and not isinstance(value, bool))
                 or (isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer()))
        if not whole:
            raise DataError(f"{where} holds {_shown(value)} ({type(value).__name__}) at index {i}, {expected}")
        label = int(value)
        if not 0 <= label < classes:
            raise DataError(f"{where} holds {label} at index {i}, {expected}")
        out[i] = label
    return out


def read_cifar_batch(path: Path, label_key: str, classes: int) -> Arrays:
    """One CIFAR batch file; rows are 1024 red, 1024 green, 1024 blue values of a 32x32 image.
    Keys may be bytes (the official files) or str; labels are checked to lie in 0..classes-1."""
    batch = load_pickle(path)
    if not (isinstance(batch, dict) and all(k in batch or k.encode() in batch for k in ("data", label_key))):
        found = f"keys {sorted(batch, key=repr)}" if isinstance(batch, dict) else f"a {type(batch).__name__}"
        raise DataError(f"{path}: not a CIFAR batch: expected keys 'data' and {label_key!r} (str or bytes), "
                        f"found {found}")
    data, raw_labels = _entry(batch, "data"), _entry(batch, label_key)
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == 3 * 32 * 32):
        desc = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path}: 'data' is {desc}, expected uint8 (N, 3072)")
    _some(f"{path}: 'data'", len(data))
    return data.reshape(-1, 3, 32, 32), _labels(path, label_key, raw_labels, len(data), classes)


# ---------------------------------------------------------------------------------------------
# IDX (MNIST, Fashion-MNIST): big-endian header, magic 0x0000 08 D (unsigned bytes, D dims),
# then D uint32 sizes, then the values (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT")


def idx_names(stem: str) -> tuple[str, ...]:
    """The names an IDX file `stem` is found under: `stem`, then `stem.gz`, then both as a widely
    shared Kaggle upload renames them (`train-images.idx3-ubyte` for `train-images-idx3-ubyte`)."""
    dotted = re.sub(r"-(idx\d-ubyte)$", r".\1", stem)
    return tuple(dict.fromkeys((stem, f"{stem}.gz", dotted, f"{dotted}.gz")))


def find_idx(folder: Path, stem: str) -> Path | None:
    """The IDX file `stem` in folder under one of its `idx_names` (in that order), or None."""
    return next((folder / name for name in idx_names(stem) if (folder / name).is_file()), None)


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes with `ndim` dimensions, gzipped (.gz) or not. The header is read
    first and then only the values it announces (and one byte more, to find a longer file): a small
    .gz that inflates to gigabytes behind a 5-image header is refused after 5 images."""
    gz = path.suffix == ".gz"
    where = f"{path}{' (decompressed)' if gz else ''}"
    header = 4 + 4 * ndim
    try:
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
            head = f.read(header)
            if len(head) >= 4:   # the kind of file first: a short labels file read for images is a swap
                _check_idx_magic(where, head, ndim)
            if len(head) < header:
                raise DataError(f"{where}: {len(head)} bytes, shorter than the {header}-byte IDX header")
            shape = struct.unpack(f">{ndim}I", head[4:])   # the sizes after the magic number
            values = math.prod(shape)   # Python ints: 2**22 * 2**21 * 2**21 wraps to 0 in int64
            on_disk = None if gz else os.fstat(f.fileno()).st_size - header
            raw = _read_at_most(f, values + 1) if on_disk is None or on_disk == values else b""
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: a folder, not an IDX file") from None
    except OSError as e:   # a refusal in the words of errors.reading ("Permission denied"); a bad .gz: its own
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    except (EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    if on_disk is not None and on_disk != values or len(raw) != values:
        holds = (f"{on_disk}" if on_disk is not None else f"more than {values}" if len(raw) > values
                 else f"{len(raw)}")
        raise DataError(f"{where}: the IDX header says {'x'.join(map(str, shape))} = {values} values after its "
                        f"{header}-byte header, but the file holds {holds} bytes after it")
    return np.frombuffer(raw, np.uint8).reshape(shape)


def _read_at_most(f: Any, size: int, chunk: int = 1 << 24) -> bytes:
    """Up to `size` bytes of `f`, read in chunks: a header announcing 2**64 values behind a small .gz
    meets the end of the data, not a MemoryError (or OverflowError) for a buffer of that size."""
    parts, got = [], 0
    while got < size:
        part = f.read(min(chunk, size - got))
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _check_idx_magic(where: str, head: bytes, ndim: int) -> None:
    """A DataError unless `head` starts an IDX file of unsigned bytes with `ndim` dimensions."""
    expected = 0x0800 + ndim
    magic = int.from_bytes(head[:4], "big")
    if magic != expected:
        gzipped = " (the file is gzipped: name it .gz)" if head[:2] == b"\x1f\x8b" else ""
        if not gzipped and magic in (0x0801, 0x0803):   # the other file of the pair: images and labels swapped?
            kind = {0x0801: "a labels file", 0x0803: "an images file"}[magic]
            gzipped = f" (it is {kind}: are the images and labels files swapped?)"
        raise DataError(f"{where}: IDX magic number {magic:#010x}, expected {expected:#010x} "
                        f"(unsigned bytes, {ndim} dimensions){gzipped}")


def read_idx_pair(images: Path, labels: Path) -> Arrays:
    """An images file (N, H, W) and its labels file (N,)."""
    x, y = read_idx(images, 3), read_idx(labels, 1)
    _some(str(images), len(x))
    if len(x) != len(y):
        raise DataError(f"{images} holds {len(x)} images but {labels} holds {len(y)} labels")
    return x[:, None], y.astype(np.int64)


# Keras's mnist.npz / fashion-mnist.npz (keras.datasets.mnist, fashion_mnist): an uncompressed npz of
# x_train uint8 (60000, 28, 28), y_train uint8 (60000,), x_test (10000, 28, 28), y_test (10000,)
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def read_mnist_npz(path: Path, classes: int = 10) -> tuple[Arrays, Arrays]:
    """(train, test) of a Keras-layout MNIST npz, read without unpickling (allow_pickle=False)."""
    if not path.is_file():
        raise DataError(f"{path}: {'is a folder, not a file' if path.is_dir() else 'no such file'}")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise DataError(f"{path}: one .npy array, not an npz archive of {', '.join(NPZ_KEYS)}")
        with loaded as npz:
            missing = [k for k in NPZ_KEYS if k not in npz.files]
            if missing:
                raise DataError(f"{path}: no {', '.join(missing)} (expected the Keras layout {', '.join(NPZ_KEYS)}; "
                                f"found {', '.join(npz.files) or 'nothing'})")
            arrays = {k: npz[k] for k in NPZ_KEYS}
    except DataError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
        if isinstance(e, OSError) and e.strerror:   # the system refused (errors.reading's words), not the content
            raise DataError(f"{path}: cannot read ({e.strerror})") from None
        raise DataError(f"{path}: not a readable npz file ({type(e).__name__}: {e})") from None
    out = []
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.dtype != np.uint8 or x.ndim != 3:
            raise DataError(f"{path}: x_{part} is {x.dtype} {x.shape}, expected uint8 (N, H, W)")
        _some(f"{path}: x_{part}", len(x))
        if not np.issubdtype(y.dtype, np.integer) or y.shape != (len(x),):
            raise DataError(f"{path}: y_{part} is {y.dtype} {y.shape}, expected {len(x)} integer labels (N,)")
        if y.size and (y.min() < 0 or y.max() >= classes):
            raise DataError(f"{path}: y_{part} spans {y.min()}..{y.max()}, expected labels in 0..{classes - 1}")
        out.append((x[:, None], y.astype(np.int64)))
    return out[0], out[1]


# ---------------------------------------------------------------------------------------------
# SVHN format 1: MATLAB files with X uint8 (32, 32, 3, N) and y (N, 1) in 1..10, where 10 is the
# digit 0 (http://ufldl.stanford.edu/housenumbers/, "Format 2: Cropped Digits" section)


def read_svhn_mat(path: Path) -> Arrays:
    """X and y of an SVHN .mat file, read by our own MAT v5 reader (matfile.py), not scipy's."""
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a file")

    def afford(name: str, size: int) -> None:
        total = physical_memory()
        if total is not None and size > MEMORY_SHARE * total:
            raise DataError(f"{path}: {name} announces {_bytes(size)}, more than {MEMORY_SHARE:.0%} of this "
                            f"machine's {_bytes(total)} (a damaged file?)")

    try:
        with reading(path):
            mat, held = read_mat(path, ("X", "y"), afford)
    except NotImplementedError:
        raise DataError(f"{path}: a MATLAB v7.3 (HDF5) file, which diffnas does not read; the official SVHN "
                        f"files are MATLAB v5: put the file from http://ufldl.stanford.edu/housenumbers/ in its "
                        f"place, or save X and y with scipy.io.savemat") from None
    except MatError as e:
        raise DataError(f"{path}: not a readable MATLAB v5 file ({e})") from None
    except NotNumeric as e:
        raise DataError(f"{path}: {e}; SVHN's X holds uint8 images and y labels in 1..10") from None
    if "X" not in mat or "y" not in mat:
        raise DataError(f"{path}: expected variables X and y (the official SVHN layout), found {sorted(held)}")
    x, y = mat["X"], mat["y"]
    if x.ndim != 4 or x.shape[2] != 3 or x.dtype != np.uint8:
        raise DataError(f"{path}: X is {x.dtype} {x.shape}, expected uint8 (H, W, 3, N)")
    _some(f"{path}: X", x.shape[3])
    y = y.reshape(-1)
    fraction = _first_fraction(y) if y.dtype.kind == "f" else None   # MATLAB's doubles: astype would cut 9.5 to 9
    if fraction is not None:
        raise DataError(f"{path}: y must hold whole-number labels in 1..10, got {y[fraction]}")
    y = y.astype(np.int64)
    if len(y) != x.shape[3] or y.size and (y.min() < 1 or y.max() > 10):
        zero = (" (SVHN writes digit 0 as label 10: a file with 0 for it is not the official one)"
                if y.size and y.min() == 0 else "")
        raise DataError(f"{path}: y must hold {x.shape[3]} labels in 1..10, got {len(y)} in "
                        f"{y.min() if y.size else '-'}..{y.max() if y.size else '-'}{zero}")
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1)), y % 10  # (H, W, C, N) -> (N, C, H, W); 10 -> 0


# ---------------------------------------------------------------------------------------------
# Image files (Tiny-ImageNet JPEGs, image folders), decoded with Pillow

# what Pillow reads out of the box (torchvision's IMG_EXTENSIONS plus .gif, .jpe, .jfif, .pbm, .pnm),
# case-insensitive
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                  ".pgm", ".pbm", ".pnm")   # .jfif: JPEGs as browsers save them
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
PROGRESS_MIN = 5000  # more files than this: show a progress bar on stderr
MEMORY_SHARE = 0.75  # refuse to decode into an array larger than this share of the machine's memory


def physical_memory() -> int | None:
    """Bytes of physical memory (POSIX sysconf), or None where the platform does not say (Windows)."""
    try:
        pages, page = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * page if pages > 0 and page > 0 else None


def _bytes(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def check_memory(n: int, h: int, w: int, image_size: int) -> None:
    """DataError, before anything is decoded, when n RGB images of h x w (n * 3 * h * w bytes, the
    decode buffer) would take more than MEMORY_SHARE of physical memory. Skipped where that is unknown."""
    total = physical_memory()
    if total is None:
        return
    need, limit = 3 * n * h * w, MEMORY_SHARE * total
    if need <= limit:
        return
    side = math.isqrt(int(limit // (3 * n)))  # the largest square side that fits
    hint = (f"pass a smaller {option('image_size')} (at most {side}: {_bytes(3 * n * side * side)})" if side >= 1
            else "use fewer images")
    now = option("image_size", image_size) if image_size else "their own size"
    raise DataError(f"{n:,} images of 3x{h}x{w} ({now}) need {_bytes(need)} of memory as one uint8 array, more "
                    f"than {MEMORY_SHARE:.0%} of this machine's {_bytes(total)}; {hint}")


def resize_centre_crop(im: Image.Image, size: int) -> Image.Image:
    """torchvision Resize(size) + CenterCrop(size) of a PIL image: the shorter side becomes `size`
    (bilinear; Pillow's BILINEAR filter widens with the downscaling factor, so it is antialiased, and
    no `reducing_gap`, which would trade exactness for speed), then the centred size x size square,
    whose corner is at round((side - size) / 2) as torchvision's center_crop rounds it."""
    w, h = im.size
    new_h, new_w = resized_shape(h, w, size)
    if (new_w, new_h) != (w, h):
        im = im.resize((new_w, new_h), Image.Resampling.BILINEAR)
    top, left = int(round((new_h - size) / 2)), int(round((new_w - size) / 2))
    return im.crop((left, top, left + size, top + size))


def to_rgb(im: Image.Image, path: Path, narrow: list[tuple[Path, bool]] | None = None) -> Image.Image:
    """The image as 8-bit RGB, its pixels as stored (an EXIF orientation tag is not applied, as
    torchvision's loaders do not: a phone photo tagged "rotate 90" is read sideways). 16-bit
    grayscale (PNG's "I;16", or "I" as older Pillow opens it; a
    PGM with maxval above 255, which Pillow opens as "I" scaled to 0..65535) is rescaled, v * 255 /
    65535 rounded, where Pillow's own convert would clip it to 0..255 (a white image); 32-bit integer
    and floating-point images (TIFF), whose value range the file does not say, are refused rather
    than guessed. A 16-bit image whose values stay within 12 bits (0..4095: a microscope's or
    scanner's data) keeps 17 grey levels so: each 16-bit file goes into `narrow` with whether it does,
    for a notice."""
    if im.mode.startswith("I;16") or (im.mode == "I" and im.format in ("PNG", "PPM")):
        values = np.asarray(im).astype(np.int64)
        if values.min() < 0 or values.max() > 65535:
            raise DataError(f"{path}: a {im.mode} image with values outside 0..65535")
        if narrow is not None:
            narrow.append((path, bool(values.max() < 4096)))
        return Image.fromarray(((values * 255 + 32767) // 65535).astype(np.uint8), "L").convert("RGB")
    if im.mode in ("I", "F"):
        kind = "floating-point" if im.mode == "F" else "32-bit integer"
        raise DataError(f"{path}: a {kind} image (mode {im.mode}), whose value range the file does not give; "
                        f"save it as an 8- or 16-bit image")
    if im.mode == "P" and isinstance(im.info.get("transparency"), bytes):
        # by way of RGBA: the same colours, without Pillow's raw "should be converted to RGBA" warning
        return im.convert("RGBA").convert("RGB")
    return im.convert("RGB")


def read_images(paths: Sequence[Path], rgb: bool = False, desc: str = "decoding", image_size: int = 0,
                gray: bool = False) -> np.ndarray:
    """Decode `paths` into uint8 (N, C, H, W).

    image_size 0: every file must have the first file's size, kept as it is. image_size N > 0: each
    image (as RGB) is resized so its shorter side is N and centre-cropped to N x N (`resize_centre_crop`,
    torchvision's Resize(N) + CenterCrop(N), the standard ImageNet test transform), the usual way to
    hold images of mixed sizes as one fixed-size array in memory.
    C is 1 when every file is grayscale and `rgb` is False, else 3 (grayscale files are replicated).
    gray=True: C is 1 whatever the files, colour ones converted to their luma as Pillow's convert("L")
    does (ITU-R 601-2), with a notice (a network trained on grayscale images scoring a folder that
    holds one RGB file: the whole split was read as RGB and refused). Memory is checked before
    decoding (`check_memory`).
    """
    if not paths:
        raise DataError("no image files to decode")
    out: np.ndarray | None = None
    size: tuple[int, int] = (0, 0)
    first = paths[0]   # the first readable file, whose size the others must have
    colour: list[Path] = []   # files that are not grayscale (none: C is 1 unless `rgb`)
    narrow: list[tuple[Path, bool]] = []   # 16-bit files, and whether their values fit in 12 bits (to_rgb)
    unreadable: list[tuple[Path, str]] = []   # every bad file is named at the end: one decode finds them all
    bar = tqdm(paths, desc=desc, unit="img", **bar_settings(),
               disable=len(paths) <= PROGRESS_MIN or not progress_shown())
    huge: list[tuple[Path, tuple[int, int]]] = []   # above Pillow's decompression-bomb warning size
    for i, path in enumerate(bar):
        try:
            with warnings.catch_warnings():   # Pillow's raw warning, once per size, becomes one line below
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                try:
                    im = Image.open(path)
                except Image.DecompressionBombWarning:
                    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                    im = Image.open(path)
                    huge.append((path, im.size))
            with im:  # reads the header only; pixels are decoded by convert
                if out is None:
                    size, first = im.size, path
                    w, h = (image_size, image_size) if image_size else size
                    check_memory(len(paths), h, w, image_size)
                    out = np.empty((len(paths), 1 if gray else 3, h, w), np.uint8)
                elif im.size != size and not image_size:
                    # a photo a viewer shows upright by its EXIF tag is stored on its side: said, as it is read so
                    turned = (" (stored on its side: its EXIF orientation tag turns it for viewers, but pixels are "
                              "read as stored)" if im.getexif().get(0x0112) in (5, 6, 7, 8) and im.size[::-1] == size
                              else "")
                    raise DataError(f"{path}: image is {im.size[0]}x{im.size[1]}{turned}, but {first} is "
                                    f"{size[0]}x{size[1]} (width x height); all images must share one size, or pass "
                                    f"{option('image_size', 'N')} to resize each to N x N (shorter side to N, "
                                    f"centre crop)")
                if im.mode not in GRAY_MODES:
                    colour.append(path)
                image = to_rgb(im, path, narrow)
                if image_size:
                    image = resize_centre_crop(image, image_size)
                if gray:   # luma as Pillow's convert("L") gives it: a grayscale file's (replicated) value itself
                    out[i, 0] = np.asarray(image.convert("L"))
                else:
                    out[i] = np.asarray(image).transpose(2, 0, 1)  # (H, W, 3) -> (3, H, W)
        except FileNotFoundError:
            raise DataError(f"{path}: no such file") from None
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            empty = path.is_file() and path.stat().st_size == 0   # "cannot identify image file" hid that
            unreadable.append((path, "an empty file, 0 bytes" if empty else f"{type(e).__name__}: {e}"))
    if huge and is_main():
        (path, (w, h)), n_more = huge[0], len(huge) - 1
        say(f"diffnas: note: {path} is {w}x{h} = {w * h:,} pixels, above the {Image.MAX_IMAGE_PIXELS:,} at which "
            f"Pillow warns of a possible decompression bomb; decoded{f' (and {n_more} more such)' if n_more else ''}")
    if narrow and all(fits for _, fits in narrow) and is_main():   # one dark file among full-range ones: no
        more = f" and {len(narrow) - 1} more" if len(narrow) > 1 else ""
        say(f"diffnas: note: {narrow[0][0]}{more}: 16-bit, but its values stay below 4096 (12-bit data?); read as "
            f"v * 255 / 65535 they keep at most 17 grey levels: stretch them to the 16-bit range, or save them as "
            f"8-bit images, first")
    if unreadable:
        (path, why), others = unreadable[0], [str(p) for p, _ in unreadable[1:]]
        more = (f"; {len(unreadable)} unreadable images in all, also: {', '.join(others[:3])}"
                + (", ..." if len(others) > 3 else "")) if others else ""
        raise DataError(f"{path}: unreadable image ({why}){more}")
    assert out is not None
    if gray:
        if colour and is_main():
            more = f" and {len(colour) - 1} more" if len(colour) > 1 else ""
            say(f"diffnas: {desc}: {colour[0]}{more} in colour, converted to grayscale (luma) as the network "
                f"takes one channel")
        return out
    return np.ascontiguousarray(out[:, :1]) if not colour and not rgb else out


def is_hidden(name: str) -> bool:
    """An entry no class is made of: hidden ('.name': macOS's ._name.png, .ipynb_checkpoints) or the
    __MACOSX folder of resource forks that macOS's zip adds (it was refused as a class without images)."""
    return name.startswith(".") or name == "__MACOSX"


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def files_under(folder: Path, reals: set[str] | None = None) -> tuple[list[Path], list[Path]]:
    """Every file in `folder` and its subfolders, as torchvision's ImageFolder reads a class folder
    (links followed, each folder once), sorted; and, apart, the hidden entries (names starting with
    '.': macOS's ._name.png resource forks, .ipynb_checkpoints), left out with what they hold. A link
    to a folder that holds this one (other classes' images under this class) and a subfolder that
    cannot be read are DataErrors. `reals`, when given, gets the real path of every folder read."""
    files: list[Path] = []
    hidden: list[Path] = []
    top = os.path.realpath(folder)
    seen: set[str] = set()

    def unreadable(e: OSError) -> None:
        raise DataError(f"{e.filename}: cannot read ({e.strerror or e}): its images would be left out") from None

    for root, dirs, names in os.walk(folder, followlinks=True, onerror=unreadable):
        real = os.path.realpath(root)
        if real != top and top.startswith(real.rstrip(os.sep) + os.sep):
            raise DataError(f"{root}: a link to {real}, a folder that holds {folder}: the images of every class "
                            f"there would be read as {folder.name}'s; remove the link")
        if real in seen:   # a link back to a folder read already: its images once
            dirs[:] = []
            continue
        seen.add(real)
        if reals is not None:
            reals.add(real)
        hidden += [Path(root) / d for d in dirs if is_hidden(d)]
        # in name order: which of two links to one folder is read does not depend on the file system's order
        dirs[:] = sorted(d for d in dirs if not is_hidden(d))
        for name in names:
            (hidden if is_hidden(name) else files).append(Path(root) / name)
    return sorted(files), sorted(hidden)


def list_class_folder(folder: Path, classes: Sequence[str],
                      read: dict[str, Path] | None = None) -> tuple[list[Path], np.ndarray]:
    """Image files of `folder/<class>/` and its subfolders (sorted; `IMAGE_SUFFIXES`, any case; nested
    folders are read as torchvision's ImageFolder reads them) and their class indices.

    A subfolder that is not in `classes` is an error (its images would silently be dropped), and so is
    a class folder without images, and images beside the class folders but no class folder. Anything
    else found (other files, hidden files and folders such as ._0.png or .ipynb_checkpoints, files
    beside the class folders) is left out with one notice on stderr giving the count and an example.

    One folder reached under two classes (a class folder holding a link to another's) is an error:
    its images had both labels. `read` (real folder -> the class folder that read it), shared by the
    calls for a dataset's splits, also finds a folder read in two splits (test/ a link to train/:
    test metrics of training images), said in a warning.
    """
    read = {} if read is None else read
    twins: list[tuple[Path, Path]] = []   # (class folder, another split's that reaches a folder it reaches)
    index = {c: i for i, c in enumerate(classes)}
    paths: list[Path] = []
    labels: list[int] = []
    others: list[Path] = [p for p in folder.iterdir() if not p.is_dir() or is_hidden(p.name)]
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not is_hidden(p.name))
    loose = sorted(p for p in others if is_image(p) and p.is_file())
    if loose and not subfolders:
        raise DataError(f"{folder}: {len(loose)} image{'s' if len(loose) > 1 else ''} (e.g. {loose[0].name}) but no "
                        f"class folders: put each class's images in a folder of its own, "
                        f"{folder}/<class>/<images>")
    for sub in subfolders:
        if sub.name not in index:
            same = unicodedata.normalize("NFC", sub.name)
            alike = next((c for c in classes if unicodedata.normalize("NFC", c) == same), None)
            if alike is not None:   # 'café' as e + combining accent (macOS) and as one character: alike on screen
                raise DataError(f"{sub}: class {ascii(sub.name)} is the training class {ascii(alike)} written in "
                                f"another Unicode form (they look alike but are different names, as folders copied "
                                f"between macOS and other systems can become); rename one folder to match the other")
            raise DataError(f"{sub}: class {sub.name!r} is not among the training classes {list(classes)}")
        # hidden files (macOS's ._name.png resource forks, thumbnails) are no images of the class
        reals: set[str] = set()
        entries, hidden = files_under(sub, reals)
        twin = _check_read_once(sub, reals, read)
        if twin is not None:
            twins.append((sub, twin))
        others += hidden
        broken = [p for p in entries if is_image(p) and p.is_symlink() and not p.exists()]
        if broken:   # left out, they were "not an image", and a folder of them "with no image files"
            more = f"; {len(broken)} such links in {sub}" if len(broken) > 1 else ""
            raise DataError(f"{broken[0]}: a link to {os.readlink(broken[0])}, which is not there (moved, or on a "
                            f"drive not mounted?){more}")
        files = [p for p in entries if is_image(p) and p.is_file()]
        others += [p for p in entries if not (is_image(p) and p.is_file())]
        if not files:
            raise DataError(f"{sub}: class folder with no image files ({'/'.join(IMAGE_SUFFIXES)}); "
                            "remove it or add images")
        paths += files
        labels += [index[sub.name]] * len(files)
    if twins and is_main():
        (sub, twin), more = twins[0], f" (and {len(twins) - 1} more class folders)" if len(twins) > 1 else ""
        say(f"diffnas: warning: {sub} and {twin} reach the same images by a link{more}: the same images are in "
            f"both splits, so the held-out metrics are of images trained on")
    if others and is_main():   # every torchrun rank lists the folder; one says so
        hidden = sorted(p for p in others if is_hidden(p.name))
        beside = sorted(set(loose) - set(hidden))   # images, but of no class
        rest = sorted(set(others) - set(hidden) - set(beside))
        kinds = [f"{len(found)} {one if len(found) == 1 else many}, e.g. {found[0]}" for found, one, many in (
            (rest, "entry that is not an image", "entries that are not images"),
            (hidden, "hidden entry", "hidden entries"),
            (beside, "image beside the class folders", "images beside the class folders")) if found]
        say(f"diffnas: {folder}: left out {'; '.join(kinds)}")
    if not paths:
        raise DataError(f"{folder}: no class subfolders with image files ({'/'.join(IMAGE_SUFFIXES)})")
    return paths, np.asarray(labels, dtype=np.int64)


def _check_read_once(sub: Path, reals: set[str], read: dict[str, Path]) -> Path | None:
    """The folders `sub` read (`reals`) against those other class folders read (`read`, updated): one
    another class read is a DataError; one the same class of another split read is returned."""
    shared = None
    for real in sorted(reals):
        owner = read.setdefault(real, sub)
        if owner == sub:
            continue
        if owner.name != sub.name:   # the same name is the same class of another split (a split's own are unique)
            linked, other = (owner, sub) if os.path.realpath(owner) != real else (sub, owner)
            raise DataError(f"{linked}: reaches {real} by a link, and {other} reaches it too: its images would have "
                            f"the labels of both {owner.name!r} and {sub.name!r}; remove the link")
        shared = shared or owner
    return shared


def _text_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file (a byte-order mark left out, whatever the machine's locale), or
    a DataError naming the file and the first line that is not text."""
    with reading(path):
        data = path.read_bytes()
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        at = e.start + (3 if data.startswith(codecs.BOM_UTF8) else 0)   # e.start counts after the mark
        line = data[:at].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 text (byte {data[at]:#04x}); the official file is "
                        f"plain ASCII") from None


def check_tiny_imagenet_val(root: Path) -> None:
    """A DataError for a val/ laid out by class (val/<wnid>/images/*.JPEG, as scripts that reorganise
    Tiny-ImageNet for an ImageFolder leave it): its missing val/images/ read as an incomplete download."""
    val = root / "val"
    if val.is_dir() and not (val / "images").is_dir():
        by_class = sorted(p.name for p in val.iterdir() if p.is_dir() and not is_hidden(p.name))
        if by_class:
            more = f" and {len(by_class) - 1} more" if len(by_class) > 1 else ""
            raise DataError(f"{val}: laid out by class ({by_class[0]}/{more}), as a script that "
                            f"reorganises Tiny-ImageNet leaves it; the tiny-imagenet reader reads the download's own "
                            f"val/images/ with val/val_annotations.txt: unpack the download again, or read train/ and "
                            f"val/ as an image folder (val/ renamed test/, {option('dataset', 'imagefolder')})")


def list_tiny_imagenet_val(root: Path) -> tuple[list[str], list[Path], np.ndarray]:
    """wnids (sorted), val files and labels of `tiny-imagenet-200/`: what scoring a network needs
    (`list_tiny_imagenet` adds train/). Classes are numbered in sorted wnid order, as an ImageFolder
    over train/ numbers them."""
    listed = [line.strip() for line in _text_lines(root / "wnids.txt")]
    annotations = _text_lines(root / "val" / "val_annotations.txt")
    seen: dict[str, int] = {}
    for number, wnid in enumerate(listed, 1):
        if wnid and wnid in seen:   # a class listed twice: its images twice under two labels, one never used
            raise DataError(f"{root / 'wnids.txt'}:{number}: {wnid} again (first on line {seen[wnid]}); each class "
                            f"is listed once")
        seen.setdefault(wnid, number)
    wnids = sorted(w for w in seen if w)
    if not wnids:
        raise DataError(f"{root / 'wnids.txt'}: lists no class (the download lists 200 wnids, one per line)")
    index = {w: i for i, w in enumerate(wnids)}
    val_paths: list[Path] = []
    val_labels: list[int] = []
    files: dict[str, int] = {}
    for number, line in enumerate(annotations, 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in index:
            raise DataError(f"{root / 'val' / 'val_annotations.txt'}:{number}: expected "
                            f"'file<TAB>wnid<TAB>...' with a wnid from wnids.txt, got {line!r}")
        if not fields[0] or fields[0] != Path(fields[0]).name or fields[0] in (".", ".."):
            # a path ('../../train/n01/images/n01_0.JPEG') would score a training image as a test one
            raise DataError(f"{root / 'val' / 'val_annotations.txt'}:{number}: {fields[0]!r} is not a file name in "
                            f"val/images/ (the listing names files there, e.g. val_0.JPEG)")
        if fields[0] in files:   # scored twice, perhaps under two labels
            raise DataError(f"{root / 'val' / 'val_annotations.txt'}:{number}: {fields[0]} again (first on line "
                            f"{files[fields[0]]}); each image is listed once")
        files[fields[0]] = number
        val_paths.append(root / "val" / "images" / fields[0])
        val_labels.append(index[fields[1]])
    if not val_paths:
        raise DataError(f"{root / 'val' / 'val_annotations.txt'}: lists no image (the download lists 10,000, "
                        f"one 'file<TAB>wnid<TAB>...' line each)")
    return wnids, val_paths, np.asarray(val_labels, np.int64)


def list_tiny_imagenet(root: Path) -> tuple[list[str], list[Path], np.ndarray, list[Path], np.ndarray]:
    """wnids (sorted), train files and labels, val files and labels of `tiny-imagenet-200/`.

    Layout (http://cs231n.stanford.edu/tiny-imagenet-200.zip): wnids.txt, train/<wnid>/images/*.JPEG,
    val/images/*.JPEG with val/val_annotations.txt lines "file<TAB>wnid<TAB>x0<TAB>y0<TAB>x1<TAB>y1".
    """
    wnids, val_paths, val_labels = list_tiny_imagenet_val(root)
    index = {w: i for i, w in enumerate(wnids)}
    extra = sorted(p.name for p in (root / "train").iterdir()
                   if p.is_dir() and p.name not in index and not is_hidden(p.name)) \
        if (root / "train").is_dir() else []   # hidden folders (.ipynb_checkpoints) are no classes, as in imagefolder
    if extra:   # its images would be left out without a word
        raise DataError(f"{root / 'train' / extra[0]}: a class folder that wnids.txt does not list"
                        + (f" ({len(extra)} such folders)" if len(extra) > 1 else ""))
    train_paths: list[Path] = []
    train_labels: list[int] = []
    for wnid in wnids:
        folder = root / "train" / wnid / "images"
        if not folder.is_dir():
            raise DataError(f"{folder}: missing (wnids.txt lists {wnid})")
        # not the hidden ones: macOS's ._name.JPEG resource forks are no images (a copy through an exFAT drive)
        files = sorted(p for p in folder.iterdir() if is_image(p) and not is_hidden(p.name))
        if not files:
            raise DataError(f"{folder}: no images (wnids.txt lists {wnid}; the download holds 500 per class)")
        train_paths += files
        train_labels += [index[wnid]] * len(files)
    return wnids, train_paths, np.asarray(train_labels, np.int64), val_paths, val_labels
