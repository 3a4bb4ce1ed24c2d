"""Your own images from Python: tensors or arrays registered under a name that configs then use.

    from diffnas.data import register_tensors
    register_tensors("mine", (train_images, train_labels), (test_images, test_labels))
    search(search_config(dataset="mine", ...))

The images are what the built-in formats give: (N, C, H, W) uint8, or floats in [0, 1] (rounded to
uint8, as an image file would hold them); labels 0..classes-1. Search, training and evaluation then
treat them as any other dataset: the search splits the training images in two, the training
augments them (random crop, flips unless `flip=False`, cutout) and scores the test images. The
registration lives as long as the process: a run on such data is resumed from Python after
registering the same data again (the resume checks the class count, names and image shape).
"""

from __future__ import annotations

import math

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import ConfigError, DataError
from .loaders import DATASETS
from .types import Dataset, DatasetEntry, make_dataset


MAX_CLASSES = 100_000   # ImageNet-21k has 21,841; more is a label column gone wrong


def register_tensors(name: str, train: tuple[Any, Any], test: tuple[Any, Any], *, classes: int | None = None,
                     class_names: Sequence[str] = (), mean: Sequence[float] | None = None,
                     std: Sequence[float] | None = None, flip: bool = True, about: str | None = None) -> Dataset:
    """Register (images, labels) pairs as dataset `name` and return it as loaded.

    images: (N, C, H, W) uint8, or floating point in [0, 1], held as uint8 as every dataset is (x * 255
    rounded: finer steps of a float image are lost); torch tensors or numpy arrays. labels:
    integers 0..classes-1 (classes: the largest label + 1 unless given). mean, std: per channel in
    [0, 1] units (default: the training images' own). flip: random horizontal flips in search and
    training (False for data whose mirror image is another class, such as digits). Registering a
    name again replaces what it held; a built-in dataset's name is refused.
    """
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise ConfigError(f"register_tensors: name must be a non-empty word, got {name!r}")
    if name in DATASETS and not getattr(DATASETS[name].load, "registered", False):
        raise ConfigError(f"register_tensors: {name!r} is a built-in dataset; choose another name")
    if not isinstance(flip, (bool, np.bool_)):   # flip="no" is true: the images would be mirrored
        raise ConfigError(f"register_tensors: flip must be True or False, got {flip!r}")
    arrays = [(_images(name, part, images), _labels(name, part, labels))
              for part, (images, labels) in (("train", _pair("train", train)), ("test", _pair("test", test)))]
    (train_images, train_labels), (test_images, test_labels) = arrays
    if not len(train_labels) or not len(test_labels):
        raise DataError(f"{name}: both splits need images (train {len(train_labels)}, test {len(test_labels)})")
    if classes is None:
        classes = int(max(train_labels.max(), test_labels.max())) + 1
        missing = np.setdiff1d(np.arange(min(classes, MAX_CLASSES + 1)), train_labels)
        if classes > MAX_CLASSES or len(missing):   # one stray label made a classifier of 2**62 outputs
            shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
            raise DataError(f"{name}: labels run to {classes - 1}, but no training image has label {shown}: labels "
                            f"must count the classes from 0 without gaps (or pass classes=N, for classes with no "
                            f"training images)")
    if not isinstance(classes, int) or isinstance(classes, bool) or not 1 <= classes <= MAX_CLASSES:
        raise ConfigError(f"register_tensors: classes must be an integer 1..{MAX_CLASSES:,}, got {classes!r}")
    if class_names and len(class_names) != classes:
        raise ConfigError(f"register_tensors: {len(class_names)} class names for {classes} classes")
    # any height and width, as an image folder's (the networks pool globally); it said "the networks take
    # square images", which image folders of 24x16 files showed untrue
    channels, height, width = train_images.shape[1:]
    for label, stat in (("mean", mean), ("std", std)):
        if stat is not None and len(stat) != channels:
            raise ConfigError(f"register_tensors: {label} has {len(stat)} values for {channels} channels")
    for label, stat in (("mean", mean), ("std", std)):
        if stat is not None and not all(math.isfinite(float(v)) for v in stat):
            raise ConfigError(f"register_tensors: {label} must be finite numbers, got {tuple(stat)}")
    if std is not None and min(std) <= 0:
        raise ConfigError(f"register_tensors: std must be > 0 per channel, got {tuple(std)}")
    dataset = make_dataset(name, arrays[0], arrays[1], classes,
                           None if mean is None else tuple(float(m) for m in mean),
                           None if std is None else tuple(float(s) for s in std), class_names)

    def load(data_dir: Path, synthetic_size: int, image_size: int) -> Dataset:
        return dataset

    load.registered = True   # type: ignore[attr-defined]   # register_tensors may replace it
    DATASETS[name] = DatasetEntry(load, about or f"registered from Python, {channels}x{height}x{width}, "
                                  f"{classes} classes", files=False, side=height, width=width, flip=flip,
                                  shape=(channels, classes))
    return dataset


def _pair(part: str, value: Any) -> tuple[Any, Any]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ConfigError(f"register_tensors: {part} must be an (images, labels) pair, got {type(value).__name__}")
    return value[0], value[1]


def _images(name: str, part: str, images: Any) -> np.ndarray:
    """uint8 (N, C, H, W) as a numpy array; floats in [0, 1] rounded to uint8."""
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu()
        array = (images.float() if images.dtype in (torch.bfloat16, torch.float16) else images).numpy()
    else:
        array = np.asarray(images)
    if array.ndim != 4:
        raise DataError(f"{name} {part}: images must be (N, C, H, W), got shape {array.shape}")
    if array.shape[3] in (1, 3, 4) and array.shape[1] == array.shape[2] != array.shape[3]:   # (N, H, H, C)
        raise DataError(f"{name} {part}: images of shape {array.shape} look channels-last (N, H, W, C); pass them "
                        f"as (N, C, H, W): images.permute(0, 3, 1, 2) (numpy: .transpose(0, 3, 1, 2))")
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.floating):
        if array.size and not (np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1):
            raise DataError(f"{name} {part}: floating-point images must lie in [0, 1] (got {array.min():g}.."
                            f"{array.max():g}); pass uint8 images, or scale them to [0, 1]")
        return np.rint(array * 255).astype(np.uint8)
    raise DataError(f"{name} {part}: images must be uint8 or floating point in [0, 1], got {array.dtype}")


def _labels(name: str, part: str, labels: Any) -> np.ndarray:
    array = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if array.ndim != 1 or not (np.issubdtype(array.dtype, np.integer) or array.size == 0):
        raise DataError(f"{name} {part}: labels must be a 1-d array of integers, got {array.dtype} {array.shape}")
    if array.size and array.min() < 0:
        raise DataError(f"{name} {part}: labels must be 0..classes-1, got {array.min()}")
    if array.size and int(array.max()) > MAX_CLASSES:   # checked before int64, which a uint64 would wrap
        raise DataError(f"{name} {part}: labels must be 0..classes-1, got {int(array.max())}")
    return array.astype(np.int64)
