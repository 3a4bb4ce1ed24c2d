"""The search network (DARTS section 2.1, quark0/darts cnn/model_search.py).

The supernet holds the weights w only. The architecture weights arrive as an argument:
`supernet(x, psi)` with psi of shape (L, E, O), one row of op weights per edge of every cell, already
activated by the parametrisation (softmax, sigmoid, edge normalisation, DNAS decoupling), so every
method runs the same network. Partial channels (PC-DARTS) are a property of the edges; the edge
factor of edge normalisation (`edge`, (L, E), arch.Arch.edge_weights) weights the channels that
bypass the ops, as PC-DARTS weights an edge's whole output.
"""

from __future__ import annotations

import numbers
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from . import fused as fused_lib
from .genotype import reduction_layers
from .ops import PRIMITIVES, FactorizedReduce, Identity, ReLUConvBN, check_op_set, make_op


def edge_count(nodes: int) -> int:
    """Edges of a cell of `nodes` intermediate nodes (node i takes i + 2 inputs), counted, not listed:
    1e5 nodes would list 5e9 of them."""
    return nodes * (nodes + 3) // 2


def edge_list(nodes: int) -> list[tuple[int, int]]:
    """(source, destination) per edge, node by node; node i is state i + 2."""
    return [(j, i + 2) for i in range(nodes) for j in range(i + 2)]


def check_counts(*sizes: tuple[str, object, int]) -> None:
    """A one-line ConfigError for the first (name, value, least) whose value is no integer (Python's or
    numpy's, a sweep's np.int64; not a bool) of at least `least`."""
    from .errors import ConfigError

    for name, value, least in sizes:
        if not _count(value) or value < least:   # type: ignore[operator]
            raise ConfigError(f"{name}: must be an int >= {least}, got {value!r}")


