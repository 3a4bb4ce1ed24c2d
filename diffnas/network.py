"""Evaluation networks built from a genotype (DARTS section 3.2, quark0/darts cnn/model.py).

Three settings, each a stem followed by the same stack of cells:
- `cifar`: 3x3 conv stem (in_channels -> 3C) + BN, cells at full resolution; auxiliary head for 8x8 maps.
- `imagenet` (mobile setting): two stride-2 stems (/8 in all), the first cell reads a 2x larger s0
  (`reduction_prev=True`); auxiliary head for 7x7 maps, with no BN after its 768-channel conv as in
  the original (its parameter count depends on it); label smoothing 0.1 is the loop's business.
- `tiny-imagenet` (64x64, 200 classes): the CIFAR network with a stride-2 stem conv. 64 -> 32 puts
  the cells at CIFAR's resolutions (32, 16, 8), so compute matches CIFAR and the auxiliary head sees
  its intended 8x8 map; the ImageNet stem (/8) would leave 8x8 maps for the first cells, 2x2 after
  the reductions, which is too coarse for 64x64 images.

Cells come from `genotype.cells(layers)`, one `Cell` per position, so a per-cell genotype (global
search, DNAS) and a normal/reduce one build the same way. L cells, reductions at L/3 and 2L/3
(channels doubled there). Node i = op1(h1) + op2(h2); in a reduction cell the ops reading the cell
inputs (0, 1) have stride 2. `('none', j)` genes (FairDARTS discretisation) are the Zero op.
Drop-path zeroes each non-identity op's output (DARTS model.py `Cell`), or with drop_path_per="node"
each node's sum, identities included (FairDARTS model.py `DCOCell`, which trained its cells).

Every forward returns `(logits, logits_aux)`, logits_aux only in training mode with a head. The
drop-path probability is an argument of `forward`, never state set from outside.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .distributed import batch_mask
from .errors import ConfigError, check_choice
from .genotype import AnyGenotype, Cell, load, network_depth, validate
from .ops import FactorizedReduce, Identity, ReLUConvBN, make_op
from .supernet import check_counts


@dataclass(frozen=True)
class Setting:
    input_size: int  # nominal image side (the paper's); any size >= min_size works
    min_size: int    # smaller images are refused by the training loop (DataError)
    classes: int     # the paper's dataset
    layers: int      # cells of the paper's network
    channels: int    # its initial channels


# DARTS sec. 3.2 / A.1.2: CIFAR-10 20 cells, 36 channels; ImageNet mobile setting 14 cells, 48 channels
SETTINGS: dict[str, Setting] = {
    "cifar": Setting(32, 4, 10, 20, 36),
    "imagenet": Setting(224, 32, 1000, 14, 48),
    "tiny-imagenet": Setting(64, 8, 200, 20, 36),
}


# what a drop-path draw zeroes (EvalCell): each non-identity op's output, or each node's sum
DROP_PATH_UNITS = ("op", "node")


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples with probability drop_prob, scale the kept ones by 1/keep (quark0/darts utils.py)."""
    keep = 1.0 - drop_prob
    # under torchrun: this rank's rows of the global batch's mask (one process: empty(B, 1, 1, 1).bernoulli_)
    mask = batch_mask((x.shape[0], 1, 1, 1), keep, x)  # (B, 1, 1, 1)
    return x / keep * mask


