"""Candidate operations of the DARTS cell search space and the OPS registry.

Every definition follows the released DARTS code (quark0/darts, cnn/operations.py) and the paper
(Liu et al., ICLR 2019, section 3.1): separable convolutions are applied twice, dilated ones once,
every conv is preceded by ReLU and followed by BatchNorm, and `skip_connect` at stride 2 is a
factorized reduce. `affine=False` is what the search network uses, `affine=True` the evaluation one.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

# The order of the released code: alpha columns follow it (quark0/darts cnn/genotypes.py).
PRIMITIVES: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)

# ops without weights; a genotype made mostly of them is the known DARTS collapse
PARAMETER_FREE: frozenset[str] = frozenset({"none", "max_pool_3x3", "avg_pool_3x3", "skip_connect"})


class ReLUConvBN(nn.Sequential):
    """ReLU -> conv -> BN: the cell preprocessing (1x1) of the original."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU -> depthwise dilated conv -> pointwise conv -> BN, applied once."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int,
                 affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=padding, dilation=dilation,
                      groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two stacked (ReLU -> depthwise conv -> pointwise conv -> BN); only the first has the stride."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True):
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, 1, affine),
            DilConv(c_in, c_out, kernel, 1, padding, 1, affine),
        )


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """The `none` op: a zero tensor of the output shape."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halves the resolution with two 1x1 convs, one over the even pixels and one over the odd ones
    (the original's two stride-2 1x1 convs, the second shifted by one pixel).

    Shapes: (B, c_in, H, W) -> (B, c_out, H/2, W/2); each conv gives c_out/2 channels.

    A 1x1 conv at stride 2 reads exactly the pixels x[:, :, ::2, ::2], so the stride is taken by
    slicing and the convs run at stride 1: the same function and parameters as the original's
    stride-2 convs. The reason: torch 2.13's CPU convolution corrupts the heap in the weight gradient
    of a stride-2 1x1 conv with at most 4 input channels in channels_last layout (a process abort,
    not an exception; benchmarks/NOTES.md), which PC-DARTS edges and few-channel searches hit.
    """

    def __init__(self, c_in: int, c_out: int, affine: bool = True):
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def halves(self, r: torch.Tensor) -> list[torch.Tensor]:
        """The two convs' outputs for the ReLU'd input r: even pixels, and odd pixels (the original's
        shifted branch, zero-padded at the end for odd sizes so that both halves line up)."""
        even, odd = r[:, :, ::2, ::2], r[:, :, 1::2, 1::2]
        if odd.shape[2:] != even.shape[2:]:
            odd = nn.functional.pad(odd, (0, even.shape[3] - odd.shape[3], 0, even.shape[2] - odd.shape[2]))
        return [self.conv_1(even), self.conv_2(odd)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(torch.cat(self.halves(self.relu(x)), dim=1))


OpFactory = Callable[[int, int, bool], nn.Module]

# name -> factory(C, stride, affine); operations.py of the original, same paddings and dilations
OPS: dict[str, OpFactory] = {
    "none": lambda c, stride, affine: Zero(stride),
    "avg_pool_3x3": lambda c, stride, affine: nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False),
    "max_pool_3x3": lambda c, stride, affine: nn.MaxPool2d(3, stride=stride, padding=1),
    "skip_connect": lambda c, stride, affine: Identity() if stride == 1 else FactorizedReduce(c, c, affine),
    "sep_conv_3x3": lambda c, stride, affine: SepConv(c, c, 3, stride, 1, affine),
    "sep_conv_5x5": lambda c, stride, affine: SepConv(c, c, 5, stride, 2, affine),
    "sep_conv_7x7": lambda c, stride, affine: SepConv(c, c, 7, stride, 3, affine),
    "dil_conv_3x3": lambda c, stride, affine: DilConv(c, c, 3, stride, 2, 2, affine),
    "dil_conv_5x5": lambda c, stride, affine: DilConv(c, c, 5, stride, 4, 2, affine),
}


def check_ops(names: Sequence[str], where: str = "op set") -> None:
    """Raise a one-line error for unknown op names (with the closest known name, `errors.suggest`)."""
    from .errors import ConfigError, suggest

    for name in names:
        if name not in OPS:
            raise ConfigError(f"{where}: unknown op {name!r}{suggest(name, OPS)}; known ops: {', '.join(OPS)} (an "
                              f"op added to diffnas.ops.OPS is known only to the process that added it)")


def check_op_set(ops: Sequence[str]) -> None:
    """The candidate ops of a search: known, each once, at least one besides `none` (which only scales
    to zero); a one-line ConfigError naming `ops` otherwise."""
    from .errors import ConfigError

    if isinstance(ops, str):   # "sep_conv_3x3" would be read as its letters
        raise ConfigError(f"ops: expected a list of op names, got the string {ops!r} ([{ops!r}] for one op)")
    if not ops:
        from .notices import on_command_line

        listed = ("ops, comma-separated (default: " + ",".join(PRIMITIVES) if on_command_line()
                  else f"ops (default: {PRIMITIVES!r}")
        raise ConfigError(f"ops: the list is empty; name the candidate {listed})")
    check_ops(ops, "ops")
    twice = sorted({op for op in ops if list(ops).count(op) > 1})
    if twice:
        raise ConfigError(f"ops: an op is listed twice ({', '.join(twice)})")
    if all(op == "none" for op in ops):
        raise ConfigError("ops: needs at least one op besides 'none' (a cell of only 'none' computes nothing)")


def make_op(name: str, channels: int, stride: int, search: bool) -> nn.Module:
    """Build one candidate op. The search network uses BN without affine weights and puts a BN after
    pooling (quark0/darts cnn/model_search.py, MixedOp); the evaluation network uses affine BN."""
    op = OPS[name](channels, stride, not search)
    if search and "pool" in name:
        op = nn.Sequential(op, nn.BatchNorm2d(channels, affine=False))
    return op
