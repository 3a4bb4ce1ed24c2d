"""Discretisation: the rules that turn a cell's architecture weights into its genes.

`top2_cell` is the DARTS rule (softmax weights, two inputs per node), `threshold_cell` FairDARTS's
(sigmoid weights, inputs kept above a threshold). Both take (edges, ops) weights ordered node by
node, node i having i+2 incoming edges, and return a `genotype.Cell`.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch

from .errors import GenotypeError
from .genotype import Cell, Gene
from .supernet import edge_count


def _strongest_inputs(weights: torch.Tensor, ops: Sequence[str],
                      nodes: int) -> Iterator[tuple[list[int], list[float], list[str]]]:
    """Per node: its inputs ordered strongest first, each input's strongest non-`none` weight and
    that op's name (indexed by input). weights: (edges, ops), node i's i+2 edges in a row."""
    w = weights.detach().float().cpu()
    edges = edge_count(nodes)
    if tuple(w.shape) != (edges, len(ops)):   # another cell's weights read as these would give a wrong cell
        raise GenotypeError(f"cannot discretise: weights of shape {tuple(w.shape)}, where {nodes} nodes and "
                            f"{len(ops)} ops make ({edges}, {len(ops)})")
    if not torch.isfinite(w).all():   # NaN compares false with everything: a plausible all-skip cell came out
        raise GenotypeError(f"cannot discretise: the weights hold {int((~torch.isfinite(w)).sum())} non-finite "
                            f"values (NaN or inf: a diverged search)")
    usable = [o for o, name in enumerate(ops) if name != "none"]
    if not usable:
        raise GenotypeError("cannot discretise: the op set has only 'none'")
    start = 0
    for i in range(nodes):
        n = i + 2
        best, arg = w[start:start + n][:, usable].max(dim=1)
        strength = [float(b) for b in best]
        yield sorted(range(n), key=lambda j: -strength[j]), strength, [ops[usable[int(a)]] for a in arg]
        start += n


def top2_cell(weights: torch.Tensor, ops: Sequence[str], nodes: int, reduction: bool = False) -> Cell:
    """The DARTS rule (quark0/darts model_search.py `_parse`).

    weights: (edges, ops) strengths after activation, edges ordered node by node (node i has i+2).
    For each node keep the 2 incoming edges whose strongest non-`none` op is largest, and on each
    its strongest non-`none` op.
    """
    genes: list[Gene] = []
    for order, _, op in _strongest_inputs(weights, ops, nodes):
        genes += [(op[j], j) for j in order[:2]]
    return Cell(tuple(genes), tuple(range(2, nodes + 2)), reduction)


def threshold_cell(weights: torch.Tensor, ops: Sequence[str], nodes: int, threshold: float,
                   reduction: bool = False) -> Cell:
    """FairDARTS rule (xiaomi-automl/FairDARTS utils.py `parse`, method 'threshold_sparse'): per node
    the two strongest inputs (by their strongest non-`none` op), each kept when that op's weight is
    at least `threshold`.

    A node that keeps no input is left out, as FairDARTS's DCOCell leaves it out: not in the cell's
    concatenation, and a later node's input from it counts as not kept (DCOCell skips the edges of
    such a node). The format keeps two genes per node, so an input not kept is written as
    ('none', j). A cell in which no node keeps an input (FairDARTS's cell would have no output)
    keeps the single strongest edge from a cell input, so that it has one (`threshold_fallback`
    says when, for the search's notice).
    """
    return _threshold(weights, ops, nodes, threshold, reduction)[0]


def threshold_fallback(weights: torch.Tensor, ops: Sequence[str], nodes: int,
                       threshold: float) -> tuple[str, int, int, float] | None:
    """When no node of the cell keeps an input under `threshold_cell`: (op, input state, node, weight)
    of the one edge kept instead, below the threshold; else None."""
    return _threshold(weights, ops, nodes, threshold, False)[1]


def _threshold(weights: torch.Tensor, ops: Sequence[str], nodes: int, threshold: float,
               reduction: bool) -> tuple[Cell, tuple[str, int, int, float] | None]:
    genes: list[Gene] = []
    kept = [True, True]   # per state: the cell inputs, then each node: does it keep an input?
    strongest: tuple[float, int, int, str] | None = None   # (weight, node, input, op) from a cell input
    for i, (order, strength, op) in enumerate(_strongest_inputs(weights, ops, nodes)):
        top = order[:2]
        passing = [j for j in top if strength[j] >= threshold and kept[j]]
        genes += [(op[j], j) for j in passing] + [("none", j) for j in top if j not in passing]
        kept.append(bool(passing))
        for j in (0, 1):
            if strongest is None or strength[j] > strongest[0]:
                strongest = (strength[j], i, j, op[j])
    concat = tuple(n for n in range(2, nodes + 2) if kept[n])
    if concat or strongest is None:
        return Cell(tuple(genes), concat, reduction), None
    weight, i, j, name = strongest
    first, second = genes[2 * i][1], genes[2 * i + 1][1]
    genes[2 * i:2 * i + 2] = [(name, j), ("none", second if first == j else first)]
    return Cell(tuple(genes), (i + 2,), reduction), (name, j, i, weight)


def threshold_notes(psi: torch.Tensor, ops: Sequence[str], nodes: int, threshold: float,
                    reductions: Sequence[int]) -> list[str]:
    """What a FairDARTS search says at its end (and its report repeats) about a cell of its genotype
    that no input passed `threshold` in: the one edge it keeps instead. psi: (L, E, O), the cells of
    one kind sharing their weights (the first of each kind is read, as `Arch.genotype` does)."""
    notes = []
    for reduction in (False, True):
        layer = next((k for k in range(psi.shape[0]) if (k in reductions) == reduction), None)
        fallback = None if layer is None else threshold_fallback(psi[layer], ops, nodes, threshold)
        if fallback is not None:
            op, j, i, weight = fallback
            source = ("c_{k-2}", "c_{k-1}")[j]
            notes.append(f"no input of the {'reduction' if reduction else 'normal'} cell reached the threshold "
                         f"{threshold:g}; it keeps its strongest edge ({op} from {source} to node {i}, state "
                         f"{i + 2} in the genotype, "
                         f"{weight:.3f}) so that it has an output (FairDARTS's own cell would have none)")
    return notes
