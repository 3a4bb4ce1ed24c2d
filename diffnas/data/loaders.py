"""The registry `DATASETS`: how each dataset name is read from its standard files.

One loader per format (`formats.py` reads the files; here they are found in the data folder, with
the download hint when they are missing, and given the published mean/std); each takes (data_dir,
synthetic_size, image_size). Image files (imagefolder, tiny-imagenet) may be of mixed sizes:
image_size=N decodes each as N x N (`formats.resize_centre_crop`), and their decoded arrays are kept
in a cache folder (`cache.py`), so a second load reads one .npz.
"""

from __future__ import annotations

import functools
import itertools
import importlib.resources
from pathlib import Path

import numpy as np
import torch

from ..distributed import is_main
from ..errors import ConfigError, DataError
from ..notices import option, say, shell
from . import cache, formats
from .download import SOURCES
from .types import Dataset, DatasetEntry, TestSplit, TrainedOn, make_dataset, make_split


# files or folders that say which dataset a data folder holds (in it, or in a folder in it): the
# official archives' unpacked names, and the binary CIFAR versions that diffnas does not read
_SIGNS = {"cifar10": ("cifar-10-batches-py", "data_batch_1"), "cifar100": ("cifar-100-python",),
          "svhn": ("train_32x32.mat",), "tiny-imagenet": ("tiny-imagenet-200", "wnids.txt")}
_BINARY = {"cifar10": ("cifar-10-batches-bin", "data_batch_1.bin"), "cifar100": ("cifar-100-binary",)}


def _looked_at(data_dir: Path, scanned: int = 100) -> list[Path]:
    """data_dir and the first `scanned` folders in it (a large or network folder is not walked for a
    hint): where the hints below look, listed once; [] where the file system refuses a look."""
    try:
        return [data_dir, *sorted(itertools.islice((p for p in data_dir.iterdir() if p.is_dir()), scanned))]
    except OSError:
        return []


def _holds(data_dir: Path, folders: list[Path], names: tuple[str, ...]) -> str | None:
    """The first of `names` in `folders` (`_looked_at`), as a path under data_dir, or None; None too
    where the file system refuses a look (another user's folder in it)."""
    try:
        found = next((folder / n for folder in folders for n in names if (folder / n).exists()), None)
    except OSError:
        return None
    return None if found is None else str(found.relative_to(data_dir))


def _binary_hint(name: str, data_dir: Path, folders: list[Path]) -> str:
    """"; D holds cifar10's binary version (...), and diffnas reads the python version (...)", or ""."""
    binary = _holds(data_dir, folders, _BINARY.get(name, ()))
    if binary is None:
        return ""
    return (f"; {data_dir} holds {name}'s binary version ({binary}), and diffnas reads the python version "
            f"(`{shell('diffnas', 'download', name, '--data-dir', data_dir)}` fetches it)")


def _other_dataset_hint(name: str, data_dir: Path, folders: list[Path]) -> str:
    """"; D holds cifar100's files (cifar-100-python): --dataset cifar100 reads them" where the data
    folder of `name` holds another dataset's (a mix-up, or a folder of several datasets), or ""."""
    for other, signs in _SIGNS.items():
        found = None if other == name else _holds(data_dir, folders, signs)
        if found is not None:
            return f"; {data_dir} holds {other}'s files ({found}): {option('dataset', other)} reads them"
    return ""


def download_hint(name: str, data_dir: Path) -> str:
    """The `diffnas download` suggestion, for the datasets it can fetch; when the archive it fetches is
    there already (not unpacked), that it unpacks it after checking it, without fetching. A data folder
    in the image-folder layout (train/<class>/..., as a JPEG copy of CIFAR-10), or holding another
    dataset's files (said after the download), or the binary CIFAR version, is named as such."""
    if name != "imagefolder" and _image_folder_layout(data_dir):
        return (f"; {data_dir} holds train/<class>/ folders, an image folder: read it with "
                f"{option('dataset', 'imagefolder')}")
    folders = _looked_at(data_dir)
    if binary := _binary_hint(name, data_dir, folders):
        return binary
    return _download_hint(name, data_dir) + _other_dataset_hint(name, data_dir, folders)


def _download_hint(name: str, data_dir: Path) -> str:
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


