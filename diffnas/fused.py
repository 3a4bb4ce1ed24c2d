"""The batched mixed edge: MixedOp's sum over candidate ops, with the per-channel work of the ops
done in a few wide calls instead of many narrow ones. Same parameters, same function.

A DARTS edge (C channels, 7 ops besides `none`) runs 6 ReLUs, 6 depthwise convs, 6 pointwise convs
and 8 BatchNorms over C channels each, plus pools, products and sums: about 40 small kernels, and
the BNs (C = 16: 16 thread blocks on a GPU with 132 SMs) are the largest share of GPU time. Here:

- one ReLU of the input for all ops that start with ReLU (every conv op, FactorizedReduce);
- the pointwise 1x1 convs of one stage: one call each by default, or one grouped conv / one batched
  matmul over the ops' own weights concatenated at call time (`POINTWISE`);
- one BatchNorm over the concatenated outputs per stage: BN normalises each channel on its own, so
  one call over n*C channels is the same maths as n calls over C. Each op keeps its running
  statistics in its own BN module; they are views into one flat buffer per stage, so the single
  call updates every op's buffers in place (state_dict keys and shapes are unchanged);
- the weighted sum of a stage's finished ops as one product and one sum over a (B, n, C, H, W) view.

Stages ("waves"): wave t holds stage t of every conv op with more than t stages (SepConv has 2,
DilConv 1), ordered longest first so the ops that go on are always the leading channels; the pools
(pool -> BN) and FactorizedReduce join the BN of wave 0. Depthwise convs stay one call per op: no
two DARTS candidates share kernel size and dilation (3x3, 5x5, 3x3 dilation 2, 5x5 dilation 2).

Exactness: every value is computed by the same formula; what changes is the order in which floating
point sums are accumulated (the gradient of the shared ReLU sums the ops' contributions before the
mask, the weighted sum adds in another order), so results agree to rounding, not bitwise
(tests/test_fastpath.py: outputs, gradients and running statistics in float64 and float32).
Ops the planner does not recognise (Identity, dropout after skip, user ops) run as they are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Protocol, cast

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError
from .ops import DilConv, FactorizedReduce, SepConv


class _BN(Protocol):
    """A BatchNorm2d that `_bn_ok` accepted: its running statistics exist (torch types them Optional)
    and its momentum is set."""

    running_mean: torch.Tensor
    running_var: torch.Tensor
    num_batches_tracked: torch.Tensor
    num_features: int
    momentum: float
    eps: float
    _buffers: dict[str, torch.Tensor | None]


@dataclass
class Plan:
    """How one edge's active ops are batched. It names ops by their index in MixedOp.ops and finds
    the modules at call time, so parameter swaps (functional_call) and module
    replacements (SyncBatchNorm conversion) are seen; a replaced module type turns the plan off."""

    convs: list[tuple[int, int, int]]   # (op index, psi index, stages) of the conv ops, most stages first
    extras: list[tuple[int, int]]       # (op index, psi index): pool -> BN and FactorizedReduce, BN in wave 0
    plain: list[tuple[int, int]]        # (op index, psi index) of the ops run as they are
    slots: list[int] = field(default_factory=list)  # psi index of every batched op, in output order
    waves: int = 0
    channels: int = 0                   # C of every batched op's output
    relu: bool = True                   # some batched op starts with ReLU(x)
    types: tuple = ()                   # the module types the plan was made for

    def stages(self, ops: nn.ModuleList, i: int) -> list[DilConv]:
        """The stages of conv op i: DilConvs that `_stage_ok` accepted (make_plan plans no other)."""
        op = ops[i]
        return cast("list[DilConv]", list(op) if type(op) is SepConv else [op])

    def wave_bns(self, ops: nn.ModuleList, t: int) -> list[_BN]:
        """The BN modules of wave t, in channel order (all accepted by `_bn_ok`)."""
        bns = [self.stages(ops, i)[t][3] for i, _, n in self.convs if n > t]
        if t == 0:
            bns += [cast(FactorizedReduce, ops[i]).bn if type(ops[i]) is FactorizedReduce
                    else cast(nn.Sequential, ops[i])[1] for i, _ in self.extras]
        return cast("list[_BN]", bns)

    def module_types(self, ops: nn.ModuleList) -> tuple:
        types = []
        for i, _, _ in self.convs:
            types += [type(ops[i])] + [type(m) for s in self.stages(ops, i) for m in s]
        for i, _ in self.extras:
            types += [type(m) for m in ops[i].children()]
        return tuple(types)


def _bn_ok(bn: nn.Module) -> bool:
    return (type(bn) is nn.BatchNorm2d and not bn.affine and bn.track_running_stats
            and bn.momentum is not None)


def _stage_ok(m: nn.Module) -> bool:
    """ReLU -> depthwise conv -> 1x1 conv -> BN, no biases (ops.DilConv)."""
    if type(m) is not DilConv or len(m) != 4:
        return False
    relu, dw, pw, bn = m
    return (type(relu) is nn.ReLU and type(dw) is nn.Conv2d and type(pw) is nn.Conv2d and _bn_ok(bn)
            and dw.bias is None and pw.bias is None and dw.groups == dw.in_channels == dw.out_channels
            and pw.kernel_size == (1, 1) and pw.stride == (1, 1) and pw.padding == (0, 0) and pw.groups == 1
            and isinstance(dw.padding, tuple) and dw.padding_mode == "zeros")


def _n_stages(op: nn.Module) -> int:
    if type(op) is DilConv and _stage_ok(op):
        return 1
    if type(op) is SepConv and all(_stage_ok(s) for s in op):
        return len(op)
    return 0


def make_plan(ops: nn.ModuleList, active: list[int]) -> Plan | None:
    """The batching plan of one edge, or None when nothing would be batched (then the plain sum runs)."""
    plan = Plan([], [], [])
    for i, (o, op) in enumerate(zip(active, ops)):
        n = _n_stages(op)
        if n:
            plan.convs.append((i, o, n))
        elif (type(op) is nn.Sequential and len(op) == 2 and type(op[0]) in (nn.MaxPool2d, nn.AvgPool2d)
              and _bn_ok(op[1])):
            plan.extras.append((i, o))
        elif type(op) is FactorizedReduce and _bn_ok(op.bn) and op.conv_1.bias is None and op.conv_2.bias is None:
            plan.extras.append((i, o))
        else:
            plan.plain.append((i, o))
    if len(plan.convs) + len(plan.extras) < 2:
        return None
    plan.convs.sort(key=lambda c: -c[2])  # stable: ties keep the op order
    plan.waves = max([n for _, _, n in plan.convs], default=1)
    for t in range(plan.waves):
        plan.slots += [o for _, o, n in plan.convs if n == t + 1] + ([o for _, o in plan.extras] if t == 0 else [])
    bns = [bn for t in range(plan.waves) for bn in plan.wave_bns(ops, t)]
    if len({(bn.num_features, bn.eps, bn.momentum) for bn in bns}) != 1:
        return None
    plan.channels = bns[0].num_features
    plan.relu = bool(plan.convs) or any(type(ops[i]) is FactorizedReduce for i, _ in plan.extras)
    plan.types = plan.module_types(ops)
    return plan


class FlatStats:
    """The running statistics of one wave's BNs as views into one flat buffer per statistic."""

    def __init__(self, bns: list[_BN]):
        self.link(bns)

    def link(self, bns: list[_BN]) -> None:
        """(Re)build the flat buffers from the modules' current buffers and point the modules at them."""
        with torch.no_grad():
            self.mean = torch.cat([bn.running_mean for bn in bns])
            self.var = torch.cat([bn.running_var for bn in bns])
            self.count = torch.cat([bn.num_batches_tracked.reshape(1) for bn in bns])
        c = bns[0].num_features
        for i, bn in enumerate(bns):
            bn._buffers["running_mean"] = self.mean[i * c:(i + 1) * c]
            bn._buffers["running_var"] = self.var[i * c:(i + 1) * c]
            bn._buffers["num_batches_tracked"] = self.count[i].view(())   # 0-dim, as BatchNorm's own
        self.views = [(bn.running_mean, bn.running_var, bn.num_batches_tracked) for bn in bns]

    def linked(self, bns: list[_BN]) -> bool:
        """False when something replaced a module's buffer (assign-loading, functional_call with
        buffers, a grouped forward's fresh buffers); then this wave's BN goes through the modules'."""
        return all(bn.running_mean is m and bn.running_var is v and bn.num_batches_tracked is n
                   for bn, (m, v, n) in zip(bns, self.views))

    def batch_norm(self, x: torch.Tensor, bns: list[_BN], training: bool) -> torch.Tensor:
        bn = bns[0]
        if _compiling() or self.linked(bns):
            y = F.batch_norm(x, self.mean, self.var, None, None, training, bn.momentum, bn.eps)
            if training:
                self.count.add_(1)
            return y
        mean = torch.cat([b.running_mean for b in bns])
        var = torch.cat([b.running_var for b in bns])
        y = F.batch_norm(x, mean, var, None, None, training, bn.momentum, bn.eps)
        if training:
            c = bn.num_features
            with torch.no_grad():
                for i, b in enumerate(bns):
                    b.running_mean.copy_(mean[i * c:(i + 1) * c])
                    b.running_var.copy_(var[i * c:(i + 1) * c])
                    b.num_batches_tracked.add_(1)
        return y


