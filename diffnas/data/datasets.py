"""Dataset registry: a name and a data folder become a `Dataset` of uint8 tensors on the CPU.

`load_dataset("cifar10", "data")` finds the official files (`formats.py` reads them), checks
shapes and labels, and attaches the per-channel mean/std that normalisation uses. Image files
(imagefolder, tiny-imagenet) may be of mixed sizes: `image_size=N` decodes each as N x N (shorter side
resized to N, centre crop; `formats.resize_centre_crop`); formats of one fixed size refuse any other N.
Their decoded arrays are kept in a cache folder (`cache.py`), so a second load reads one .npz.
The search's train/val split is a seeded permutation of indices (`search_split`), taken with `subset`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib.resources
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, DataError
from ..notices import option, shell
from . import cache, formats
from .download import SOURCES

DEFAULT_DATA_DIR = Path("data")  # where `load_dataset` and `diffnas download` look without --data-dir


@dataclass(frozen=True, eq=False)
class Split:
    images: torch.Tensor  # uint8, (N, C, H, W), CPU
    labels: torch.Tensor  # int64, (N,)

    def __len__(self) -> int:
        return self.labels.shape[0]


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str
    train: Split
    test: Split
    classes: int
    mean: tuple[float, ...]  # per channel, in [0, 1] units (pixel / 255)
    std: tuple[float, ...]
    class_names: tuple[str, ...] = ()  # label i's folder (imagefolder) or wnid (tiny-imagenet); () when fixed

    @property
    def shape(self) -> tuple[int, int, int]:
        c, h, w = self.train.images.shape[1:]
        return c, h, w


@dataclass(frozen=True)
class DatasetEntry:
    """How a registry name becomes a Dataset."""

    load: Callable[[Path, int, int], Dataset]  # (data_dir, synthetic_size, image_size) -> Dataset
    about: str  # one line for listings and --help
    files: bool = True  # read from data_dir; False: embedded or generated
    side: int = 0  # the format's fixed image side in pixels; 0: image files, any size (image_size resizes)
    # (data_dir, image_size, what the network trained on) -> the test split read from the test files
    # alone, for `diffnas evaluate`; None where they do not say enough (`_load_image_folder_test`)
    load_test: Callable[[Path, int, "TrainedOn"], "TestSplit | None"] | None = None
    # random horizontal flips in search and training; False for digits (a mirrored digit is another
    # symbol), Fashion-MNIST (unflipped, as MNIST) and the synthetic class templates
    flip: bool = True
    # (image channels, classes) of the official files, so a network can be sized without reading them
    # (`diffnas params`); None: only the files tell (imagefolder)
    shape: tuple[int, int] | None = None


@dataclass(frozen=True)
class TrainedOn:
    """What a trained network's checkpoint says about its data, which a test-only read may need."""

    class_names: tuple[str, ...]   # in label order; () in checkpoints made before they were saved
    channels: int


@dataclass(frozen=True, eq=False)
class TestSplit:
    """A dataset's test split read without its training files (`DatasetEntry.load_test`)."""

    split: Split
    classes: int
    class_names: tuple[str, ...] = ()  # as Dataset.class_names


def check_classes(dataset: str, names: Sequence[str], trained_names: Sequence[str], harm: str) -> None:
    """Refuse class names (folders, wnids) that are not, label by label, those a network learnt
    (`trained_names`; () for a checkpoint made before they were saved: not checked). Another count
    of classes is the caller's check. harm: what would go wrong ("its outputs would be scored against
    the wrong labels")."""
    names, trained_names = tuple(names), tuple(trained_names)
    if trained_names and names and len(names) == len(trained_names) and trained_names != names:
        differ = [f"{i}: {a} here, {b} in training" for i, (a, b) in enumerate(zip(names, trained_names)) if a != b]
        raise DataError(f"{dataset}: the classes here are not those the network was trained on, label by label "
                        f"({'; '.join(differ[:3])}{'; ...' if len(differ) > 3 else ''}): {harm}")