def _image_folder_layout(data_dir: Path) -> bool:
    """Whether data_dir has train/ and test/ (or val/) folders and train/ a folder in it (a class)."""
    try:
        return (((data_dir / "test").is_dir() or (data_dir / "val").is_dir())
                and any(p.is_dir() for p in (data_dir / "train").iterdir()))
    except OSError:   # no train/, or unreadable
        return False


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
                        f"{download_hint(name, data_dir)}")
    return folder


def _require(name: str, data_dir: Path, path: Path) -> Path:
    """path, if it is a file; else '<path>: no such file' (plus the download hint)."""
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "no such file"
        raise DataError(f"{path}: {what}{download_hint(name, data_dir)}")
    return path


# ---------------------------------------------------------------------------------------------
# loaders, one per format; each takes (data_dir, synthetic_size, image_size); load_dataset has
# checked image_size against the entry's fixed side, so only the image-file loaders read it

# CIFAR-10: quark0/darts cnn/utils.py `_data_transforms_cifar10` (CIFAR_MEAN, CIFAR_STD).
# CIFAR-100: the train-set statistics of weiaicunzai/pytorch-cifar100 conf/global_settings.py
# (CIFAR100_TRAIN_MEAN, CIFAR100_TRAIN_STD), in full.
CIFAR10_MEAN, CIFAR10_STD = (0.49139968, 0.48215827, 0.44653124), (0.24703233, 0.24348505, 0.26158768)
CIFAR100_MEAN = (0.5070751592371323, 0.48654887331495095, 0.4409178433670343)
CIFAR100_STD = (0.2673342858792401, 0.2564384629170883, 0.27615047132568404)
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
    return make_dataset(name, train, formats.read_cifar_batch(folder / test_file, label_key, classes), classes,
                        mean, std)


def _load_cifar_test(name: str, inner: str, test_file: str, label_key: str, classes: int,
                     data_dir: Path, image_size: int, trained: TrainedOn) -> TestSplit:
    folder = _locate(name, data_dir, (inner,), (test_file,), f"the official python version's {test_file}")
    images, labels = formats.read_cifar_batch(folder / test_file, label_key, classes)
    return TestSplit(make_split(name, "test", images, labels, classes), classes)


IDX_TRAIN = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
IDX_TEST = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _idx_parts(name: str, inner: tuple[str, ...], npz_names: tuple[str, ...], data_dir: Path,
               parts: tuple[tuple[str, str], ...]) -> list[formats.Arrays]:
    """The (images, labels) of each (images stem, labels stem) in `parts`, read from the IDX files (.gz or
    not) where the first is present, else from Keras's npz (`npz_names`, first found; it holds train and
    test, and `parts` picks by stem)."""
    first = parts[0][0]
    folder = _find(data_dir, inner, formats.idx_names(first))
    if folder is None:
        npz_folder = _find(data_dir, inner, npz_names)
        if npz_folder is None:
            files = "the four IDX files" if len(parts) == 2 else "the t10k IDX files"
            raise DataError(f"{name}: no {first} in {_looked_in(data_dir, inner)} (expected {files}, "
                            f".gz or not, or Keras's {' or '.join(npz_names)}){download_hint(name, data_dir)}")
        path = next(npz_folder / n for n in npz_names if (npz_folder / n).exists())
        train, test = formats.read_mnist_npz(path)
        if train[0].shape[2:] != (28, 28) or test[0].shape[2:] != (28, 28):
            raise DataError(f"{path}: images are {'x'.join(map(str, train[0].shape[2:]))} (train) and "
                            f"{'x'.join(map(str, test[0].shape[2:]))} (test), expected 28x28")
        return [train if stems == IDX_TRAIN else test for stems in parts]
    out = []
    for stems in parts:
        paths = [formats.find_idx(folder, s) for s in stems]
        for stem, found in zip(stems, paths):
            if found is None:
                others = " nor ".join(formats.idx_names(stem)[1:])
                raise DataError(f"{folder / stem}: no such file (nor {others}){download_hint(name, data_dir)}")
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
    return make_dataset(name, train, test, 10, mean, std)


def _load_idx_test(name: str, inner: tuple[str, ...], npz_names: tuple[str, ...], data_dir: Path,
                   image_size: int, trained: TrainedOn) -> TestSplit:
    """The t10k IDX files alone (or the npz's test arrays)."""
    (test,) = _idx_parts(name, inner, npz_names, data_dir, (IDX_TEST,))
    return TestSplit(make_split(name, "test", *test, 10), 10)


