"""Datasets (real file formats, an embedded default), device-resident batches and augmentation."""

from .augment import Augment, cutout, random_crop, random_flip
from .batches import Batches
from .datasets import DATASETS, Dataset, Split, load_dataset, sample, search_split, subset
from .download import download
from .tensors import register_tensors

__all__ = [
    "Augment", "Batches", "DATASETS", "Dataset", "Split", "cutout", "download",
    "load_dataset", "random_crop", "random_flip", "register_tensors", "sample", "search_split", "subset",
]