def check_resumed_data(ds: Dataset, saved: dict[str, Any], run_dir: str | Path) -> None:
    """A resumed run's data `ds` against what its checkpoint (`saved`) learnt: images of the same shape
    (another folder named on resume, of other sizes, was taken without a word), the same number of
    classes and, where both know them, the same class names label by label (a class folder renamed or
    added since would train on wrong labels, or fail as weights of another shape)."""
    dataset, names, classes = ds.name, ds.class_names, ds.classes
    shape = saved.get("input_shape")
    if isinstance(shape, (list, tuple)) and tuple(shape) != tuple(ds.shape):
        raise DataError(f"{dataset}: images of {'x'.join(map(str, ds.shape))} here, but the run in {run_dir} trained "
                        f"on {'x'.join(map(str, shape))}; resume it on data of that size")
    trained = saved.get("classes")
    if isinstance(trained, int) and trained != classes:
        shown = f" ({', '.join(saved['class_names'])})" if saved.get("class_names") else ""
        raise DataError(f"{dataset}: {classes} classes here, but the run in {run_dir} trained on {trained}{shown}; "
                        f"resume it on its own data, or start a new run on this")
    check_classes(dataset, names, saved.get("class_names") or (), "resuming would train on the wrong labels")


def describe(ds: Dataset) -> str:
    """One line saying what was loaded: sizes, image shape, classes (an image folder's by name), the
    first thing to check on one's own data."""
    c, h, w = ds.shape
    names = ds.class_names
    shown = f" ({', '.join(names[:6])}{', ...' if len(names) > 6 else ''})" if names else ""
    return (f"{ds.name} data, {len(ds.train):,} training and {len(ds.test):,} test images of {c}x{h}x{w}, "
            f"{ds.classes} classes{shown}")


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 (N, C, H, W) images, in [0, 1] units."""
    total = np.zeros(images.shape[1])
    squares = np.zeros(images.shape[1])
    for start in range(0, len(images), 1024):  # float64 in chunks: Tiny-ImageNet is 1.2 GB as uint8
        chunk = images[start:start + 1024].astype(np.float64) / 255
        total += chunk.sum(axis=(0, 2, 3))
        squares += np.square(chunk).sum(axis=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def _split(name: str, part: str, images: np.ndarray, labels: np.ndarray, classes: int) -> Split:
    if images.ndim != 4 or images.dtype != np.uint8 or labels.shape != (len(images),):
        raise DataError(f"{name} {part}: images {images.dtype} {images.shape} and labels {labels.shape} "
                        "do not form a uint8 (N, C, H, W) split")
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        raise DataError(f"{name} {part}: labels span {labels.min()}..{labels.max()}, expected 0..{classes - 1}")
    # np.require copies only arrays that are read-only (np.frombuffer) or not contiguous
    return Split(torch.from_numpy(np.require(images, np.uint8, ["C", "W"])),
                 torch.from_numpy(np.require(labels, np.int64, ["C", "W"])))


def _dataset(name: str, train: formats.Arrays, test: formats.Arrays, classes: int,
             mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None,
             class_names: Sequence[str] = ()) -> Dataset:
    if train[0].shape[1:] != test[0].shape[1:]:
        raise DataError(f"{name}: train images are {train[0].shape[1:]} but test images {test[0].shape[1:]}")
    if mean is None or std is None:
        mean, std = channel_stats(train[0])
    return Dataset(name, _split(name, "train", *train, classes), _split(name, "test", *test, classes),
                   classes, mean, std, tuple(class_names))


def _hint(name: str, data_dir: Path) -> str:
    """The `diffnas download` suggestion, for the datasets it can fetch; when the archive it fetches is
    there already (not unpacked), that it unpacks it after checking it, without fetching."""
    if name not in SOURCES:
        return ""
    command = shell("diffnas", "download", name, "--data-dir", data_dir)
    source = SOURCES[name]
    archives = [data_dir / source.folder / Path(r.url).name for r in source.files
                if r.url.endswith((".tar.gz", ".tgz", ".tar", ".zip"))]
    found = next((a for a in archives if a.is_file()), None)
    if found is not None:
        return f"; {found} is here, not unpacked: `{command}` checks it and unpacks it (without fetching it)"
    return f"; try `{command}`"


def _find(data_dir: Path, inner: tuple[str, ...], markers: tuple[str, ...]) -> Path | None:
    """The folder under data_dir (or data_dir itself, the inner folder given directly) holding a marker."""
    for folder in [data_dir / sub for sub in inner] + [data_dir]:
        if any((folder / m).exists() for m in markers):
            return folder
    return None


def _looked_in(data_dir: Path, inner: tuple[str, ...]) -> str:
    """"D or D/mnist or D/MNIST/raw": where `_find` looks, in words (the files may be in D itself)."""
    return " or ".join(str(f) for f in [data_dir, *(data_dir / sub for sub in inner)])


def _locate(name: str, data_dir: Path, inner: tuple[str, ...], markers: tuple[str, ...],
            expected: str) -> Path:
    """`_find`, or a DataError that says what was expected and where it was looked for."""
    folder = _find(data_dir, inner, markers)
    if folder is None:
        raise DataError(f"{name}: no {markers[0]} in {_looked_in(data_dir, inner)} (expected {expected})"
                        f"{_hint(name, data_dir)}")
    return folder


def _require(name: str, data_dir: Path, path: Path) -> Path:
    """path, if it is a file; else '<path>: no such file' (plus the download hint)."""
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "no such file"
        raise DataError(f"{path}: {what}{_hint(name, data_dir)}")
    return path


# ---------------------------------------------------------------------------------------------
# loaders, one per format; each takes (data_dir, synthetic_size, image_size); load_dataset has
# checked image_size against the entry's fixed side, so only the image-file loaders read it

# CIFAR-10: quark0/darts cnn/utils.py `_data_transforms_cifar10` (CIFAR_MEAN, CIFAR_STD).
# CIFAR-100: the train-set statistics of weiaicunzai/pytorch-cifar100 conf/global_settings.py, rounded.
CIFAR10_MEAN, CIFAR10_STD = (0.49139968, 0.48215827, 0.44653124), (0.24703233, 0.24348505, 0.26158768)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
# MNIST: pytorch/examples mnist/main.py `Normalize((0.1307,), (0.3081,))`.
# Fashion-MNIST and SVHN: train-set statistics as widely quoted in PyTorch code (not recomputed here).
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
FASHION_MEAN, FASHION_STD = (0.2860,), (0.3530,)
SVHN_MEAN, SVHN_STD = (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)
# Tiny-ImageNet: train-set statistics of tjmoon0104/pytorch-tiny-imagenet (ResNet18_224.ipynb).
TINY_MEAN, TINY_STD = (0.4802, 0.4481, 0.3975), (0.2302, 0.2265, 0.2262)
# digits: channel_stats of the first 1497 images of digits.npz (float64, population std)
DIGITS_MEAN, DIGITS_STD = (0.30522286,), (0.37490667,)
DIGITS_TRAIN = 1497  # first 1497 train, last 300 test (sklearn order, deterministic)


def _load_cifar(name: str, inner: str, train_files: tuple[str, ...], test_file: str, label_key: str,
                classes: int, mean: tuple[float, ...], std: tuple[float, ...],
                data_dir: Path, synthetic_size: int, image_size: int) -> Dataset:
    folder = _locate(name, data_dir, (inner,), (train_files[0],), "the official python version")
    for f in (*train_files, test_file):
        _require(name, data_dir, folder / f)
    parts = [formats.read_cifar_batch(folder / f, label_key, classes) for f in train_files]
    train = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    return _dataset(name, train, formats.read_cifar_batch(folder / test_file, label_key, classes), classes,
                    mean, std)


def _load_cifar_test(name: str, inner: str, test_file: str, label_key: str, classes: int,
                     data_dir: Path, image_size: int, trained: TrainedOn) -> TestSplit:
    folder = _locate(name, data_dir, (inner,), (test_file,), f"the official python version's {test_file}")
    images, labels = formats.read_cifar_batch(folder / test_file, label_key, classes)
    return TestSplit(_split(name, "test", images, labels, classes), classes)


IDX_TRAIN = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
IDX_TEST = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _idx_parts(name: str, inner: tuple[str, ...], npz_names: tuple[str, ...], data_dir: Path,
               parts: tuple[tuple[str, str], ...]) -> list[formats.Arrays]:
    """The (images, labels) of each (images stem, labels stem) in `parts`, read from the IDX files (.gz or
    not) where the first is present, else from Keras's npz (`npz_names`, first found; it holds train and
    test, and `parts` picks by stem)."""
    first = parts[0][0]
    folder = _find(data_dir, inner, (first, first + ".gz"))
    if folder is None:
        npz_folder = _find(data_dir, inner, npz_names)
        if npz_folder is None:
            files = "the four IDX files" if len(parts) == 2 else "the t10k IDX files"
            raise DataError(f"{name}: no {first} in {_looked_in(data_dir, inner)} (expected {files}, "
                            f".gz or not, or Keras's {' or '.join(npz_names)}){_hint(name, data_dir)}")
        path = next(npz_folder / n for n in npz_names if (npz_folder / n).exists())
        train, test = formats.read_mnist_npz(path)
        if train[0].shape[2:] != (28, 28) or test[0].shape[2:] != (28, 28):
            raise DataError(f"{path}: images are {'x'.join(map(str, train[0].shape[2:]))} (train) and "
                            f"{'x'.join(map(str, test[0].shape[2:]))} (test), expected 28x28")
        return [train if stems == IDX_TRAIN else test for stems in parts]
    out = []
    for stems in parts:
        paths = [formats.find_idx(folder, s) for s in stems]
        for stem, path in zip(stems, paths):
            if path is None:
                raise DataError(f"{folder / stem}: no such file (nor {stem}.gz){_hint(name, data_dir)}")
        images, labels = formats.read_idx_pair(paths[0], paths[1])  # type: ignore[arg-type]
        if images.ndim == 4 and images.shape[2:] != (28, 28):   # as the npz: the networks' settings assume 28x28
            raise DataError(f"{paths[0]}: images are {'x'.join(map(str, images.shape[2:]))}, expected 28x28")
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise DataError(f"{paths[1]}: labels span {labels.min()}..{labels.max()}, expected 0..9")
        out.append((images, labels))
    return out


def _load_idx(name: str, inner: tuple[str, ...], npz_names: tuple[str, ...], mean: tuple[float, ...],
              std: tuple[float, ...], data_dir: Path, synthetic_size: int, image_size: int) -> Dataset:
    """The four IDX files (.gz or not) where present, else Keras's npz (`npz_names`, first found)."""
    train, test = _idx_parts(name, inner, npz_names, data_dir, (IDX_TRAIN, IDX_TEST))
    return _dataset(name, train, test, 10, mean, std)


