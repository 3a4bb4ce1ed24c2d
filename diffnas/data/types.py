"""The data types: a `Dataset` of uint8 image tensors on the CPU, its `Split`s, a registry
`DatasetEntry` (how a name becomes a Dataset: `loaders.py`), and what a trained network's checkpoint
says about its data (`TrainedOn`) for a test-only read (`TestSplit`). `make_dataset` checks arrays
read from files and builds one, with the per-channel mean/std that normalisation uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..distributed import is_main
from ..errors import DataError
from ..notices import say
from .formats import Arrays


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
    width: int = 0  # its fixed width where that is not `side` (registered tensors of H x W)
    # (data_dir, image_size, what the network trained on) -> the test split read from the test files
    # alone, for `diffnas evaluate`; None where they do not say enough (`loaders._load_image_folder_test`)
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


STATS_CHUNK_BYTES = 64 << 20   # uint8 images counted at a time by channel_stats


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 (N, C, H, W) images, in [0, 1] units: from each
    channel's count of every value 0..255 (exact, and no float copy of the images: a float64 copy of
    even 1,024 images at a time is 8x their size, which an --image-size 8000 folder cannot afford)."""
    n, c, h, w = images.shape
    counts = np.zeros((c, 256), dtype=np.int64)
    step = max(1, STATS_CHUNK_BYTES // max(c * h * w, 1))   # images a chunk
    for start in range(0, n, step):
        chunk = images[start:start + step]
        for k in range(c):
            counts[k] += np.bincount(chunk[:, k].ravel(), minlength=256)
    values = np.arange(256, dtype=np.float64) / 255
    total = max(n * h * w, 1)
    mean = counts @ values / total
    std = np.sqrt(np.maximum(counts @ values**2 / total - mean**2, 0.0))
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def make_split(name: str, part: str, images: np.ndarray, labels: np.ndarray, classes: int) -> Split:
    if images.ndim == 4 and labels.ndim == 1 and len(images) != len(labels):
        raise DataError(f"{name} {part}: {len(images):,} images but {len(labels):,} labels")
    if images.ndim != 4 or images.dtype != np.uint8 or labels.shape != (len(images),):
        raise DataError(f"{name} {part}: images {images.dtype} {images.shape} and labels {labels.shape} "
                        "do not form a uint8 (N, C, H, W) split")
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        raise DataError(f"{name} {part}: labels span {labels.min()}..{labels.max()}, expected 0..{classes - 1}")
    # np.require copies only arrays that are read-only (np.frombuffer) or not contiguous
    return Split(torch.from_numpy(np.require(images, np.uint8, ["C", "W"])),
                 torch.from_numpy(np.require(labels, np.int64, ["C", "W"])))


def make_dataset(name: str, train: Arrays, test: Arrays, classes: int,
                 mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None,
                 class_names: Sequence[str] = ()) -> Dataset:
    if train[0].shape[1:] != test[0].shape[1:]:
        raise DataError(f"{name}: train images are {train[0].shape[1:]} but test images {test[0].shape[1:]}")
    splits = make_split(name, "train", *train, classes), make_split(name, "test", *test, classes)
    if mean is None or std is None:   # the one not given: the training images' own (one given is kept)
        own_mean, own_std = channel_stats(train[0])
        # constant channels, where the images' own std is used (a caller's is > 0: register_tensors)
        flat = [c for c, s in enumerate(own_std) if s == 0] if std is None else []
        mean, std = own_mean if mean is None else mean, own_std if std is None else std
        if flat and len(flat) == len(std):   # blank images: normalising would give NaN at the first step
            raise DataError(f"{name}: channel {flat[0]} of the training images is constant (std 0, every value "
                            f"{round(own_mean[flat[0]] * 255)}), as every channel is: the images hold nothing "
                            f"to learn from")
        if flat:   # two-colour fluorescence images with an empty blue channel are data like any: divided by 1
            std = tuple(1.0 if c in flat else s for c, s in enumerate(std))
            if is_main():
                which = (f"channel {flat[0]} of the training images is constant (every value "
                         f"{round(own_mean[flat[0]] * 255)})" if len(flat) == 1 else
                         f"channels {', '.join(map(str, flat))} of the training images are constant")
                say(f"diffnas: note: {name}: {which}: normalised by std 1 instead of 0")
    return Dataset(name, *splits, classes, mean, std, tuple(class_names))
