"""Device-resident batches with exact, resumable randomness.

As in airbench94.py's loader, the uint8 images move to the device once and each batch is indexed,
augmented and normalised there: no DataLoader workers, no iterator rebuilt per step.

Reproducibility: the permutation of epoch e comes from a CPU generator seeded by (seed, e), the
augmentation of step s from one seeded by (seed, e, s). So `epoch(e, start_step=s)` yields exactly
the batches s, s+1, ... of `epoch(e)` (resuming mid-epoch), and equal arguments give equal batches.
With `world` ranks, all ranks draw the same global batch and its augmentation, and rank r keeps
the r-th contiguous slice: the ranks' slices of a step, concatenated, are the single-process batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import TypedDict

import torch

from ..errors import DataError
from .augment import Augment
from .types import Split


def mix_seed(*parts: int | str) -> int:
    """A 63-bit generator seed from integers and tags; BLAKE2b, so stable across runs and platforms
    (Python's hash() of str is salted per process)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class SharedKeywords(TypedDict):
    """The keywords of Batches that all of a run's splits share: `Batches(split, size, **shared)`."""

    mean: Sequence[float]
    std: Sequence[float]
    device: torch.device | str
    rank: int
    world: int


class Batches:
    """Batches of a Split, resident on `device`: uint8 moved to the device once, normalised per batch."""

    def __init__(self, split: Split, batch_size: int, mean: Sequence[float], std: Sequence[float],
                 device: torch.device | str = "cpu", augment: Augment = Augment(), shuffle: bool = True,
                 drop_last: bool = True, seed: int = 0, rank: int = 0, world: int = 1) -> None:
        n = split.labels.shape[0]
        channels = split.images.shape[1]
        if world < 1 or not 0 <= rank < world:
            raise DataError(f"rank {rank} is not in a world of {world} processes")
        if batch_size < 1 or batch_size > n:
            raise DataError(f"batch size {batch_size} does not fit a split of {n} samples "
                            f"(it must be between 1 and {n})")
        if batch_size % world:
            raise DataError(f"batch size {batch_size} is not divisible by the {world} processes "
                            "(each rank takes batch_size / world samples of every batch)")
        if len(mean) != channels or len(std) != channels:
            raise DataError(f"mean {tuple(mean)} and std {tuple(std)} must have one value per channel "
                            f"({channels})")
        self.n, self.batch_size, self.augment = n, batch_size, augment
        self.shuffle, self.drop_last, self.seed, self.rank, self.world = shuffle, drop_last, seed, rank, world
        self.device = torch.device(device)
        # (H, W) of the batches: the images' own, or the augmentation's output (resized crops); checked here
        self.image_size = augment.output_size(*split.images.shape[2:])
        self.images = split.images.to(self.device)  # uint8 (N, C, H, W), moved once
        self.labels = split.labels.to(self.device)  # int64 (N,)
        # in [0, 1] units, as ToTensor then Normalize(mean, std)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)

    def __len__(self) -> int:
        """Steps per epoch."""
        full, rest = divmod(self.n, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def order(self, epoch: int) -> torch.Tensor:
        """The sample order of `epoch` (CPU int64, (N,)), the same on every rank."""
        if not self.shuffle:
            return torch.arange(self.n)
        return torch.randperm(self.n, generator=torch.Generator().manual_seed(mix_seed("order", self.seed, epoch)))

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (x float32 normalised (B, C, *image_size), y int64 (B,)) on the device, from `start_step` on."""
        if not 0 <= start_step <= len(self):
            raise DataError(f"start step {start_step} is outside the {len(self)} steps of an epoch")
        order = self.order(epoch)
        _, _, h, w = self.images.shape
        for step in range(start_step, len(self)):
            idx = order[step * self.batch_size:(step + 1) * self.batch_size]  # the global batch
            generator = torch.Generator().manual_seed(mix_seed("augment", self.seed, epoch, step))
            draw = self.augment.draw(len(idx), h, w, generator)
            # this rank's contiguous slice; a short last batch splits as evenly as it can
            start, stop = self.rank * len(idx) // self.world, (self.rank + 1) * len(idx) // self.world
            idx = idx[start:stop].to(self.device)
            draw = draw.slice(start, stop).to(self.device)
            x = self.augment.before_normalise(self.images[idx], draw)  # float in [0, 1]
            x = (x - self.mean) / self.std
            yield self.augment.after_normalise(x, draw), self.labels[idx]