def _load_idx_test(name: str, inner: tuple[str, ...], npz_names: tuple[str, ...], data_dir: Path,
                   image_size: int, trained: TrainedOn) -> TestSplit:
    """The t10k IDX files alone (or the npz's test arrays)."""
    (test,) = _idx_parts(name, inner, npz_names, data_dir, (IDX_TEST,))
    return TestSplit(_split(name, "test", *test, 10), 10)


def _load_svhn(data_dir: Path, synthetic_size: int, image_size: int) -> Dataset:
    folder = _locate("svhn", data_dir, ("svhn",), ("train_32x32.mat",),
                     "the format 1 files train_32x32.mat and test_32x32.mat")
    train_file = _require("svhn", data_dir, folder / "train_32x32.mat")
    test_file = _require("svhn", data_dir, folder / "test_32x32.mat")
    train = formats.read_svhn_mat(train_file)
    return _dataset("svhn", train, formats.read_svhn_mat(test_file), 10, SVHN_MEAN, SVHN_STD)


def _load_svhn_test(data_dir: Path, image_size: int, trained: TrainedOn) -> TestSplit:
    folder = _locate("svhn", data_dir, ("svhn",), ("test_32x32.mat",), "the format 1 file test_32x32.mat")
    return TestSplit(_split("svhn", "test", *formats.read_svhn_mat(folder / "test_32x32.mat"), 10), 10)