def _count(value: object) -> bool:
    """An integer as a size: Python's or numpy's (a sweep's np.int64), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_space(layers: int, nodes: int, ops: Sequence[str], reductions: Optional[Sequence[int]] = None,
                min_layers: int = 1) -> None:
    """A one-line ConfigError for a search space the supernet or the architecture parameters cannot
    have: cells (at least `min_layers`), intermediate nodes (at least 1), the op set (ops.check_op_set),
    and reduction cells among the layers, each once."""
    from .errors import ConfigError

    check_counts(("layers", layers, min_layers), ("nodes", nodes, 1))
    check_op_set(ops)
    if reductions is not None:
        bad = [r for r in reductions if not _count(r) or not 0 <= r < layers]
        if bad or len(set(reductions)) != len(reductions):
            raise ConfigError(f"reductions: expected distinct layer indices in 0..{layers - 1}, got "
                              f"{list(reductions)!r}")


# candidate ops a supernet may hold (layers x edges x ops): the paper's holds 8 x 14 x 8 = 896, a 20-cell
# search of 7 nodes 20 x 35 x 7 = 4,900; past this, building it alone takes many minutes
MAX_CANDIDATE_OPS = 100_000


def check_size(layers: int, nodes: int, ops: int) -> None:
    """A one-line ConfigError for a supernet of more than MAX_CANDIDATE_OPS candidate ops, before it is built."""
    edges = edge_count(nodes)
    count = layers * edges * ops
    if count > MAX_CANDIDATE_OPS:
        from .errors import ConfigError

        raise ConfigError(f"layers, nodes, ops: a supernet of {layers} cells x {edges} edges x {ops} "
                          f"ops = {count:,} candidate ops is beyond {MAX_CANDIDATE_OPS:,} (DARTS's: 8 x 14 x 8 = 896); "
                          f"fewer cells, nodes or ops")


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    # (B, C, H, W) -> (B, g, C/g, H, W) -> swap -> (B, C, H, W)  (PC-DARTS model_search.py)
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class MixedOp(nn.Module):
    """sum_o psi_o * op_o(x) over the candidate ops of one edge.

    With partial channels K > 1 (PC-DARTS), only the first C/K channels (B, C/K, H, W) go through
    the ops; the other (B, C - C/K, H, W) bypass them (max-pooled 2x2 at stride 2), are concatenated
    after, and the channels are shuffled in K groups. With an edge factor b (edge normalisation),
    psi = b * (op weights) already weights the ops' channels, and the bypassed ones are multiplied
    by b: the edge's output is b * shuffle(cat(sum_o w_o op_o(x1), x2)) as in PC-DARTS
    (model_search.py Cell.forward, `weights2[offset + j] * self._ops[offset + j](h, ...)`). `none`
    contributes exactly zero, so it is not computed (its psi still enters the softmax/sigmoid of the
    parametrisation).
    """

    slots: torch.Tensor  # a buffer (register_buffer), typed for the checker: Module.__getattr__ says Tensor | Module

    def __init__(self, channels: int, stride: int, ops: Sequence[str], partial: int = 1,
                 skip_dropout: float = 0.0, fused: bool = True):
        super().__init__()
        self.partial = partial
        self.stride = stride
        inner = channels // partial
        self.names = list(ops)
        self.active = [o for o, name in enumerate(ops) if name != "none"]
        self.ops = nn.ModuleList()
        for o in self.active:
            op = make_op(ops[o], inner, stride, search=True)
            if skip_dropout > 0 and isinstance(op, Identity):
                # P-DARTS / DNAS: dropout after the parameter-free skip in the search network; at a constant
                # rate (P-DARTS's train_search.py lowers its rate every epoch, exponentially after warm-up)
                op = nn.Sequential(op, nn.Dropout(skip_dropout))
            self.ops.append(op)
        # ceil_mode: odd sizes line up with the strided ops; identical to the original on even sizes
        self.bypass_pool = nn.MaxPool2d(2, 2, ceil_mode=True) if partial > 1 and stride == 2 else None
        # the batched edge (diffnas.fused): same parameters and function, fewer and wider calls; the
        # BN running statistics of each stage live in one flat buffer, the op modules hold views of it
        self.fused = fused
        self.plan = fused_lib.make_plan(self.ops, self.active)
        self.stats = ([fused_lib.FlatStats(self.plan.wave_bns(self.ops, t)) for t in range(self.plan.waves)]
                      if self.plan else [])
        self.register_buffer("slots", torch.tensor(self.plan.slots if self.plan else [], dtype=torch.long),
                             persistent=False)

    def _apply(self, *args, **kwargs):
        # .to() / .cuda() / .double() give every buffer a new tensor: rebuild the flat statistics
        out = super()._apply(*args, **kwargs)
        for t, stats in enumerate(self.stats):
            stats.link(self.plan.wave_bns(self.ops, t))
        return out

    def _ops(self, x: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        if self.fused and self.plan is not None:
            out = fused_lib.edge_forward(self.plan, self.stats, self.ops, self.slots, x, psi, self.training)
            if out is not None:
                return out
        return sum(psi[o] * op(x) for o, op in zip(self.active, self.ops))

    def forward(self, x: torch.Tensor, psi: torch.Tensor, edge: Optional[torch.Tensor] = None) -> torch.Tensor:
        # psi: (O,); edge: () or None
        if self.partial == 1:
            return self._ops(x, psi)
        k = x.shape[1] // self.partial
        part, rest = x[:, :k], x[:, k:]
        out = self._ops(part, psi)
        if self.bypass_pool is not None:
            rest = self.bypass_pool(rest)
        if edge is not None:
            rest = edge * rest
        return channel_shuffle(torch.cat([out, rest], dim=1), self.partial)


class SearchCell(nn.Module):
    """Two inputs (previous two cells, preprocessed), N nodes each summing its mixed edges from all
    earlier states, output = concatenation of the N nodes."""

    def __init__(self, nodes: int, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool,
                 ops: Sequence[str], partial: int = 1, skip_dropout: float = 0.0, fused: bool = True):
        super().__init__()
        self.nodes = nodes
        self.reduction = reduction
        # BN without affine weights in the search network (model_search.py Cell)
        self.preprocess0 = (FactorizedReduce(c_pp, c, affine=False) if reduction_prev
                            else ReLUConvBN(c_pp, c, 1, 1, 0, affine=False))
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0, affine=False)
        self.edges = nn.ModuleList(
            MixedOp(c, 2 if reduction and src < 2 else 1, ops, partial, skip_dropout, fused)
            for src, _ in edge_list(nodes))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, psi: torch.Tensor,
                edge: Optional[torch.Tensor] = None) -> torch.Tensor:
        # psi: (E, O); edge: (E,) or None
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        e = 0
        for i in range(self.nodes):
            states.append(sum(self.edges[e + j](h, psi[e + j], None if edge is None else edge[e + j])
                              for j, h in enumerate(states)))
            e += len(states) - 1
        return torch.cat(states[2:], dim=1)


class Supernet(nn.Module):
    """Stem (3x3 conv to stem_multiplier*C channels, BN), L cells with reductions at L/3 and 2L/3
    (channels doubled there), global average pooling, linear classifier.

    fused: batched edges (diffnas.fused), the same function and parameters as the plain per-op sum;
    `set_fused(False)` switches back. `compiled` is set by diffnas.fastpath on CUDA. built: called
    with each cell's index once it is built (a progress bar: a supernet of hundreds of cells takes minutes).
    """

    def __init__(self, channels: int = 16, classes: int = 10, layers: int = 8, nodes: int = 4,
                 ops: Sequence[str] = PRIMITIVES, in_channels: int = 3, stem_multiplier: int = 3,
                 partial: int = 1, skip_dropout: float = 0.0, fused: bool = True,
                 built: Optional[Callable[[int], None]] = None):
        super().__init__()
        # a bad size or an unknown op fails here, named, not in the first cell's make_op or the first forward
        check_space(layers, nodes, ops, min_layers=3)   # reductions at L/3 and 2L/3 (DARTS model_search.py)
        check_size(layers, nodes, len(ops))
        check_counts(("channels", channels, 2), ("classes", classes, 1), ("in_channels", in_channels, 1),
                     ("stem_multiplier", stem_multiplier, 1), ("partial", partial, 1))
        if channels % partial:
            from .errors import ConfigError

            raise ConfigError(f"partial: {partial} must divide channels ({channels})")
        self.ops = tuple(ops)
        self.layers = layers
        self.nodes = nodes
        self.edges = edge_list(nodes)
        self.reductions = sorted(reduction_layers(layers))
        c_curr = stem_multiplier * channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, channels
        self.cells = nn.ModuleList()
        reduction_prev = False
        for k in range(layers):
            reduction = k in self.reductions
            if reduction:
                c_curr *= 2
            self.cells.append(SearchCell(nodes, c_pp, c_p, c_curr, reduction, reduction_prev, ops,
                                         partial, skip_dropout, fused))
            if built is not None:   # a progress report: building takes ~0.2 s a default cell on a CPU core
                built(k)
            reduction_prev = reduction
            c_pp, c_p = c_p, nodes * c_curr
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, classes)
        self.compiled: Optional[Callable[..., torch.Tensor]] = None

    def set_fused(self, fused: bool) -> "Supernet":
        """Batched edges on (the default) or the plain per-op sum: the same function either way."""
        for m in self.modules():
            if isinstance(m, MixedOp):
                m.fused = fused
        return self

    def forward(self, x: torch.Tensor, psi: torch.Tensor, edge: Optional[torch.Tensor] = None) -> torch.Tensor:
        # x: (B, in_channels, H, W); psi: (L, E, O); edge: (L, E) or None -> logits (B, classes)
        want = (self.layers, len(self.edges), len(self.ops))
        if tuple(psi.shape) != want or (edge is not None and tuple(edge.shape) != want[:2]):
            # an arch built for other sizes would be read in part (indexing clips nothing, it just reads less)
            got = f"psi {tuple(psi.shape)}" + ("" if edge is None else f", edge {tuple(edge.shape)}")
            raise ValueError(f"architecture weights of shape {got} do not fit this supernet: psi (layers, edges, "
                             f"ops) = {want} and edge (layers, edges) = {want[:2]} ({self.layers} cells, "
                             f"{self.nodes} nodes, {len(self.ops)} ops)")
        if self.compiled is not None and self.training and torch.is_grad_enabled():
            return self.compiled(x, psi, edge)   # diffnas.fastpath: torch.compile of `body`, training steps only
        return self.body(x, psi, edge)

    def body(self, x: torch.Tensor, psi: torch.Tensor, edge: Optional[torch.Tensor] = None) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for k, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, psi[k], None if edge is None else edge[k])
        return self.classifier(self.pool(s1).flatten(1))