class EvalCell(nn.Module):
    def __init__(self, cell: Cell, c_pp: int, c_p: int, c: int, reduction_prev: bool, drop_path_per: str = "op"):
        super().__init__()
        self.reduction = cell.reduction
        self.per_node = drop_path_per == "node"
        # s0 is twice the resolution of s1 after a reduction: FactorizedReduce brings it down
        self.preprocess0 = FactorizedReduce(c_pp, c) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0)
        self.ops = nn.ModuleList(make_op(name, c, 2 if cell.reduction and j < 2 else 1, search=False)
                                 for name, j in cell.genes)
        self.inputs = [j for _, j in cell.genes]
        self.concat = list(cell.concat)
        self.multiplier = len(cell.concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]  # each (B, C, H, W)
        for i in range(len(self.ops) // 2):
            node = []
            for op, j in zip(self.ops[2 * i:2 * i + 2], self.inputs[2 * i:2 * i + 2]):
                h = op(states[j])
                if self.training and drop_prob > 0 and not self.per_node and not isinstance(op, Identity):
                    h = drop_path(h, drop_prob)
                node.append(h)
            s = node[0] + node[1]
            if self.training and drop_prob > 0 and self.per_node:
                s = drop_path(s, drop_prob)
            states.append(s)
        return torch.cat([states[i] for i in self.concat], dim=1)  # (B, multiplier * C, H', W')


class AuxiliaryHead(nn.Module):
    """ReLU, 5x5 average pool, 1x1 conv 128 + BN + ReLU, 2x2 conv 768 (+ BN) + ReLU, linear.

    The pool of the original (stride 3 for CIFAR's 8x8 map, stride 2 for ImageNet's 7x7) is used
    whenever it gives a 2x2 map; for other map sizes (digits: 2x2, MNIST: 7x7, any odd input) an
    adaptive average pool to 2x2 takes its place, so the 2x2 conv always sees 2x2 and the head
    works on maps smaller than the 5x5 kernel.
    """

    def __init__(self, c: int, classes: int, pool_stride: int, bn_after_768: bool):
        super().__init__()
        self.pool_stride = pool_stride
        layers: list[nn.Module] = [nn.Conv2d(c, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(),
                                   nn.Conv2d(128, 768, 2, bias=False)]
        if bn_after_768:
            layers.append(nn.BatchNorm2d(768))
        layers.append(nn.ReLU())
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(768, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)  # not in place (the original's inplace ReLU rewrites the cell output s1)
        h, w = x.shape[-2:]
        if min(h, w) >= 5 and (h - 5) // self.pool_stride == 1 and (w - 5) // self.pool_stride == 1:
            x = F.avg_pool2d(x, 5, stride=self.pool_stride, padding=0, count_include_pad=False)
        else:
            x = F.adaptive_avg_pool2d(x, 2)
        return self.classifier(self.features(x).flatten(1))  # (B, 128, 2, 2) -> (B, 768) -> (B, classes)


class Network(nn.Module):
    """Stem(s), L cells, optional auxiliary head after cell 2L/3, global average pool, classifier."""

    def __init__(self, genotype: AnyGenotype, channels: int, classes: int, layers: int,
                 auxiliary: bool = True, in_channels: int = 3, setting: str = "cifar", drop_path_per: str = "op"):
        super().__init__()
        check_choice("setting", setting, SETTINGS)
        if drop_path_per not in DROP_PATH_UNITS:
            raise ConfigError(f"drop_path_per: expected 'op' or 'node', got {drop_path_per!r}")
        # layers -1 built a stem and a classifier without a word, 2 two reduction cells (train_config refuses both)
        check_counts(("layers", layers, 3), ("channels", channels, 2), ("classes", classes, 1),
                     ("in_channels", in_channels, 1))
        validate(genotype)
        cells = genotype.cells(layers)
        self.setting = setting
        self.layers = layers
        self.aux_position = 2 * layers // 3
        c = channels
        if setting == "imagenet":
            self.stem0 = nn.Sequential(
                nn.Conv2d(in_channels, c // 2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c // 2),
                nn.ReLU(), nn.Conv2d(c // 2, c, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c))
            self.stem1 = nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 3, stride=2, padding=1, bias=False),
                                       nn.BatchNorm2d(c))
            c_pp, c_p, reduction_prev = c, c, True
        else:
            stride = 2 if setting == "tiny-imagenet" else 1
            self.stem = nn.Sequential(nn.Conv2d(in_channels, 3 * c, 3, stride=stride, padding=1, bias=False),
                                      nn.BatchNorm2d(3 * c))
            c_pp, c_p, reduction_prev = 3 * c, 3 * c, False
        self.cells = nn.ModuleList()
        c_aux = c_p
        for k, cell in enumerate(cells):
            if cell.reduction:
                c *= 2
            evaluation_cell = EvalCell(cell, c_pp, c_p, c, reduction_prev, drop_path_per)
            self.cells.append(evaluation_cell)
            reduction_prev = cell.reduction
            c_pp, c_p = c_p, evaluation_cell.multiplier * c
            if k == self.aux_position:
                c_aux = c_p
        self.auxiliary_head = None
        if auxiliary:
            if setting == "imagenet":
                self.auxiliary_head = AuxiliaryHead(c_aux, classes, pool_stride=2, bn_after_768=False)
            else:
                self.auxiliary_head = AuxiliaryHead(c_aux, classes, pool_stride=3, bn_after_768=True)
        # the original's AvgPool2d(7) for ImageNet is this at 224x224 (7x7 maps); adaptive for other sizes
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, classes)

    def forward(self, x: torch.Tensor, drop_path: float = 0.0) -> tuple[torch.Tensor, torch.Tensor | None]:
        # x: (B, in_channels, H, W) -> logits (B, classes), logits_aux (B, classes) or None
        if self.setting == "imagenet":
            s0 = self.stem0(x)
            s1 = self.stem1(s0)
        else:
            s0 = s1 = self.stem(x)
        logits_aux = None
        for k, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, drop_path)
            if k == self.aux_position and self.auxiliary_head is not None and self.training:
                logits_aux = self.auxiliary_head(s1)
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        return logits, logits_aux


def build_network(genotype: AnyGenotype | str | os.PathLike[str], setting: str = "cifar", channels: int | None = None,
                  layers: int | None = None, classes: int | None = None, in_channels: int = 3,
                  auxiliary: bool = True, drop_path_per: str = "op") -> Network:
    """The evaluation network of `setting`; channels, layers and classes default to the setting's
    (CIFAR: 36, 20, 10; ImageNet: 48, 14, 1000), and a per-cell genotype's depth is its own cell
    count (another `layers` is a GenotypeError). drop_path_per: "op" (DARTS) or "node" (FairDARTS's
    DCOCell), see EvalCell. `genotype` may be anything `genotype.load` reads: a published name, a
    file, a search run folder, notation."""
    check_choice("setting", setting, SETTINGS)
    genotype = load(genotype)
    known = SETTINGS[setting]
    channels = known.channels if channels is None else channels
    depth = network_depth(genotype, layers)
    layers = known.layers if depth is None else depth
    if setting == "imagenet" and channels % 2:
        raise ConfigError(f"the ImageNet stem halves the channels: channels must be even, got {channels}")
    classes = known.classes if classes is None else classes
    return Network(genotype, channels, classes, layers, auxiliary, in_channels, setting, drop_path_per)