def _load_tiny_imagenet(data_dir: Path, synthetic_size: int, image_size: int) -> Dataset:
    root = _locate("tiny-imagenet", data_dir, ("tiny-imagenet-200",), ("wnids.txt",),
                   "wnids.txt, train/<wnid>/images/*.JPEG, val/images and val/val_annotations.txt")
    for listing in ("wnids.txt", "val/val_annotations.txt"):
        _require("tiny-imagenet", data_dir, root / listing)
    wnids, train_paths, train_labels, val_paths, val_labels = formats.list_tiny_imagenet(root)
    for path in val_paths:  # named by the annotations: one missing is an incomplete download
        _require("tiny-imagenet", data_dir, path)
    # a few Tiny-ImageNet JPEGs are grayscale: decode everything as RGB
    paths = train_paths + val_paths
    listing = [root / "wnids.txt", root / "val" / "val_annotations.txt"]  # they set the labels
    images = cache.decoded("tiny-imagenet", root, paths + listing, np.concatenate([train_labels, val_labels]), wnids,
                           image_size, True, lambda: formats.read_images(paths, rgb=True, desc="tiny-imagenet",
                                                                         image_size=image_size))
    n = len(train_paths)
    # the published statistics are those of the 64x64 files; resizing moves them very little
    return _dataset("tiny-imagenet", (images[:n], train_labels), (images[n:], val_labels), len(wnids),
                    TINY_MEAN, TINY_STD, class_names=wnids)


