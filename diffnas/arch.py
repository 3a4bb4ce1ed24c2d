"""Architecture parametrisations: how alpha becomes the op weights psi (L, E, O) of the supernet.

Each is an nn.Module that owns its architecture parameters and nothing else, so the weight and
architecture optimisers get disjoint parameter sets by construction. Initial values are 1e-3 *
randn, as the original (quark0/darts model_search.py `_initialize_alphas`; the paper's A.1.1 says "zero
initialization", which the code's 1e-3 scale nearly is), except FairDARTS's zeros.

| name | parameters | psi[k, e, o] | discretisation |
| --- | --- | --- | --- |
| softmax (DARTS) | alpha_normal, alpha_reduce (E, O) | softmax_o(alpha_cell(k))[e, o] | top-2 |
| sigmoid (FairDARTS) | same | sigmoid(alpha_cell(k))[e, o] | threshold, <= 2 inputs, empty nodes left out |
| pc (PC-DARTS) | + beta_normal, beta_reduce (E,) | softmax over node's inputs(beta)[e] * softmax_o(alpha)[e, o] | top-2 on the product |
| global | alpha (L, E, O) | softmax_o(alpha[k])[e, o] | top-2 per layer |
| dnas (DNAS) | alpha (E, O), beta (L, E), gamma (L, O) | sigmoid(alpha[e, o]) * softmax_e(beta[k])[e] * sigmoid(gamma[k, o]) | top-2 per layer |

The edge factor weights the whole output of an edge: pc's softmax of beta over a node's incoming
edges, as PC-DARTS does (yuhuixu1993/PC-DARTS model_search.py Cell.forward: `weights2[e] *
MixedOp(h)`), and dnas's connection factor softmax_i(beta[k, :]) (over all E edges of layer k, so
~1/E each at the start), which diffnas applies the same way: it is the connection's weight, and under
PC-DARTS's partial channels the connection's bypassed channels are part of its output. psi carries
the factor for the channels that go through the ops, and `edge_weights()` gives it (L, E) for the
channels that bypass them. The other parametrisations have none.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torch import nn

from .discretise import threshold_cell, top2_cell
from .errors import check_choice
from .genotype import AnyGenotype, Cell, CellwiseGenotype, Genotype
from .supernet import check_size, check_space, edge_count, edge_list


def _init(*shape: int) -> nn.Parameter:
    return nn.Parameter(1e-3 * torch.randn(*shape))


def zero_one_loss(probabilities: torch.Tensor) -> torch.Tensor:
    """FairDARTS zero-one loss: mean(-(p - 0.5)^2), smallest when every p is 0 or 1
    (xiaomi-automl/FairDARTS separate_loss.py: -mse_loss(sigmoid(alpha), 0.5))."""
    return -((probabilities - 0.5) ** 2).mean()


def node_softmax(beta: torch.Tensor, nodes: int) -> torch.Tensor:
    """Softmax of edge logits (..., E) over each node's incoming edges (PC-DARTS edge normalisation)."""
    parts, start = [], 0
    for i in range(nodes):
        parts.append(torch.softmax(beta[..., start:start + i + 2], dim=-1))
        start += i + 2
    return torch.cat(parts, dim=-1)