def _load_svhn(data_dir: Path, synthetic_size: int, image_size: int) -> Dataset:
    folder = _locate("svhn", data_dir, ("svhn",), ("train_32x32.mat",),
                     "the format 1 files train_32x32.mat and test_32x32.mat")
    train_file = _require("svhn", data_dir, folder / "train_32x32.mat")
    test_file = _require("svhn", data_dir, folder / "test_32x32.mat")
    train = formats.read_svhn_mat(train_file)
    return make_dataset("svhn", train, formats.read_svhn_mat(test_file), 10, SVHN_MEAN, SVHN_STD)


def _load_svhn_test(data_dir: Path, image_size: int, trained: TrainedOn) -> TestSplit:
    folder = _locate("svhn", data_dir, ("svhn",), ("test_32x32.mat",), "the format 1 file test_32x32.mat")
    return TestSplit(make_split("svhn", "test", *formats.read_svhn_mat(folder / "test_32x32.mat"), 10), 10)


def _load_tiny_imagenet(data_dir: Path, synthetic_size: int, image_size: int) -> Dataset:
    root = _locate("tiny-imagenet", data_dir, ("tiny-imagenet-200",), ("wnids.txt",),
                   "wnids.txt, train/<wnid>/images/*.JPEG, val/images and val/val_annotations.txt")
    formats.check_tiny_imagenet_val(root)
    for listed in ("wnids.txt", "val/val_annotations.txt"):
        _require("tiny-imagenet", data_dir, root / listed)
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
    return make_dataset("tiny-imagenet", (images[:n], train_labels), (images[n:], val_labels), len(wnids),
                        TINY_MEAN, TINY_STD, class_names=wnids)


def _load_tiny_imagenet_test(data_dir: Path, image_size: int, trained: TrainedOn) -> TestSplit:
    """val/ alone (Tiny-ImageNet's test images have no labels), decoded and cached apart from the whole
    dataset's decode."""
    root = _locate("tiny-imagenet", data_dir, ("tiny-imagenet-200",), ("wnids.txt",),
                   "wnids.txt, val/images and val/val_annotations.txt")
    formats.check_tiny_imagenet_val(root)
    _require("tiny-imagenet", data_dir, root / "val" / "val_annotations.txt")
    wnids, paths, labels = formats.list_tiny_imagenet_val(root)
    for path in paths:
        _require("tiny-imagenet", data_dir, path)
    listing = [root / "wnids.txt", root / "val" / "val_annotations.txt"]
    images = cache.decoded("tiny-imagenet-val", root, paths + listing, labels, wnids, image_size, True,
                           lambda: formats.read_images(paths, rgb=True, desc="tiny-imagenet val",
                                                       image_size=image_size))
    return TestSplit(make_split("tiny-imagenet", "test", images, labels, len(wnids)), len(wnids), tuple(wnids))


def _split_folder_hint(data_dir: Path, needed: str) -> str:
    """"; this looks like the train/ folder itself: pass --data-dir D" when `data_dir` is an image
    folder's train/, test/ or val/ (its parent holds `needed`/), else ""."""
    if data_dir.name in ("train", "test", "val") and (data_dir.parent / needed).is_dir():
        return f"; this looks like the {data_dir.name}/ folder itself: pass {option('data_dir', str(data_dir.parent))}"
    return ""


def _refuse_tiny_imagenet(data_dir: Path) -> None:
    """Tiny-ImageNet's download named as an image folder: its val/ is one folder of images with a
    listing, and test/ is unlabelled (test/images/ is no class), so it is no image folder (one whose
    val/ was laid out by class is one)."""
    if (data_dir / "wnids.txt").is_file() and (data_dir / "val" / "val_annotations.txt").is_file():
        raise DataError(f"imagefolder: {data_dir} is Tiny-ImageNet's layout (wnids.txt, train/, val/), not an "
                        f"image folder: read it with {option('dataset', 'tiny-imagenet')}")


def _test_folder(data_dir: Path) -> Path:
    """DIR/test, or DIR/val where there is no test/ (ImageNet's and many downloads' layout, whose
    validation images are the held-out split)."""
    test, val = data_dir / "test", data_dir / "val"
    return val if not test.is_dir() and val.is_dir() else test


def _say_test_folder(data_dir: Path, test_dir: Path) -> None:
    """A val/ read as the test split, said once (every torchrun rank reads the data; one says so)."""
    if test_dir.name == "val" and is_main():
        say(f"diffnas: imagefolder: {data_dir} has no test/; its val/ is the test split")