def _load_tiny_imagenet_test(data_dir: Path, image_size: int, trained: TrainedOn) -> TestSplit:
    """val/ alone (Tiny-ImageNet's test images have no labels), decoded and cached apart from the whole
    dataset's decode."""
    root = _locate("tiny-imagenet", data_dir, ("tiny-imagenet-200",), ("wnids.txt",),
                   "wnids.txt, val/images and val/val_annotations.txt")
    _require("tiny-imagenet", data_dir, root / "val" / "val_annotations.txt")
    wnids, paths, labels = formats.list_tiny_imagenet_val(root)
    for path in paths:
        _require("tiny-imagenet", data_dir, path)
    listing = [root / "wnids.txt", root / "val" / "val_annotations.txt"]
    images = cache.decoded("tiny-imagenet-val", root, paths + listing, labels, wnids, image_size, True,
                           lambda: formats.read_images(paths, rgb=True, desc="tiny-imagenet val",
                                                       image_size=image_size))
    return TestSplit(_split("tiny-imagenet", "test", images, labels, len(wnids)), len(wnids), tuple(wnids))


def _split_folder_hint(data_dir: Path, needed: str) -> str:
    """"; this looks like the train/ folder itself: pass --data-dir D" when `data_dir` is an image
    folder's train/ or test/ (its parent holds `needed`/), else ""."""
    if data_dir.name in ("train", "test") and (data_dir.parent / needed).is_dir():
        return f"; this looks like the {data_dir.name}/ folder itself: pass {option('data_dir', str(data_dir.parent))}"
    if (data_dir / "wnids.txt").is_file() and (data_dir / "val").is_dir():   # named as an image folder
        return f"; it is Tiny-ImageNet's layout (wnids.txt, train/, val/): read it with " \
               f"{option('dataset', 'tiny-imagenet')}"
    return ""