class Arch(nn.Module):
    """Base: knows the space's shape (layers, nodes, ops, which cells reduce)."""

    cellwise = False  # True: every cell has its own architecture (global search)
    edge_factor = False  # True: psi holds a factor on each edge's whole output (`edge_weights`)
    kinds: torch.Tensor  # a buffer (register_buffer), typed for the checker: Module.__getattr__ says Tensor | Module

    def __init__(self, layers: int, nodes: int, ops: Sequence[str], reductions: Sequence[int],
                 zero_one_weight: float = 0.0, threshold: float = 0.85) -> None:
        super().__init__()
        check_space(layers, nodes, ops, reductions)
        check_size(layers, nodes, len(ops))
        self.layers, self.nodes, self.ops = layers, nodes, tuple(ops)
        self.edges = edge_count(nodes)
        self.reductions = tuple(sorted(reductions))
        self.zero_one_weight = zero_one_weight
        self.threshold = threshold
        # which cell type each layer uses: 0 normal, 1 reduction
        kinds = torch.tensor([int(k in self.reductions) for k in range(layers)])
        self.register_buffer("kinds", kinds, persistent=False)
        self.make_parameters()

    def make_parameters(self) -> None:
        """Create the parametrisation's tensors (each subclass its own), once the sizes are set."""

    def record(self, history: Optional[torch.Tensor] = None) -> dict[str, Any]:
        """What a search's alphas.pt holds and `plots.heatmap_figure` / `evolution_figure` draw: the ops,
        the edges (source, destination state), the reduction cells, whether the cells share one
        architecture, and psi's `history` (T, L, E, O: the start, then each epoch); default: psi now, as
        the one entry, marked so ("when": "now": the figures' titles say so, not "start")."""
        record = {"ops": list(self.ops), "edges": [list(e) for e in edge_list(self.nodes)],
                  "reductions": list(self.reductions), "shared": not self.cellwise, "history": history}
        if history is None:
            with torch.no_grad():
                record["history"] = self.weights().detach().float().cpu().unsqueeze(0)
            record["when"] = "now"
        return record

    def weights(self) -> torch.Tensor:
        """psi: (L, E, O)."""
        raise NotImplementedError

    def edge_weights(self) -> Optional[torch.Tensor]:
        """The factor on each edge's whole output (L, E), already inside psi; None when there is none.
        The supernet applies it to the channels that bypass the ops under partial channels."""
        return None

    def forward(self) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        # (psi, edge weights), what the supernet takes: lets torch.func.functional_call evaluate them
        # at other alpha values
        return self.weights(), self.edge_weights()

    def probabilities(self) -> torch.Tensor:
        """The sigmoid outputs the zero-one loss pushes to 0 or 1 (empty when not sigmoid-based)."""
        return torch.zeros(0, device=self.kinds.device)

    def regularizer(self) -> torch.Tensor:
        """The zero-one loss term of the architecture objective (FairDARTS): the bilevel step adds its
        gradient to alpha's hypergradient (step.arch_gradient); one-level adds the term to the training loss."""
        p = self.probabilities()
        if self.zero_one_weight == 0 or p.numel() == 0:
            return torch.zeros((), device=self.kinds.device)
        return self.zero_one_weight * zero_one_loss(p)

    def _cell(self, psi: torch.Tensor, reduction: bool) -> Cell:
        return top2_cell(psi, self.ops, self.nodes, reduction)

    def genotype(self) -> AnyGenotype:
        psi = self.weights().detach()
        if self.cellwise:
            return CellwiseGenotype(tuple(self._cell(psi[k], k in self.reductions) for k in range(self.layers)))
        normal = self._cell(psi[self._first(False)], False)
        reduce = self._cell(psi[self._first(True)], True)
        return Genotype(normal.genes, normal.concat, reduce.genes, reduce.concat)

    def _first(self, reduction: bool) -> int:
        return next(k for k in range(self.layers) if (k in self.reductions) == reduction)


class SoftmaxArch(Arch):
    """DARTS: one alpha per cell type, softmax over ops."""

    def make_parameters(self) -> None:
        self.alpha_normal = _init(self.edges, len(self.ops))
        self.alpha_reduce = _init(self.edges, len(self.ops))

    def activate(self, alpha: torch.Tensor) -> torch.Tensor:
        return torch.softmax(alpha, dim=-1)

    def weights(self) -> torch.Tensor:
        per_kind = torch.stack([self.activate(self.alpha_normal), self.activate(self.alpha_reduce)])
        return per_kind[self.kinds]  # (L, E, O)


