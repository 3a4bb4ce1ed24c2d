"""Datasets by name: `load_dataset("cifar10", "data")` reads the official files of a registered
dataset (`loaders.DATASETS`) into a `Dataset` of uint8 tensors on the CPU, checking the data folder
and `image_size` first; `reused_datasets()` reads each once within a block. Also here: the checks of
a resumed or evaluated run's data against what it trained on, and the search's train/val split (a
seeded permutation of indices, `search_split`, taken with `subset`).
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, DataError, suggest
from ..notices import option
from .loaders import DATASETS, download_hint
from .types import Dataset, Split

DEFAULT_DATA_DIR = Path("data")  # where `load_dataset` and `diffnas download` look without --data-dir


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


def data_facts(ds: Dataset) -> dict[str, Any]:
    """What a checkpoint records of its data, for `check_resumed_data` (and evaluation): the image shape,
    the classes and their names, the image counts, and a digest of the labels in file order and of up to
    512 images of each split spread over it (all of a small dataset; a sample keeps a large one cheap)."""
    digest = hashlib.sha1()
    for split in (ds.train, ds.test):
        digest.update(split.labels.numpy().tobytes())
        picked = torch.linspace(0, len(split) - 1, min(len(split), 512)).round().long().unique()
        digest.update(split.images[picked].numpy().tobytes())
    return {"classes": ds.classes, "class_names": list(ds.class_names), "input_shape": list(ds.shape),
            "images": [len(ds.train), len(ds.test)], "data_sha1": digest.hexdigest()}


def check_resumed_data(ds: Dataset, facts: dict[str, Any], saved: dict[str, Any], run_dir: str | Path) -> None:
    """A resumed run's data `ds` against what its checkpoint (`saved`) learnt: images of the same shape
    (another folder named on resume, of other sizes, was taken without a word), the same number of
    classes and, where both know them, the same class names label by label (a class folder renamed or
    added since would train on wrong labels, or fail as weights of another shape); then the image counts
    and digest of `facts` (`data_facts(ds)`, which the caller has computed for its checkpoint already)."""
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
    # checkpoints before these were saved have neither: not checked
    images = saved.get("images")
    if isinstance(images, (list, tuple)) and list(images) != [len(ds.train), len(ds.test)]:
        raise DataError(f"{dataset}: {len(ds.train):,} training and {len(ds.test):,} test images here, but the run "
                        f"in {run_dir} started on {images[0]:,} and {images[1]:,} (images added or removed since?): "
                        f"its batches and its search's train/validation split would be other images; resume it "
                        f"on the data it started with, or start a new run on this")
    digest = saved.get("data_sha1")
    if isinstance(digest, str) and digest != facts["data_sha1"]:
        raise DataError(f"{dataset}: as many images as the run in {run_dir} started on, but not the same ones, or "
                        f"not with the same labels (images replaced or moved between classes since?); resume it on "
                        f"the data it started with, or start a new run on this")


def describe(ds: Dataset) -> str:
    """One line saying what was loaded: sizes, image shape, classes (an image folder's by name), the
    first thing to check on one's own data."""
    c, h, w = ds.shape
    # a name with a newline or other control character (a folder can have one) is written as Python
    # would write it, so the line stays one line
    names = [n if n.isprintable() else repr(n) for n in ds.class_names or ()]
    shown = f" ({', '.join(names[:6])}{', ...' if len(names) > 6 else ''})" if names else ""
    return (f"{ds.name} data, {len(ds.train):,} training and {len(ds.test):,} test images of {c}x{h}x{w}, "
            f"{ds.classes} classes{shown}")


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
        raise DataError(f"unknown dataset {name!r}{suggest(name, DATASETS)}; known: {', '.join(DATASETS)}")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 0:
        raise ConfigError(f"image_size: must be an integer >= 0, got {image_size!r}")
    width = entry.width or entry.side
    if image_size and entry.side and (image_size != entry.side or width != entry.side):
        resizable = ", ".join(n for n, e in DATASETS.items() if not e.side)
        shape = f"{entry.side}x{width}" if width == entry.side else f"{entry.side}x{width} (height x width)"
        raise ConfigError(f"image_size: {name} images are {shape}, fixed by the format; "
                          f"{option('image_size')} resizes image files only ({resizable}): leave it 0"
                          + (f" or {entry.side}" if width == entry.side else ""))


def data_folder(name: str, data_dir: str | Path | None) -> Path:
    """The folder dataset `name` is read from (default ./data); for a dataset read from files, a
    DataError when it is not a folder, saying how to download it there."""
    folder = DEFAULT_DATA_DIR if data_dir is None else Path(data_dir).expanduser()
    if DATASETS[name].files and not folder.is_dir():
        given = (option("data_dir", str(folder)) if data_dir is not None
                 else f"{folder} (the default {option('data_dir')})")
        problem = f"{given} is a file, not a folder" if folder.exists() else f"{given}: no such folder"
        raise DataError(f"{name}: {problem}{download_hint(name, folder) if not folder.exists() else ''}")
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