def _load_image_folder(data_dir: Path, synthetic_size: int, image_size: int) -> Dataset:
    train_dir, test_dir = data_dir / "train", data_dir / "test"
    for folder in (train_dir, test_dir):
        if not folder.is_dir():
            hint = (_split_folder_hint(data_dir, "train")
                    or f"; point {option('data_dir')} at the folder that holds train/ and test/")
            raise DataError(f"imagefolder: {data_dir} has no {folder.name}/ (expected "
                            f"DIR/train/<class>/<images> and DIR/test/<class>/<images>){hint}")
    # hidden folders (.ipynb_checkpoints) are not classes: list_class_folder leaves them out
    classes = sorted(p.name for p in train_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    train_paths, train_labels = formats.list_class_folder(train_dir, classes)
    if len(classes) == 1:   # every label the same: 100% accuracy from the first step, which reads as success
        raise DataError(f"imagefolder: {train_dir} has one class folder ({classes[0]}/); a classifier needs at "
                        f"least two, one folder per class")
    test_paths, test_labels = formats.list_class_folder(test_dir, classes)
    # one decode over both splits, so they share size and channel count
    paths = train_paths + test_paths
    images = cache.decoded("imagefolder", data_dir, paths, np.concatenate([train_labels, test_labels]), classes,
                           image_size, False, lambda: formats.read_images(paths, desc="imagefolder",
                                                                          image_size=image_size))
    n = len(train_paths)
    return _dataset("imagefolder", (images[:n], train_labels), (images[n:], test_labels), len(classes),
                    class_names=classes)


def _load_image_folder_test(data_dir: Path, image_size: int, trained: TrainedOn) -> TestSplit | None:
    """DIR/test/<class>/* alone, labelled by the trained network's class names and decoded with its
    channel count (1 or 3), so a folder holding only test/ can be scored; None when the checkpoint
    predates saved class names (only train/ then says which folder is which label)."""
    classes = trained.class_names
    if not classes:
        return None
    test_dir = data_dir / "test"
    if not test_dir.is_dir():
        hint = _split_folder_hint(data_dir, "test")
        raise DataError(f"imagefolder: {data_dir} has no test/ (expected DIR/test/<class>/<images>){hint}")
    paths, labels = formats.list_class_folder(test_dir, classes)
    rgb = trained.channels == 3
    images = cache.decoded("imagefolder-test", test_dir, paths, labels, list(classes), image_size, rgb,
                           lambda: formats.read_images(paths, rgb=rgb, desc="imagefolder test", image_size=image_size))
    return TestSplit(_split("imagefolder", "test", images, labels, len(classes)), len(classes), classes)


def _load_digits(data_dir: Path, synthetic_size: int, image_size: int) -> Dataset:
    # UCI "Optical Recognition of Handwritten Digits" (Alpaydin & Kaynak, 1998; CC BY 4.0,
    # https://doi.org/10.24432/C50P49), as sklearn.datasets.load_digits ships it: 1797 8x8 images,
    # values 0..16. digits.npz was made once with sklearn 1.9: images = round(x * 255 / 16) as uint8
    # (N, 1, 8, 8), labels uint8, in sklearn's order, np.savez_compressed. sklearn is not needed here.
    with importlib.resources.files(__package__).joinpath("digits.npz").open("rb") as f:
        with np.load(f) as npz:
            images, labels = npz["images"], npz["labels"].astype(np.int64)
    return _dataset("digits", (images[:DIGITS_TRAIN], labels[:DIGITS_TRAIN]),
                    (images[DIGITS_TRAIN:], labels[DIGITS_TRAIN:]), 10, DIGITS_MEAN, DIGITS_STD)


def _load_synthetic(data_dir: Path, synthetic_size: int, image_size: int) -> Dataset:
    """Seeded 3x16x16 images of 10 classes: a fixed random template per class plus noise, learnable."""
    if synthetic_size < 1:
        raise ConfigError(f"synthetic_size must be at least 1, got {synthetic_size}")
    g = torch.Generator().manual_seed(0)
    templates = torch.randint(0, 256, (10, 3, 16, 16), generator=g)
    labels = torch.randint(0, 10, (2 * synthetic_size,), generator=g)
    noise = torch.randint(0, 256, (2 * synthetic_size, 3, 16, 16), generator=g)
    images = ((templates[labels] + noise) // 2).to(torch.uint8).numpy()
    n = synthetic_size
    return _dataset("synthetic", (images[:n], labels[:n].numpy()), (images[n:], labels[n:].numpy()), 10)


_CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
# (name, inner folders, npz names) of the IDX datasets
_MNIST = ("mnist", ("mnist", "MNIST/raw"), ("mnist.npz",))
_FASHION = ("fashion-mnist", ("fashion-mnist", "FashionMNIST/raw"), ("fashion-mnist.npz", "fashion_mnist.npz"))
DATASETS: dict[str, DatasetEntry] = {
    "digits": DatasetEntry(_load_digits, "UCI handwritten digits, 1x8x8, 10 classes, embedded", files=False,
                           side=8, flip=False, shape=(1, 10)),
    "cifar10": DatasetEntry(functools.partial(
        _load_cifar, "cifar10", "cifar-10-batches-py", _CIFAR10_TRAIN, "test_batch", "labels", 10,
        CIFAR10_MEAN, CIFAR10_STD), "CIFAR-10, 3x32x32, 10 classes, python version", side=32, shape=(3, 10),
        load_test=functools.partial(_load_cifar_test, "cifar10", "cifar-10-batches-py", "test_batch", "labels", 10)),
    "cifar100": DatasetEntry(functools.partial(
        _load_cifar, "cifar100", "cifar-100-python", ("train",), "test", "fine_labels", 100,
        CIFAR100_MEAN, CIFAR100_STD), "CIFAR-100 fine labels, 3x32x32, 100 classes, python version", side=32,
        shape=(3, 100),
        load_test=functools.partial(_load_cifar_test, "cifar100", "cifar-100-python", "test", "fine_labels", 100)),
    "mnist": DatasetEntry(functools.partial(_load_idx, *_MNIST, MNIST_MEAN, MNIST_STD),
                          "MNIST, 1x28x28, 10 classes, IDX files or Keras's mnist.npz", side=28, flip=False,
                          shape=(1, 10),
                          load_test=functools.partial(_load_idx_test, *_MNIST)),
    "fashion-mnist": DatasetEntry(functools.partial(_load_idx, *_FASHION, FASHION_MEAN, FASHION_STD),
                                  "Fashion-MNIST, 1x28x28, 10 classes, IDX files or a Keras-layout "
                                  "fashion-mnist.npz", side=28, flip=False, shape=(1, 10),
                                  load_test=functools.partial(_load_idx_test, *_FASHION)),
    "svhn": DatasetEntry(_load_svhn, "SVHN cropped digits, 3x32x32, 10 classes, format 1 .mat", side=32, flip=False,
                         shape=(3, 10),
                         load_test=_load_svhn_test),
    "tiny-imagenet": DatasetEntry(_load_tiny_imagenet, "Tiny-ImageNet, 3x64x64 (or --image-size), 200 classes, "
                                                       "val as test", load_test=_load_tiny_imagenet_test,
                                  shape=(3, 200)),
    "imagefolder": DatasetEntry(_load_image_folder, "DIR/train/<class>/*, DIR/test/<class>/*, one image size "
                                                    "or --image-size", load_test=_load_image_folder_test),
    "synthetic": DatasetEntry(_load_synthetic, "random 3x16x16 images, 10 classes, for dry runs", files=False,
                              side=16, flip=False, shape=(3, 10)),
}


def flips(ds: Dataset) -> bool:
    """Whether training augmentation may mirror the dataset's images (`DatasetEntry.flip`)."""
    entry = DATASETS.get(ds.name)
    return entry.flip if entry is not None else True


def load_dataset(name: str, data_dir: str | Path | None = None, *, synthetic_size: int = 64,
                 image_size: int = 0) -> Dataset:
    """Load a registered dataset. `data_dir` holds the downloaded files (default ./data).

    image_size N > 0 decodes image files (imagefolder, tiny-imagenet) as N x N: shorter side resized
    to N, centre crop. Formats of one fixed size (cifar10, mnist, ...) accept only 0 or their own side.
    """
    check_image_size(name, image_size)
    folder = data_folder(name, data_dir)
    loaded = _REUSED.get()
    if loaded is None:
        return DATASETS[name].load(folder, synthetic_size, image_size)
    key = (name, str(folder.resolve()), synthetic_size, image_size)
    if key not in loaded:
        loaded[key] = DATASETS[name].load(folder, synthetic_size, image_size)
    return loaded[key]


# the datasets read inside `reused_datasets()`, by (name, folder, synthetic_size, image_size)
_REUSED: contextvars.ContextVar[dict[tuple[str, str, int, int], Dataset] | None] = contextvars.ContextVar(
    "diffnas_reused_datasets", default=None)


@contextlib.contextmanager
def reused_datasets() -> Iterator[None]:
    """Within the block, `load_dataset` reads each dataset once and returns the same Dataset again
    (its tensors are never written in place): `diffnas run` reads its data once for the training's
    checks, the search and the training. The datasets are let go when the block ends."""
    token = _REUSED.set({})
    try:
        yield
    finally:
        _REUSED.reset(token)


def check_image_size(name: str, image_size: int) -> None:
    """`image_size` for dataset `name`: an integer >= 0, and only 0 or the format's own side for one of
    fixed size (cifar10, mnist, ...): it resizes image files only. Also checked where the data is not
    read (`diffnas params`)."""
    entry = DATASETS.get(name)
    if entry is None:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 0:
        raise ConfigError(f"image_size: must be an integer >= 0, got {image_size!r}")
    if image_size and entry.side and image_size != entry.side:
        resizable = ", ".join(n for n, e in DATASETS.items() if not e.side)
        raise ConfigError(f"image_size: {name} images are {entry.side}x{entry.side}, fixed by the format; "
                          f"{option('image_size')} resizes image files only ({resizable}): leave it 0 or "
                          f"{entry.side}")


def data_folder(name: str, data_dir: str | Path | None) -> Path:
    """The folder dataset `name` is read from (default ./data); for a dataset read from files, a
    DataError when it is not a folder, saying how to download it there."""
    folder = DEFAULT_DATA_DIR if data_dir is None else Path(data_dir).expanduser()
    if DATASETS[name].files and not folder.is_dir():
        given = (option("data_dir", str(folder)) if data_dir is not None
                 else f"{folder} (the default {option('data_dir')})")
        problem = f"{given} is a file, not a folder" if folder.exists() else f"{given}: no such folder"
        raise DataError(f"{name}: {problem}{_hint(name, folder) if not folder.exists() else ''}")
    return folder


def search_split(n: int, portion: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split range(n) by a seeded permutation: the first floor(portion * n) indices search-train
    (w), the rest search-val (alpha). DARTS uses portion 0.5 (train_search.py --train_portion)."""
    if not 0.0 <= portion <= 1.0:
        raise ConfigError(f"train portion must be in [0, 1], got {portion}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    k = int(np.floor(portion * n))
    return order[:k], order[k:]


def subset(split: Split, idx: torch.Tensor) -> Split:
    """The samples of `split` at `idx` (a copy)."""
    return Split(split.images[idx], split.labels[idx])


def sample(split: Split, n: int, seed: int) -> Split:
    """`n` samples of `split` drawn by a seeded permutation, in their own order (all of `split` when
    n >= its size). What an evaluation pass capped by max_steps covers: the files' own order is often
    sorted by class (image folders), so its first batches would hold one class."""
    total = len(split.labels)
    if n >= total:
        return split
    idx = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n]
    return subset(split, idx.sort().values)