class SigmoidArch(SoftmaxArch):
    """FairDARTS: independent sigmoid per op; zero-one loss; threshold discretisation. Alpha starts
    at zero, every sigmoid at 0.5 (xiaomi-automl/FairDARTS model_search.py `_initialize_alphas`)."""

    def make_parameters(self) -> None:
        super().make_parameters()
        with torch.no_grad():
            self.alpha_normal.zero_()
            self.alpha_reduce.zero_()

    def activate(self, alpha: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(alpha)

    def probabilities(self) -> torch.Tensor:
        return torch.sigmoid(torch.cat([self.alpha_normal, self.alpha_reduce]))

    def _cell(self, psi: torch.Tensor, reduction: bool) -> Cell:
        return threshold_cell(psi, self.ops, self.nodes, self.threshold, reduction)


class EdgeNormArch(SoftmaxArch):
    """PC-DARTS: softmax alpha times a per-node softmax over incoming edges (beta)."""

    edge_factor = True

    def make_parameters(self) -> None:
        super().make_parameters()   # alpha drawn before beta: a seed gives the alpha SoftmaxArch gives
        self.beta_normal = _init(self.edges)
        self.beta_reduce = _init(self.edges)

    def weights(self) -> torch.Tensor:
        ops = torch.stack([torch.softmax(self.alpha_normal, -1), torch.softmax(self.alpha_reduce, -1)])
        return (self._edges().unsqueeze(-1) * ops)[self.kinds]

    def edge_weights(self) -> torch.Tensor:
        return self._edges()[self.kinds]

    def _edges(self) -> torch.Tensor:   # (2, E): per cell type
        return node_softmax(torch.stack([self.beta_normal, self.beta_reduce]), self.nodes)


class GlobalArch(Arch):
    """The DNAS tables' "global" baseline: a full (L, E, O) alpha, softmax over ops per layer."""

    cellwise = True

    def make_parameters(self) -> None:
        self.alpha = _init(self.layers, self.edges, len(self.ops))

    def weights(self) -> torch.Tensor:
        return torch.softmax(self.alpha, dim=-1)


class DecoupledArch(Arch):
    """DNAS: psi[k, i, j] = sigmoid(alpha[i, j]) * softmax_i(beta[k, :])[i] * sigmoid(gamma[k, j]),
    alpha (E, O) connection-op, beta (L, E) layer-connection, gamma (L, O) layer-op:
    L*E + L*O + E*O parameters instead of L*E*O."""

    cellwise = True
    edge_factor = True

    def make_parameters(self) -> None:
        self.alpha = _init(self.edges, len(self.ops))
        self.beta = _init(self.layers, self.edges)
        self.gamma = _init(self.layers, len(self.ops))

    def weights(self) -> torch.Tensor:
        a = torch.sigmoid(self.alpha).unsqueeze(0)               # (1, E, O)
        b = self.edge_weights().unsqueeze(-1)                    # (L, E, 1)
        g = torch.sigmoid(self.gamma).unsqueeze(1)               # (L, 1, O)
        return a * b * g

    def edge_weights(self) -> torch.Tensor:
        return torch.softmax(self.beta, dim=-1)                  # (L, E): softmax_i(beta[k, :])

    def probabilities(self) -> torch.Tensor:
        return torch.sigmoid(torch.cat([self.alpha.flatten(), self.gamma.flatten()]))


ARCHS: dict[str, type[Arch]] = {
    "softmax": SoftmaxArch,
    "sigmoid": SigmoidArch,
    "pc": EdgeNormArch,
    "global": GlobalArch,
    "dnas": DecoupledArch,
}


def build(name: str, layers: int, nodes: int, ops: Sequence[str], reductions: Sequence[int],
          zero_one_weight: float = 0.0, threshold: float = 0.85) -> Arch:
    """The architecture parameters `name` (softmax | sigmoid | pc | global | dnas, ARCHS) of a supernet
    of `layers` cells with `nodes` nodes, candidate `ops` and reduction cells at `reductions`
    (`Supernet.reductions`). `weights()` gives psi (layers, edges, ops); calling it gives (psi, edge
    weights or None), what `Supernet.forward` takes after the images. zero_one_weight: FairDARTS's
    zero-one loss weight (sigmoid, dnas); threshold: the sigmoid discretisation's."""
    check_choice("arch", name, ARCHS)
    return ARCHS[name](layers, nodes, ops, reductions, zero_one_weight=zero_one_weight, threshold=threshold)