# chosen once here: a hasattr() inside traced code broke torch 2.2's graph (dynamo could not trace it)
_compiling = getattr(getattr(torch, "compiler", None), "is_compiling", None) or torch._dynamo.is_compiling


# How the 1x1 convs of one wave run: "separate" (one conv each; measured fastest on CPU, where a
# grouped 1x1 conv's backward was 1.2-3.7x slower), "grouped" (one grouped conv over the
# concatenation) or "matmul" (one batched matmul). All three are the same maths; which is fastest on
# a GPU is to be measured there (benchmarks/NOTES.md). DIFFNAS_POINTWISE overrides the default.
POINTWISE = os.environ.get("DIFFNAS_POINTWISE", "separate")
POINTWISE_MODES = ("separate", "grouped", "matmul")


def check_pointwise() -> None:
    """ConfigError for a $DIFFNAS_POINTWISE the batched edges do not know: said when a run that uses
    them starts (`tuning.fused_edges`), not in the middle of its first forward."""
    if POINTWISE not in POINTWISE_MODES:
        raise ConfigError(f"DIFFNAS_POINTWISE: {POINTWISE!r} is not one of {', '.join(POINTWISE_MODES)}")


def _pointwise(hs: list[torch.Tensor], convs: list[nn.Conv2d]) -> list[torch.Tensor]:
    """The 1x1 convs of several ops, each on its own input: tensors to concatenate along channels."""
    if len(hs) == 1 or POINTWISE == "separate":
        return [F.conv2d(h, c.weight) for h, c in zip(hs, convs)]
    if POINTWISE == "grouped":
        return [F.conv2d(torch.cat(hs, dim=1), torch.cat([c.weight for c in convs]), groups=len(hs))]
    if POINTWISE == "matmul":
        b, c_in, h, w = hs[0].shape
        x = torch.stack(hs, dim=1).view(b, len(hs), c_in, h * w)                 # (B, n, C_in, HW)
        weight = torch.stack([c.weight.view(c.weight.shape[0], c_in) for c in convs])  # (n, C_out, C_in)
        return [torch.matmul(weight, x).view(b, -1, h, w)]                      # (B, n*C_out, H, W)
    raise ValueError(f"DIFFNAS_POINTWISE: {POINTWISE!r} is not one of {', '.join(POINTWISE_MODES)}")


