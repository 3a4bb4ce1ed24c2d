"""The DARTS training augmentation as batched tensor ops, on whatever device the batch is on.

DARTS (quark0/darts cnn/utils.py `_data_transforms_cifar10`) applies, per image:
RandomCrop(32, padding=4) -> RandomHorizontalFlip() -> ToTensor -> Normalize -> Cutout(16).
So crop (zero padding) and flip act on the batch before normalisation, cutout zeroes the
normalised batch. The ImageNet recipe (quark0/darts cnn/train_imagenet.py) is, per image:
RandomResizedCrop(224) -> RandomHorizontalFlip() -> ColorJitter(0.4, 0.4, 0.4, hue=0.2) ->
ToTensor -> Normalize, and for testing Resize(256) -> CenterCrop(224); `resized_crop`, `jitter` and
`resize_centre_crop` are those, batched. As in airbench94.py (`batch_crop`, `batch_flip_lr`), each
op works on a whole batch. Random parameters are drawn on the CPU from an explicit `torch.Generator`
(a draw depends only on the generator's state, never on the global RNG or the device) and moved to
the batch's device.
Each op has a `draw_*` half and an apply half, so a global batch's draws can be sliced per rank.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from ..errors import ConfigError


def crop_padding(side: int) -> int:
    """The random crop's zero padding for images of `side` pixels: DARTS's 4 at 32 px (RandomCrop(32,
    padding=4)), scaled by side/32 below that (8x8 digits: 1), never more than 4 above it."""
    return max(1, min(4, side // 8))


def scaled_cutout(size: int, side: int) -> int:
    """DARTS's cutout square (16 at 32 px, train.py --cutout_length) scaled by side/32 below 32 px, so
    an 8x8 image is not blanked by a 16x16 square; never more than `size`."""
    return min(size, round(size * side / 32))


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


# ------------------------------------------------------------------------------- random-resized crop

def _fallback_box(h: int, w: int, ratio: tuple[float, float]) -> tuple[int, int]:
    """(height, width) of torchvision's fallback: the whole image, its aspect clamped into `ratio`."""
    if w / h < ratio[0]:
        return int(round(w / ratio[0])), w
    if w / h > ratio[1]:
        return h, int(round(h * ratio[1]))
    return h, w


