"""Datasets (real file formats, an embedded default), device-resident batches and augmentation."""

from .augment import Augment, cutout, random_crop, random_flip
from .batches import Batches
from .datasets import load_dataset, sample, search_split, subset
from .download import download
from .loaders import DATASETS
from .tensors import register_tensors
from .types import Dataset, Split

__all__ = [
    "Augment", "Batches", "DATASETS", "Dataset", "Split", "cutout", "download",
    "load_dataset", "random_crop", "random_flip", "register_tensors", "sample", "search_split", "subset",
]