def _weighted(y: torch.Tensor, p: torch.Tensor, c: int) -> torch.Tensor:
    """sum_j p[j] * y[:, j*C:(j+1)*C] for y of (B, n*C, H, W): (B, C, H, W)."""
    n = p.shape[0]
    if n == 1:
        return p[0].to(y.dtype) * y
    return (y.unflatten(1, (n, c)) * p.to(y.dtype).view(1, n, 1, 1, 1)).sum(1)


def edge_forward(plan: Plan, stats: list[FlatStats], ops: nn.ModuleList, slots: torch.Tensor, x: torch.Tensor,
                 psi: torch.Tensor, training: bool) -> torch.Tensor | None:
    """sum_o psi[o] * op_o(x) over the active ops; x (B, C, H, W), psi (O,). None when the ops'
    module types are no longer those of the plan (the caller then runs the plain sum)."""
    if not _compiling() and plan.module_types(ops) != plan.types:
        return None
    c = plan.channels
    p = psi.index_select(0, slots)  # psi of the batched ops, in output order
    r = F.relu(x) if plan.relu else x  # the first ReLU of every conv op and of FactorizedReduce
    out: torch.Tensor | None = None
    used = 0
    inp = r
    for t, wave in enumerate(stats):
        members = [plan.stages(ops, i)[t] for i, _, n in plan.convs if n > t]
        going_on = sum(n > t + 1 for _, _, n in plan.convs)
        parts = []
        if members:
            hs = []
            for j, stage in enumerate(members):
                dw = cast(nn.Conv2d, stage[1])  # ReLU -> depthwise -> 1x1 -> BN (`_stage_ok`)
                h = inp if t == 0 else inp[:, j * c:(j + 1) * c]
                hs.append(F.conv2d(h, dw.weight, None, dw.stride, dw.padding, dw.dilation, dw.groups))
            parts += _pointwise(hs, [cast(nn.Conv2d, s[2]) for s in members])
        if t == 0:
            for i, _ in plan.extras:
                m = ops[i]
                if type(m) is FactorizedReduce:
                    parts += m.halves(r)
                else:
                    parts.append(cast(nn.Sequential, m)[0](x))  # pool -> BN
        y = wave.batch_norm(parts[0] if len(parts) == 1 else torch.cat(parts, dim=1), plan.wave_bns(ops, t),
                            training)
        n_done = y.shape[1] // c - going_on
        if n_done:
            term = _weighted(y[:, going_on * c:] if going_on else y, p[used:used + n_done], c)
            used += n_done
            out = term if out is None else out + term
        if going_on:
            inp = F.relu(y[:, :going_on * c])
    for i, o in plan.plain:
        term = psi[o] * ops[i](x)
        out = term if out is None else out + term
    return out