def draw_resized_crop(n: int, h: int, w: int, generator: torch.Generator, scale: tuple[float, float] = (0.08, 1.0),
                      ratio: tuple[float, float] = (3 / 4, 4 / 3), attempts: int = 10) -> torch.Tensor:
    """Boxes (n, 4) = (top, left, height, width), each as torchvision's RandomResizedCrop.get_params.

    Per sample, up to `attempts` proposals: area uniform in scale * h * w, aspect (width / height)
    log-uniform in `ratio`, sides sqrt(area * aspect) and sqrt(area / aspect) rounded; the first that
    fits the image wins and its position is uniform; when none fits, the centred fallback box. All
    n * attempts proposals are drawn at once (the numbers drawn do not depend on which one wins).
    torchvision 0.2, which DARTS used, drew the aspect uniformly, swapped the sides half the time and
    fell back to a centred square; this is the current torchvision rule.
    """
    u = torch.rand(n, attempts, 2, generator=generator, device="cpu", dtype=torch.float64)
    area = h * w * (scale[0] + (scale[1] - scale[0]) * u[..., 0])
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * u[..., 1])
    heights = torch.sqrt(area / aspect).round().long()  # round half to even, as Python's round
    widths = torch.sqrt(area * aspect).round().long()
    fits = (heights > 0) & (heights <= h) & (widths > 0) & (widths <= w)  # (n, attempts)
    first = fits.long().argmax(1, keepdim=True)  # the first proposal that fits (0 when none does)
    found = fits.any(1)
    fh, fw = _fallback_box(h, w, ratio)
    heights = torch.where(found, heights.gather(1, first)[:, 0], fh)
    widths = torch.where(found, widths.gather(1, first)[:, 0], fw)
    pos = torch.rand(n, 2, generator=generator, device="cpu", dtype=torch.float64)
    top = torch.where(found, (pos[:, 0] * (h - heights + 1)).floor().long(), (h - fh) // 2)
    left = torch.where(found, (pos[:, 1] * (w - widths + 1)).floor().long(), (w - fw) // 2)
    return torch.stack([top, left, heights, widths], dim=1)


def _taps(start: torch.Tensor, length: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bilinear taps along one axis: `size` outputs from the pixels start .. start + length - 1 (per sample).

    As F.interpolate(mode="bilinear", align_corners=False) of the cropped segment: output i reads the
    position (i + 0.5) * length / size - 0.5, clamped at 0; the upper tap is clamped to the segment's
    last pixel. Returns the two pixel indices (B, size) and the weight of the upper one (B, size).
    """
    pos = (torch.arange(size, device=start.device) + 0.5) * (length.float() / size)[:, None] - 0.5
    pos = pos.clamp(min=0)
    lower = pos.floor().long()  # <= length - 1, since pos < length - 0.5
    upper = torch.minimum(lower + 1, length[:, None] - 1)
    return start[:, None] + lower, start[:, None] + upper, pos - lower


def resized_crop(x: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Crop box i of float (B, C, H, W) and resize it to size x size, bilinear, all boxes in one op.

    Equal to torchvision's resized_crop(img, *box, [size, size], antialias=False) per sample (crop,
    then F.interpolate(align_corners=False)); boxes shrunk by more than 2x alias, where PIL's filter
    and torchvision's antialias=True would widen their support.
    """
    b, c, _, w = x.shape
    boxes = boxes.to(x.device)
    row0, row1, row_w = _taps(boxes[:, 0], boxes[:, 2], size)  # (B, size)
    col0, col1, col_w = _taps(boxes[:, 1], boxes[:, 3], size)

    def rows(index: torch.Tensor) -> torch.Tensor:
        return x.gather(2, index[:, None, :, None].expand(b, c, size, w))  # (B, C, size, W)

    x = torch.lerp(rows(row0), rows(row1), row_w[:, None, :, None])

    def cols(index: torch.Tensor) -> torch.Tensor:
        return x.gather(3, index[:, None, None, :].expand(b, c, size, size))  # (B, C, size, size)

    return torch.lerp(cols(col0), cols(col1), col_w[:, None, None, :])


def random_resized_crop(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """RandomResizedCrop(size) per sample, default scale (0.08, 1) and ratio (3/4, 4/3), on a float batch."""
    return resized_crop(x, draw_resized_crop(x.shape[0], x.shape[2], x.shape[3], generator), size)


# ------------------------------------------------------------------------------- evaluation resize

def resized_shape(h: int, w: int, shorter: int) -> tuple[int, int]:
    """torchvision Resize(shorter) of an h x w image: the shorter side becomes `shorter`, the longer
    int(shorter * long / short), so the aspect is kept."""
    if h <= w:
        return shorter, int(shorter * w / h)
    return int(shorter * h / w), shorter


def resize_centre_crop(x: torch.Tensor, resize: int, crop: int) -> torch.Tensor:
    """Resize(resize) then CenterCrop(crop) of a float batch; 0 turns a step off.

    Bilinear with antialiasing (torchvision's tensor default, like PIL's filter that DARTS used); the
    crop starts at round((H - crop) / 2) as torchvision's center_crop.
    """
    h, w = x.shape[-2:]
    if resize and resized_shape(h, w, resize) != (h, w):
        h, w = resized_shape(h, w, resize)
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    if crop:
        top, left = int(round((h - crop) / 2)), int(round((w - crop) / 2))
        x = x[..., top:top + crop, left:left + crop]
    return x


def evaluation_resize(crop: int) -> int:
    """The resize before a centre crop of side `crop`: DARTS ImageNet tests Resize(256), CenterCrop(224);
    other crop sides keep the ratio 256 / 224."""
    return round(crop * 256 / 224)


# ------------------------------------------------------------------------------- colour jitter

GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision rgb_to_grayscale (after TensorFlow)
BRIGHTNESS, CONTRAST, SATURATION, HUE = range(4)  # jitter ops: columns of the factors, values of the order


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) luma of an RGB batch; a one-channel batch is its own grayscale."""
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(1)
    return (GRAY_WEIGHTS[0] * r + GRAY_WEIGHTS[1] * g + GRAY_WEIGHTS[2] * b)[:, None]


def shift_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the hue of RGB (B, 3, H, W) in [0, 1] by `shift` (B, 1, 1, 1) of a turn in HSV, keeping
    saturation and value (torchvision adjust_hue: h <- (h + shift) mod 1).

    HSV as colorsys: v = max, delta = max - min, h from which channel is the max. Back to RGB by the
    closed form channel_n = v - delta * clamp(min(k, 4 - k), 0, 1), k = (n + 6h) mod 6, n = 5, 3, 1
    for R, G, B (v * s = delta).
    """
    r, g, b = x.unbind(1)
    hi, lo = x.amax(1), x.amin(1)
    delta = hi - lo
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    rc, gc, bc = (hi - r) / safe, (hi - g) / safe, (hi - b) / safe
    hue = torch.where(r == hi, bc - gc, torch.where(g == hi, 2.0 + rc - bc, 4.0 + gc - rc))
    hue = torch.remainder(hue / 6.0 + shift[:, 0], 1.0)  # grays: delta = 0, any hue gives v
    k = torch.remainder(torch.tensor([5.0, 3.0, 1.0], device=x.device).view(1, 3, 1, 1) + 6.0 * hue[:, None], 6.0)
    return hi[:, None] - delta[:, None] * torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)


def draw_jitter(n: int, brightness: float, contrast: float, saturation: float, hue: float,
                generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Factors (n, 4) and order (n, 4), as torchvision ColorJitter per sample: brightness, contrast and
    saturation factors uniform in [max(0, 1 - j), 1 + j], a hue shift uniform in [-hue, hue], and a
    uniformly random order of the four ops (a permutation of BRIGHTNESS .. HUE per row). An op that is
    off draws its identity: factor 1, shift 0."""
    lo = torch.tensor([max(0.0, 1 - brightness), max(0.0, 1 - contrast), max(0.0, 1 - saturation), -hue],
                      dtype=torch.float64)
    hi = torch.tensor([1 + brightness, 1 + contrast, 1 + saturation, hue], dtype=torch.float64)
    factors = lo + (hi - lo) * torch.rand(n, 4, generator=generator, device="cpu", dtype=torch.float64)
    order = torch.rand(n, 4, generator=generator, device="cpu").argsort(1)
    return factors.float(), order


def jitter(x: torch.Tensor, factors: torch.Tensor, order: torch.Tensor, hue: bool = True) -> torch.Tensor:
    """Colour jitter of float (B, C, H, W) in [0, 1]: at stage k, sample i applies op order[i, k].

    brightness, contrast and saturation are torchvision's blend(x, target, f) = clamp(f x + (1 - f)
    target, 0, 1) with target black, the mean of the image's grayscale, and its grayscale; factor 1
    leaves x exactly. hue rotates in HSV (`shift_hue`), only where `hue` (a shift of 0 is not exact),
    and only on the samples whose stage it is (a device sync per stage to find them). One-channel
    images: saturation and hue leave them, as torchvision does.
    """
    factors, order = factors.to(x.device), order.to(x.device)
    for k in range(4):
        op = order[:, k].view(-1, 1, 1, 1)
        f = factors.gather(1, order[:, k:k + 1]).view(-1, 1, 1, 1)
        gray = grayscale(x)
        target = torch.where(op == CONTRAST, gray.mean((1, 2, 3), keepdim=True), gray) * (op != BRIGHTNESS)
        # factor 1 (x itself) at the hue stage, and at the saturation stage of one-channel images
        keep = (op == HUE) | ((op == SATURATION) & (x.shape[1] == 1))
        blend = torch.where(keep, torch.ones_like(f), f)
        x = (blend * x + (1.0 - blend) * target).clamp(0.0, 1.0)
        if hue and x.shape[1] == 3:
            rows = (order[:, k] == HUE).nonzero()[:, 0]
            x = x.index_copy(0, rows, shift_hue(x.index_select(0, rows), f.index_select(0, rows)))
    return x


# ------------------------------------------------------------------------------- the pipeline

@dataclass(frozen=True, eq=False)
class Draw:
    """The random parameters of one batch; None where the op is off. CPU until `to`."""

    crop: torch.Tensor | None = None  # (n, 2) offsets
    flip: torch.Tensor | None = None  # (n,) bool
    cutout: torch.Tensor | None = None  # (n, 2) centres
    box: torch.Tensor | None = None  # (n, 4) resized-crop boxes (top, left, height, width)
    jitter: torch.Tensor | None = None  # (n, 4) brightness, contrast, saturation factors, hue shift
    order: torch.Tensor | None = None  # (n, 4) the jitter ops' order

    def slice(self, start: int, stop: int) -> Draw:
        return Draw(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[start:stop]
                       for f in fields(self)})

    def to(self, device: torch.device) -> Draw:
        return Draw(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name).to(device)
                       for f in fields(self)})


@dataclass(frozen=True)
class Augment:
    """Which augmentations to apply; the default does nothing.

    DARTS CIFAR search and training: crop 4 and flip; training adds cutout 16 (quark0/darts train.py
    --cutout_length 16). DARTS ImageNet training: resized_crop 224, flip, brightness = contrast =
    saturation = 0.4, hue 0.2; its test batches: resize 256, centre_crop 224 (`evaluation`).
    Order: padding crop, random-resized crop, resize and centre crop, flip, jitter, normalise, cutout.
    """

    crop_padding: int = 0  # pixels of zero padding before the random crop back to H x W
    flip: bool = False  # horizontal flip with p = 0.5
    cutout: int = 0  # side of the zeroed square, after normalisation; 0 = off
    resized_crop: int = 0  # output side of the random-resized crop; 0 = off
    crop_scale: tuple[float, float] = (0.08, 1.0)  # its area, as a fraction of the image's
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)  # its aspect, width / height
    brightness: float = 0.0  # factor uniform in [max(0, 1 - b), 1 + b]; 0 = off
    contrast: float = 0.0  # likewise
    saturation: float = 0.0  # likewise
    hue: float = 0.0  # shift uniform in [-hue, hue] of a turn, hue <= 0.5; 0 = off
    resize: int = 0  # evaluation: the shorter side resized to this; 0 = off
    centre_crop: int = 0  # evaluation: centre crop of this side; 0 = off

    def __post_init__(self) -> None:
        sizes = {k: getattr(self, k) for k in ("crop_padding", "cutout", "resized_crop", "resize", "centre_crop")}
        jitters = {k: getattr(self, k) for k in ("brightness", "contrast", "saturation", "hue")}
        for name, value in {**sizes, **jitters}.items():
            if not value >= 0:
                raise ConfigError(f"augmentation {name} must be >= 0, got {value!r}")
        if self.hue > 0.5:
            raise ConfigError(f"augmentation hue must be at most 0.5 (half a turn), got {self.hue}")
        (s_lo, s_hi), (r_lo, r_hi) = self.crop_scale, self.crop_ratio
        if not (0 < s_lo <= s_hi and 0 < r_lo <= r_hi):
            raise ConfigError(f"resized crop scale {self.crop_scale} and ratio {self.crop_ratio} must be "
                              "ranges (low, high) with 0 < low <= high")
        if self.resized_crop and (self.resize or self.centre_crop):
            raise ConfigError("resized_crop (training) and resize / centre_crop (evaluation) exclude each other")

    @classmethod
    def evaluation(cls, crop: int) -> Augment:
        """The test transform matching a random-resized crop of side `crop`: Resize(256) and
        CenterCrop(224) for 224, in proportion otherwise; no-op for crop 0."""
        return cls(resize=evaluation_resize(crop), centre_crop=crop) if crop else cls()

    @property
    def jitters(self) -> bool:
        return bool(self.brightness or self.contrast or self.saturation or self.hue)

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        """(H, W) of the batches made from h x w images."""
        if self.resized_crop:
            return self.resized_crop, self.resized_crop
        if self.resize:
            h, w = resized_shape(h, w, self.resize)
        if self.centre_crop:
            if self.centre_crop > min(h, w):
                raise ConfigError(f"centre crop {self.centre_crop} does not fit images of {h}x{w}"
                                  + (" after the resize" if self.resize else ""))
            return self.centre_crop, self.centre_crop
        return h, w

    def draw(self, n: int, h: int, w: int, generator: torch.Generator) -> Draw:
        """All random parameters of n samples of h x w, in a fixed order: crop, resized-crop box, flip,
        jitter, cutout (an op that is off draws nothing, so adding one keeps the others' numbers)."""
        crop_offsets = draw_crop(n, self.crop_padding, generator) if self.crop_padding else None
        box = (draw_resized_crop(n, h, w, generator, self.crop_scale, self.crop_ratio)
               if self.resized_crop else None)
        flips = draw_flip(n, generator) if self.flip else None
        factors, order = (draw_jitter(n, self.brightness, self.contrast, self.saturation, self.hue, generator)
                          if self.jitters else (None, None))
        centres = draw_cutout(n, *self.output_size(h, w), generator) if self.cutout else None
        return Draw(crop_offsets, flips, centres, box, factors, order)

    def before_normalise(self, x: torch.Tensor, draw: Draw) -> torch.Tensor:
        """uint8 (B, C, H, W) -> float32 in [0, 1] (ToTensor), with every op before Normalize."""
        if draw.crop is not None:
            x = crop(x, self.crop_padding, draw.crop)  # on uint8: a quarter of the bytes to move
        x = x.float().div_(255)
        if draw.box is not None:
            x = resized_crop(x, draw.box, self.resized_crop)
        if self.resize or self.centre_crop:
            x = resize_centre_crop(x, self.resize, self.centre_crop)
        if draw.flip is not None:
            x = flip(x, draw.flip)
        if draw.jitter is not None:
            assert draw.order is not None  # `draw` sets the factors and their order together
            x = jitter(x, draw.jitter, draw.order, hue=self.hue > 0)
        return x

    def after_normalise(self, x: torch.Tensor, draw: Draw) -> torch.Tensor:
        """Cutout on the normalised batch."""
        return x if draw.cutout is None else cut(x, self.cutout, draw.cutout)
