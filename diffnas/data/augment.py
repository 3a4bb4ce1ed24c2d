"""The DARTS training augmentation as batched tensor ops, on whatever device the batch is on.

DARTS (quark0/darts cnn/utils.py `_data_transforms_cifar10`) applies, per image:
RandomCrop(32, padding=4) -> RandomHorizontalFlip() -> ToTensor -> Normalize -> Cutout(16).
So crop (zero padding) and flip act on the uint8 batch before normalisation, cutout zeroes the
normalised batch. As in airbench94.py (`batch_crop`, `batch_flip_lr`), each op works on a whole
batch. Random parameters are drawn on the CPU from an explicit `torch.Generator` (a draw depends only
on the generator's state, never on the global RNG or the device) and moved to the batch's device.
Each op has a `draw_*` half and an apply half, so a global batch's draws can be sliced per rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ConfigError


def draw_crop(n: int, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Offsets (n, 2) = (top, left) into the padded image, uniform over 0..2*padding."""
    return torch.randint(0, 2 * padding + 1, (n, 2), generator=generator, device="cpu")


def crop(x: torch.Tensor, padding: int, offsets: torch.Tensor) -> torch.Tensor:
    """Pad (B, C, H, W) with `padding` zeros on each side, then cut an H x W window per sample."""
    if padding == 0:
        return x
    b, _, h, w = x.shape
    offsets = offsets.to(x.device)
    padded = F.pad(x, (padding, padding, padding, padding)).permute(0, 2, 3, 1)  # (B, H+2p, W+2p, C)
    rows = offsets[:, 0, None] + torch.arange(h, device=x.device)  # (B, H)
    cols = offsets[:, 1, None] + torch.arange(w, device=x.device)  # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """DARTS RandomCrop(H, padding): zero padding, one offset per sample."""
    return crop(x, padding, draw_crop(x.shape[0], padding, generator))


def draw_flip(n: int, generator: torch.Generator) -> torch.Tensor:
    """Bool (n,): which samples to mirror, each with probability 0.5."""
    return torch.rand(n, generator=generator, device="cpu") < 0.5


def flip(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror the samples of (B, C, H, W) where mask is True, left to right."""
    return torch.where(mask.to(x.device)[:, None, None, None], x.flip(3), x)


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """RandomHorizontalFlip(p=0.5) per sample."""
    return flip(x, draw_flip(x.shape[0], generator))


def draw_cutout(n: int, h: int, w: int, generator: torch.Generator) -> torch.Tensor:
    """Centres (n, 2) = (row, col), uniform over the image, as Cutout's np.random.randint(h)."""
    return torch.stack([torch.randint(0, h, (n,), generator=generator, device="cpu"),
                        torch.randint(0, w, (n,), generator=generator, device="cpu")], dim=1)


def cut(x: torch.Tensor, size: int, centres: torch.Tensor) -> torch.Tensor:
    """Zero a size x size square per sample, all channels, clipped at the border.

    Rows cy - size//2 .. cy - size//2 + size (exclusive), as DARTS Cutout's
    clip(y - length//2) .. clip(y + length//2) for its even length 16; an odd size keeps side `size`.
    """
    if size == 0:
        return x
    _, _, h, w = x.shape
    top_left = centres.to(x.device) - size // 2  # (B, 2), may be negative: clipped by the comparison
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    in_rows = (rows >= top_left[:, :1]) & (rows < top_left[:, :1] + size)  # (B, H)
    in_cols = (cols >= top_left[:, 1:]) & (cols < top_left[:, 1:] + size)  # (B, W)
    return x.masked_fill((in_rows[:, :, None] & in_cols[:, None, :])[:, None], 0)


def cutout(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """DARTS Cutout(size): one zeroed square per sample, centre uniform over the image.
    Apply it to the normalised batch, as DARTS does (after Normalize)."""
    return cut(x, size, draw_cutout(x.shape[0], x.shape[2], x.shape[3], generator))


@dataclass(frozen=True, eq=False)
class Draw:
    """The random parameters of one batch; None where the op is off. CPU until `to`."""

    crop: torch.Tensor | None = None  # (n, 2) offsets
    flip: torch.Tensor | None = None  # (n,) bool
    cutout: torch.Tensor | None = None  # (n, 2) centres

    def slice(self, start: int, stop: int) -> Draw:
        return Draw(*(None if t is None else t[start:stop] for t in (self.crop, self.flip, self.cutout)))

    def to(self, device: torch.device) -> Draw:
        return Draw(*(None if t is None else t.to(device) for t in (self.crop, self.flip, self.cutout)))


@dataclass(frozen=True)
class Augment:
    """Which DARTS augmentations to apply. DARTS search and training: crop 4 and flip; training adds
    cutout 16 (quark0/darts train.py --cutout_length 16). The default does nothing (evaluation)."""

    crop_padding: int = 0  # pixels of zero padding before the random crop back to H x W
    flip: bool = False  # horizontal flip with p = 0.5
    cutout: int = 0  # side of the zeroed square, after normalisation; 0 = off

    def __post_init__(self) -> None:
        if self.crop_padding < 0 or self.cutout < 0:
            raise ConfigError(f"augmentation sizes must be >= 0, got crop_padding={self.crop_padding}, "
                              f"cutout={self.cutout}")

    def draw(self, n: int, h: int, w: int, generator: torch.Generator) -> Draw:
        """All random parameters of n samples, in a fixed order: crop, flip, cutout."""
        return Draw(
            draw_crop(n, self.crop_padding, generator) if self.crop_padding else None,
            draw_flip(n, generator) if self.flip else None,
            draw_cutout(n, h, w, generator) if self.cutout else None,
        )

    def before_normalise(self, x: torch.Tensor, draw: Draw) -> torch.Tensor:
        """Crop, then flip, the uint8 batch."""
        if draw.crop is not None:
            x = crop(x, self.crop_padding, draw.crop)
        if draw.flip is not None:
            x = flip(x, draw.flip)
        return x

    def after_normalise(self, x: torch.Tensor, draw: Draw) -> torch.Tensor:
        """Cutout on the normalised batch."""
        return x if draw.cutout is None else cut(x, self.cutout, draw.cutout)