def _load_image_folder(data_dir: Path, synthetic_size: int, image_size: int) -> Dataset:
    _refuse_tiny_imagenet(data_dir)
    train_dir, test_dir = data_dir / "train", _test_folder(data_dir)
    for folder in (train_dir, test_dir):
        if not folder.is_dir():
            hint = (_split_folder_hint(data_dir, "train")
                    or ("; hold some images of each class out in test/<class>/ (or val/<class>/): the training "
                        "and evaluation score them" if train_dir.is_dir() else
                        f"; point {option('data_dir')} at the folder that holds train/ and test/"))
            raise DataError(f"imagefolder: {data_dir} has no {folder.name}/ (expected "
                            f"DIR/train/<class>/<images> and DIR/test/<class>/<images>, or val/ for test/){hint}")
    _say_test_folder(data_dir, test_dir)
    # hidden folders (.ipynb_checkpoints) are not classes: list_class_folder leaves them out
    classes = sorted(p.name for p in train_dir.iterdir() if p.is_dir() and not formats.is_hidden(p.name))
    read: dict[str, Path] = {}   # real folder -> the class folder that read it: one folder in two splits is said
    train_paths, train_labels = formats.list_class_folder(train_dir, classes, read)
    if len(classes) == 1:   # every label the same: 100% accuracy from the first step, which reads as success
        raise DataError(f"imagefolder: {train_dir} has one class folder ({classes[0]}/); a classifier needs at "
                        f"least two, one folder per class")
    test_paths, test_labels = formats.list_class_folder(test_dir, classes, read)
    # one decode over both splits, so they share size and channel count
    paths = train_paths + test_paths
    images = cache.decoded("imagefolder", data_dir, paths, np.concatenate([train_labels, test_labels]), classes,
                           image_size, False, lambda: formats.read_images(paths, desc="imagefolder",
                                                                          image_size=image_size))
    n = len(train_paths)
    return make_dataset("imagefolder", (images[:n], train_labels), (images[n:], test_labels), len(classes),
                        class_names=classes)


def _load_image_folder_test(data_dir: Path, image_size: int, trained: TrainedOn) -> TestSplit | None:
    """DIR/test/<class>/* alone, labelled by the trained network's class names and decoded with its
    channel count (1 or 3), so a folder holding only test/ can be scored; None when the checkpoint
    predates saved class names (only train/ then says which folder is which label)."""
    classes = trained.class_names
    if not classes:
        return None
    _refuse_tiny_imagenet(data_dir)
    test_dir = _test_folder(data_dir)
    if not test_dir.is_dir():
        hint = _split_folder_hint(data_dir, "test")
        raise DataError(f"imagefolder: {data_dir} has no test/ (expected DIR/test/<class>/<images>, or val/ for "
                        f"test/){hint}")
    _say_test_folder(data_dir, test_dir)
    paths, labels = formats.list_class_folder(test_dir, classes)
    rgb, gray = trained.channels == 3, trained.channels == 1
    images = cache.decoded("imagefolder-test" + ("-gray" if gray else ""), test_dir, paths, labels, list(classes),
                           image_size, rgb, lambda: formats.read_images(paths, rgb=rgb, desc="imagefolder test",
                                                                        image_size=image_size, gray=gray))
    return TestSplit(make_split("imagefolder", "test", images, labels, len(classes)), len(classes), classes)


def _load_digits(data_dir: Path, synthetic_size: int, image_size: int) -> Dataset:
    # UCI "Optical Recognition of Handwritten Digits" (Alpaydin & Kaynak, 1998; CC BY 4.0,
    # https://doi.org/10.24432/C50P49), as sklearn.datasets.load_digits ships it: 1797 8x8 images,
    # values 0..16. digits.npz was made once with sklearn 1.9: images = round(x * 255 / 16) as uint8
    # (N, 1, 8, 8), labels uint8, in sklearn's order, np.savez_compressed. sklearn is not needed here.
    with importlib.resources.files(__package__).joinpath("digits.npz").open("rb") as f:
        with np.load(f) as npz:
            images, labels = npz["images"], npz["labels"].astype(np.int64)
    return make_dataset("digits", (images[:DIGITS_TRAIN], labels[:DIGITS_TRAIN]),
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
    return make_dataset("synthetic", (images[:n], labels[:n].numpy()), (images[n:], labels[n:].numpy()), 10)


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
