"""Matplotlib figures: of a run (weight heatmaps, weight evolution, the per-layer network, learning
curves) and of the toy problem (the paper's Figure 2, `toy_figure`).

Figures are built on `matplotlib.figure.Figure` directly, never through pyplot: no global figure
registry to leak, no interactive backend, and importing this module changes nothing for the user.
Every function takes plain data (the `alphas.pt` dict, metric records, a genotype) and returns a
Figure; `save_figure` writes PNG + SVG. `load_alphas` reads and checks an alphas.pt; the rest of a
run folder is read in `report.py` (metrics.jsonl through `runlog.read_rows`).
"""

from __future__ import annotations

import math
import operator
import textwrap
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import MaxNLocator

from . import toy
from .atomic import atomic_write
from .celldiagram import OP_COLORS, op_color, text_on
from .checkpoint import load_reason, torch_saved
from .errors import ConfigError, DiffnasError
from .genotype import AnyGenotype, CellwiseGenotype

ALPHA_KEYS = ("ops", "edges", "reductions", "shared", "history")


def load_alphas(path: Path) -> dict[str, Any]:
    """Read and check `alphas.pt`; DiffnasError naming what is wrong."""
    try:
        if not torch_saved(path):
            raise DiffnasError(f"{path}: not a file torch.save writes")
        a = torch.load(path, map_location="cpu", weights_only=True)
    except DiffnasError:
        raise
    except Exception as e:  # torch raises many types for a corrupt file; report them all the same way
        raise DiffnasError(f"{path}: cannot read ({type(e).__name__}: {load_reason(e)})") from None
    if not isinstance(a, dict) or any(k not in a for k in ALPHA_KEYS):
        raise DiffnasError(f"{path}: expected a dict with keys {', '.join(ALPHA_KEYS)}")
    h = a["history"]
    if not isinstance(h, torch.Tensor) or h.dim() != 4:
        raise DiffnasError(f"{path}: 'history' must be a tensor (T, L, E, O)")
    if h.shape[2] != len(a["edges"]) or h.shape[3] != len(a["ops"]) or h.shape[0] < 1:
        raise DiffnasError(f"{path}: history shape {tuple(h.shape)} does not match "
                           f"{len(a['edges'])} edges x {len(a['ops'])} ops")
    return a


def node_name(state: int) -> str:
    """A cell state as the cell diagrams name it (celldiagram.py, after DARTS's visualize.py): the
    inputs c_{k-2}, c_{k-1}, then the intermediate nodes 0, 1, ..."""
    return ("c_{k-2}", "c_{k-1}")[state] if state < 2 else str(state - 2)


def edge_labels(edges: Sequence[Sequence[int]]) -> list[str]:
    """`c_{k-1} -> 0`, `0 -> 1`: the edges (source state, destination state) named as in the cell diagrams."""
    return [f"{node_name(int(s))} -> {node_name(int(d))}" for s, d in edges]


def value_decimals(vmin: float, vmax: float) -> int:
    """Decimals that tell the smallest and largest value apart (2 to 5): a search of one epoch leaves
    softmax weights within 0.1247..0.1253, which two decimals would all print as 0.12 or 0.13."""
    span = vmax - vmin
    if span <= 0:
        return 2
    return max(2, min(5, 1 - math.floor(math.log10(span))))


def table_decimals(psi: torch.Tensor, threshold: float | None = None,
                   candidates: Sequence[int] | None = None) -> int:
    """The decimals of a heatmap's printed weights (psi: (..., E, O), every panel: one number format
    for all), 2 to 5: enough to tell apart the smallest and largest weight, the largest two of each
    edge (the op the edge would keep and its runner-up: a PC-DARTS row sits at 1/2 ... 1/5 of 1/8,
    which the scale's own 3 decimals print as 0.025 everywhere), and each weight from `threshold` (a
    FairDARTS weight of 0.8504 against 0.85).

    candidates: the op columns an edge's gene is chosen from (all when None); the top two are ranked
    among them only, since `none` is never kept and its near-tie with an op decides nothing."""
    rows = psi.reshape(-1, psi.shape[-1]).double()
    rows = rows[rows.isfinite().all(1)]   # a NaN row (a run without its NaN checks) has no decimals to set
    if rows.numel() == 0:
        return 2
    spans = [(float(rows.min()), float(rows.max()))]
    ranked = rows if candidates is None else rows[:, list(candidates)]
    if ranked.shape[1] > 1:
        top = ranked.topk(2, dim=1).values
        spans += [(0.0, float(gap)) for gap in (top[:, 0] - top[:, 1]) if gap > 0]
    if threshold is not None:
        spans += [(0.0, float(gap)) for gap in (rows - threshold).abs().flatten() if gap > 0]
    return max(value_decimals(*span) for span in spans)


def genotype_misfit(genotype: AnyGenotype, alphas: dict[str, Any]) -> str | None:
    """Why `genotype`'s genes cannot be outlined on the cells of `alphas` (another search space's: other
    cells, nodes or ops), None when they can."""
    layers = alphas["history"].shape[1]
    cells = genotype.cells_ if isinstance(genotype, CellwiseGenotype) else None
    if cells is not None and len(cells) != layers:
        return f"it has {len(cells)} cells, these weights {layers} layers"
    ops = list(alphas["ops"])
    nodes = max(int(d) for _, d in alphas["edges"]) - 1
    reductions = {int(r) for r in alphas["reductions"]}
    for title, k in cell_views(alphas):
        cell = genotype.cells_[k] if isinstance(genotype, CellwiseGenotype) else genotype.cell(k in reductions)
        if cell.nodes != nodes:
            return f"its {title} has {cell.nodes} nodes, these weights' {nodes}"
        for g, (op, src) in enumerate(cell.genes):
            if op != "none" and op not in ops:   # none: a FairDARTS node with nothing above the threshold
                return f"its {title} has {op!r}, not among these weights' ops ({', '.join(ops)})"
            if not 0 <= int(src) < g // 2 + 2:
                return f"its {title}'s node {g // 2} takes state {src}, not one before it"
    return None


def _fitting(genotype: Optional[AnyGenotype], alphas: dict[str, Any]) -> None:
    """A one-line ConfigError for a genotype given to outline whose genes these weights cannot show."""
    why = genotype_misfit(genotype, alphas) if genotype is not None else None
    if why is not None:
        raise ConfigError(f"genotype: does not fit these architecture weights ({why}); give the genotype of "
                          f"the search that wrote them, or none")


def chosen_genes(genotype: Optional[AnyGenotype], layer: int, reduction: bool, ops: Sequence[str],
                 edges: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    """(edge, op) index pairs of the genes the genotype kept for this cell (one that fits these edges
    and ops: `genotype_misfit`); [] without a genotype."""
    if genotype is None:
        return []
    cell = genotype.cells_[layer] if isinstance(genotype, CellwiseGenotype) else genotype.cell(reduction)
    where = {(int(s), int(d)): e for e, (s, d) in enumerate(edges)}
    return [(where[(int(src), g // 2 + 2)], list(ops).index(op))
            for g, (op, src) in enumerate(cell.genes) if op != "none"]


def cell_views(alphas: dict[str, Any]) -> list[tuple[str, int]]:
    """(title, layer) of the cells worth drawing: normal + reduce when shared, every layer otherwise."""
    layers = alphas["history"].shape[1]
    red = {int(r) for r in alphas["reductions"]}
    if alphas["shared"]:
        out = []
        normal = [k for k in range(layers) if k not in red]
        reduce = [k for k in range(layers) if k in red]
        if normal:
            out.append(("normal cell", normal[0]))
        if reduce:
            out.append(("reduction cell", reduce[0]))
        return out
    return [(f"layer {k} ({'reduction' if k in red else 'normal'})", k) for k in range(layers)]


def _heatmap(ax: Any, psi: torch.Tensor, ops: Sequence[str], edges: Sequence[Sequence[int]],
             vmin: float, vmax: float, fontsize: float, decimals: int, chosen: Sequence[tuple[int, int]] = (),
             passed: Sequence[tuple[int, int]] = ()) -> Any:
    im = ax.imshow(psi.numpy(), cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(ops)), list(ops), rotation=45, ha="right", fontsize=fontsize + 1)
    ax.set_yticks(range(len(edges)), edge_labels(edges), fontsize=fontsize + 1)
    mid = (vmin + vmax) / 2
    for e in range(psi.shape[0]):
        for o in range(psi.shape[1]):
            v = float(psi[e, o])
            ax.text(o, e, f"{v:.{decimals}f}", ha="center", va="center", fontsize=fontsize,
                    color="black" if v > mid else "white")
    for e, o in chosen:   # the genes of the genotype, outlined
        ax.add_patch(Rectangle((o - 0.5, e - 0.5), 1, 1, fill=False, edgecolor="red", lw=1.6))
    for e, o in passed:   # above the threshold, yet not a gene
        ax.add_patch(Rectangle((o - 0.45, e - 0.45), 0.9, 0.9, fill=False, edgecolor="orange", lw=1.4, ls="--"))
    return im


def heatmap_figure(alphas: dict[str, Any], genotype: Optional[AnyGenotype] = None, per_edge: bool = False,
                   threshold: float | None = None) -> Figure:
    """Final psi (edges x ops) as annotated heatmaps, one panel per cell view, one shared colour scale
    from the smallest to the largest weight (values close together still differ in colour; the
    printed values have the decimals that tell them apart); the genes of `genotype` (the run's
    genotype.json), if given, outlined in red.

    per_edge: each edge's row divided by its sum, the ops' shares within the edge. Where psi holds an
    edge factor (PC-DARTS's beta, DNAS's connection weights) the factor sets each row's colours and
    hides the ranking of the ops; for PC-DARTS the shares are softmax(alpha) exactly.

    threshold: the value psi must pass to become a gene (FairDARTS's 0.85, `--arch sigmoid`), marked
    on the colour scale (not with per_edge, whose shares it does not apply to), which reaches a little
    past it when it lies at an end; a weight that passes it but is no gene (an edge keeps its strongest
    op, a node its two strongest inputs, and none from a node that keeps no input) is outlined dashed."""
    _fitting(genotype, alphas)
    final = alphas["history"][-1].float()  # (L, E, O)
    if per_edge:
        final = final / final.sum(-1, keepdim=True).clamp_min(1e-30)
    views = cell_views(alphas)
    ops, edges = alphas["ops"], alphas["edges"]
    cols = min(len(views), 3)
    rows = math.ceil(len(views) / cols)
    small = len(views) > 2  # small multiples: smaller text
    w = (0.55 * len(ops) + 1.6) * cols + 1.0
    h = (0.3 * len(edges) + 1.6) * rows
    fig = Figure(figsize=(w, h), layout="constrained")
    shown = final[[k for _, k in views]]
    genes = [o for o, op in enumerate(ops) if op != "none"]   # the columns a gene can come from
    # the colours span the ops that can be genes: a `none` grown large (a late DARTS search) would press
    # the others into one colour; its weights, printed, may lie beyond the scale's ends
    scaled = shown[..., genes]
    vmin, vmax = float(scaled.min()), float(scaled.max())
    if vmax - vmin < 1e-12:   # all equal (a run stopped at its start): one colour, any scale
        vmin, vmax = vmin - 0.5, vmax + 0.5
    marks = threshold if not per_edge else None   # the threshold applies to psi, not to the shares
    if marks is not None and vmin <= marks <= vmax:   # a line at the scale's very end would hide in its frame
        margin = 0.04 * (vmax - vmin)
        vmin, vmax = min(vmin, marks - margin), max(vmax, marks + margin)
    decimals = table_decimals(shown, marks, genes)
    axes = fig.subplots(rows, cols, squeeze=False)
    im = None
    reductions = {int(r) for r in alphas["reductions"]}
    outlined = dashed = False
    for ax, (title, k) in zip(axes.flat, views):
        chosen = chosen_genes(genotype, k, k in reductions, ops, edges)
        outlined = outlined or bool(chosen)
        passed = [] if marks is None or not chosen else \
            [(e, o) for e, o in (final[k] >= marks).nonzero().tolist() if (e, o) not in chosen and ops[o] != "none"]
        dashed = dashed or bool(passed)
        im = _heatmap(ax, final[k], ops, edges, vmin, vmax, 6 if small else 8, decimals, chosen, passed)
        ax.set_title(title, fontsize=10)
    for ax in list(axes.flat)[len(views):]:
        ax.set_visible(False)
    marked = outside = ""
    if im is not None:
        beyond = (bool((shown > vmax).any()), bool((shown < vmin).any()))
        extend = {(True, True): "both", (True, False): "max", (False, True): "min"}.get(beyond, "neither")
        bar = fig.colorbar(im, ax=axes, shrink=0.8, pad=0.01, extend=extend,   # close to the panels
                           label="share of the edge's psi" if per_edge else "weight psi")
        if extend != "neither":
            outside = "; none (never a gene) lies beyond the colour scale, its value printed"
        if marks is not None:   # marks: the threshold, known not None here
            if vmin <= marks <= vmax:
                bar.ax.axhline(marks, color="red", lw=2)
                marked = f"; red line on the scale: the threshold {marks:g}"
            else:
                marked = f"; the threshold {marks:g} is {'above' if marks > vmax else 'below'} every weight"
    after = alphas["history"].shape[0] - 1   # the history holds the start, then each epoch
    when = alphas.get("when") or (f"after epoch {after}" if after else "start")   # Arch.record(): "now"
    lines = [("ops' shares of each edge's weight, psi / row sum" if per_edge
              else "architecture weights after activation") + f" ({when})"
             + ("; outlined: the genes of the genotype" if outlined else "") + marked + outside]
    if dashed:
        lines.append("dashed: past the threshold but no gene (an edge keeps its strongest op, a node its 2 "
                     "strongest inputs, none from a node that keeps none)")
    # wrapped to the figure's width (about 10 characters an inch at the title's size): a small op set's
    # narrow figure cut a one-line title off at both sides
    fig.suptitle("\n".join(textwrap.fill(line, max(40, int(10 * w))) for line in lines))
    return fig


def evolution_figure(alphas: dict[str, Any], layer: int, title: str | None = None,
                     genotype: Optional[AnyGenotype] = None, per_edge: bool = False) -> Figure:
    """psi of one layer over the epochs: one panel per edge, one line per op, one legend; the op of a
    gene of `genotype` (the run's), if given, drawn thick and on top (ops close together hid it).

    per_edge: each edge's ops as shares of its row, psi / row sum, as heatmap_figure's: where psi holds
    an edge factor (PC-DARTS's beta) the shared axis spans the factors' spread, and the ops of an edge,
    1e-4 apart, drew as one line."""
    layers = alphas["history"].shape[1]
    try:   # an int, numpy's or a 0-d tensor's; negative counts from the end, as in indexing
        index = operator.index(layer) if not isinstance(layer, bool) else None
    except TypeError:
        index = None
    if index is None or not -layers <= index < layers:
        raise ConfigError(f"layer: {layer!r} is not a layer of these weights (0..{layers - 1}; reduction cells: "
                          f"{', '.join(str(int(r)) for r in alphas['reductions'])})")
    layer = index % layers
    _fitting(genotype, alphas)
    h = alphas["history"][:, layer].float()  # (T, E, O)
    if per_edge:
        h = h / h.sum(-1, keepdim=True).clamp_min(1e-30)
    ops, edges = alphas["ops"], alphas["edges"]
    reduction = layer in {int(r) for r in alphas["reductions"]}
    genes = set(chosen_genes(genotype, layer, reduction, ops, edges))
    n = len(edges)
    cols = min(n, 5)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(2.6 * cols + 1.8, 2.0 * rows + 0.8), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    epochs = range(h.shape[0])
    marker = "o" if h.shape[0] < 4 else None  # a single point would otherwise be invisible
    for e, (ax, label) in enumerate(zip(axes.flat, edge_labels(edges))):
        for o, op in enumerate(ops):
            gene = (e, o) in genes
            ax.plot(epochs, h[:, e, o].numpy(), color=op_color(op), label=op, marker=marker,
                    lw=3.2 if gene else 1.3, zorder=3 if gene else 2)
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if h.shape[0] == 1:   # the start alone (Arch.record() of a fresh arch): one tick, not -0.04 ... 0.04
            ax.set_xticks([0])
            ax.set_xlim(-0.5, 0.5)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    # the lowest drawn panel of each column carries the epochs (one above an empty slot included:
    # sharex had left it without tick labels)
    for c in range(cols):
        lowest = axes[(n - 1 - c) // cols, c]   # the column's last edge: c + cols * row < n
        lowest.set_xlabel("epoch")
        lowest.tick_params(axis="x", labelbottom=True)
    for ax in axes[:, 0]:
        ax.set_ylabel("share of the edge's psi" if per_edge else "psi")
    # one line width for every op: a panel's own lines are thick where that edge's gene is
    fig.legend(handles=[Line2D([], [], color=op_color(op), lw=1.5, label=op) for op in ops],
               loc="outside right center", fontsize=8)
    fig.suptitle((title or f"architecture weights over the epochs, layer {layer}")
                 + ("; each op's share of its edge's psi" if per_edge else "")
                 + ("; thick: the genotype's op" if genes else ""))
    return fig


def network_figure(genotype: CellwiseGenotype, when: str = "") -> Figure:
    """Every cell of a per-layer genotype in order, one column per cell: a box per gene coloured by its
    op and labelled with its input, named as the heatmaps and cell diagrams name it; reduction cells
    framed and marked R (the DNAS per-layer figure). `when` ends the title (an unfinished search's
    "after epoch 3, not finished")."""
    cells = genotype.cells_
    genes = max(len(c.genes) for c in cells)
    fig = Figure(figsize=(max(5.0, 0.85 * len(cells) + 3.4), max(3.0, 0.42 * genes + 1.8)), layout="constrained")
    ax = fig.add_subplot()
    used: dict[str, None] = {}
    for k, cell in enumerate(cells):
        if cell.reduction:  # a frame around the whole column
            ax.add_patch(Rectangle((k - 0.5, -0.5), 1, genes, facecolor="#eeeeee", edgecolor="black", lw=1.5))
        for g, (op, j) in enumerate(cell.genes):
            used[op] = None
            ax.add_patch(Rectangle((k - 0.42, g - 0.42), 0.84, 0.84, facecolor=op_color(op),
                                   edgecolor="white", hatch="//" if op == "none" else None))
            ax.text(k, g, node_name(j), ha="center", va="center", fontsize=8, color=text_on(op_color(op)))
    ax.set_xlim(-0.5, len(cells) - 0.5)
    ax.set_ylim(genes - 0.5, -0.5)  # gene 0 on top
    ax.set_xticks(range(len(cells)), [f"{k}\n{'R' if c.reduction else 'N'}" for k, c in enumerate(cells)],
                  fontsize=8)
    ax.set_yticks(range(genes), [f"node {g // 2} ({'ab'[g % 2]})" for g in range(genes)], fontsize=8)
    ax.set_xlabel("cell (N normal, R reduction)")
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    order = list(OP_COLORS)  # legend in the PRIMITIVES order, unknown ops after
    used_sorted = sorted(used, key=lambda op: (order.index(op) if op in order else len(order), op))
    fig.legend(handles=[Patch(facecolor=op_color(op), label=op) for op in used_sorted],
               loc="outside right center", fontsize=8, title="op")
    fig.suptitle(f"per-layer architecture{f' ({when})' if when else ''}\n"
                 "box: a gene's op (colour) and input (c_{k-2}, c_{k-1} or node 0, 1, ...)", fontsize=10)
    return fig


def curves_figure(records: Sequence[dict[str, Any]], warmup_epochs: int = 0) -> Figure:
    """Loss, accuracy (in percent, as the epoch lines and the report print it) and learning rates per
    epoch: search (train/val) or train (train/test) metrics. `warmup_epochs`: a search's first epochs
    that step the weights only, shaded (alpha_lr is recorded there, yet alpha does not move)."""
    fig = Figure(figsize=(13, 3.8), layout="constrained")
    axes = fig.subplots(1, 3)
    x = [r.get("epoch", i) for i, r in enumerate(records)]
    panels = [("loss", ("train_loss", "val_loss", "test_loss"), "cross-entropy (mean per image)"),
              ("accuracy (%)", ("train_acc", "val_acc", "test_acc"), "top-1 accuracy (%)"),
              ("learning rate", ("w_lr", "alpha_lr", "lr"), "learning rate")]
    warm = [xi for xi in x if isinstance(xi, (int, float)) and xi <= warmup_epochs]
    for ax, (name, keys, unit) in zip(axes, panels):
        drawn: list[float] = []
        if warm:   # epochs 1..N as the bands around their points
            ax.axvspan(min(warm) - 0.5, max(warm) + 0.5, color="0.88", zorder=0,
                       label="warm-up: alpha fixed" if name == "learning rate" else None)
        for key in keys:
            scale = 100 if key.endswith("_acc") else 1   # fractions in metrics.jsonl
            pts = [(xi, scale * r[key]) for xi, r in zip(x, records) if isinstance(r.get(key), (int, float))]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, label=key, marker="o" if len(pts) < 4 else None)
                drawn += ys
        if name == "learning rate" and drawn and min(drawn) > 0 and max(drawn) / min(drawn) > 20:
            ax.set_yscale("log")  # w_lr and alpha_lr differ by ~100x
        if drawn:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, f"no {name} recorded", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(unit + (" (log scale)" if ax.get_yscale() == "log" else ""))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(set(x)) == 1:   # one epoch: the locator alone puts ticks at 0.95 ... 1.05
            ax.set_xticks(x[:1])
        ax.grid(alpha=0.3)
    return fig


def save_figure(fig: Figure, stem: Path, formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    """Write `stem.png` and `stem.svg` (atomically, so a page refreshed mid-run never sees half a file)."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        target = stem.with_name(f"{stem.name}.{fmt}")
        with rc_context({"svg.fonttype": "none"}):  # SVG text stays text: smaller, faster, searchable
            atomic_write(target, lambda tmp: fig.savefig(tmp, format=fmt, dpi=110))
        fig.set_layout_engine("none")  # keep the layout just computed: the next format skips solving it again
        out.append(target)
    return out


def _toy_bounds(runs: Sequence[toy.ToyRun]) -> tuple[float, float, float, float]:
    # a diverged run must not flatten the picture: the view holds the other runs, the start and the
    # optimum; a diverged trajectory leaves it through an edge (its panel's title says so)
    kept = [r for r in runs if r.status != "diverged"] or list(runs)
    pts = torch.cat([r.trajectory[torch.isfinite(r.trajectory).all(1)] for r in kept]
                    + [torch.tensor([toy.OPTIMUM], dtype=toy.DTYPE)] + [r.trajectory[:1] for r in runs])
    pts = pts.clamp(-10, 10)
    lo, hi = pts.min(0).values, pts.max(0).values
    pad = 0.15 * (hi - lo).clamp_min(1.0)
    return float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1])


def toy_figure(runs: Sequence[toy.ToyRun]) -> Figure:
    """Figure 2 of the paper: one panel per run with L_val contours over (a, w), the feasible line
    w = a, the optimum and the trajectory (`save_figure(fig, DIR / "toy")` writes toy.png and toy.svg)."""
    if not runs:
        raise ConfigError("toy_figure: no runs to draw")
    a0, a1, w0, w1 = _toy_bounds(runs)
    ga, gw = torch.meshgrid(torch.linspace(a0, a1, 200, dtype=toy.DTYPE),
                            torch.linspace(w0, w1, 200, dtype=toy.DTYPE), indexing="xy")
    lval = toy.val_loss({"w": gw}, {"a": ga}).numpy()
    cols = min(len(runs), 4)   # rows of at most 4 panels: ten xi values in one row could not be read
    rows = math.ceil(len(runs) / cols)
    fig = Figure(figsize=(3.2 * cols + 0.8, 3.1 * rows + 0.5), layout="constrained")
    grid = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    axes = list(grid.flat)
    for ax in axes[len(runs):]:
        ax.set_visible(False)
    for ax, r in zip(axes, runs):
        cs = ax.contour(ga.numpy(), gw.numpy(), lval, levels=15, cmap="viridis", linewidths=0.7)
        # the labels in dark grey: viridis's yellow end is unreadable on white
        ax.clabel(cs, fontsize=6, fmt="%.1f", inline_spacing=2, colors="#333333")
        lo, hi = max(a0, w0), min(a1, w1)
        ax.plot([], [], "-", color=cs.get_cmap()(0.5), lw=0.7, label="L_val contours")
        ax.plot([lo, hi], [lo, hi], "r--", lw=1, label="feasible w = a")
        path = r.trajectory
        inside = ((path[:, 0] >= a0) & (path[:, 0] <= a1) & (path[:, 1] >= w0) & (path[:, 1] <= w1)).tolist()
        if r.status == "diverged" and not all(inside):
            # up to where it leaves the plot: its swings past the edges, clipped, painted a solid band
            path = path[:inside.index(False) + 1]
        step = max(1, len(path) // 400)  # a few hundred points are enough to see the path
        t = torch.cat([path[::step], path[-1:]]).numpy()
        ax.plot(t[:, 0], t[:, 1], "-", color="tab:blue", lw=1.5, label="trajectory")
        ax.plot(t[0, 0], t[0, 1], "o", color="tab:blue", ms=4, label="start")
        ax.plot(t[-1, 0], t[-1, 1], "x", color="black", ms=6, label="end")
        ax.plot(*toy.OPTIMUM, "o", mfc="none", mec="red", ms=10, mew=1.5, label="optimum (1, 1)")
        hessian = r.method.rsplit("_", 1)[-1] if r.method.startswith("second_order_") else ""   # fd | exact
        status = {"converged": "", "diverged": "\ndiverged: drawn until it leaves"}.get(r.status, f", {r.status}")
        ax.set_title(f"{r.label}{f', {hessian}' if hessian else ''}: {r.iterations} it{status}",
                     fontsize=9, color="firebrick" if r.status == "diverged" else "black")
        ax.set_xlim(a0, a1)
        ax.set_ylim(w0, w1)
    for ax in axes[:len(runs)]:   # every panel its a values: a short last row leaves gaps under the rows above
        ax.xaxis.set_tick_params(labelbottom=True)
    for c in range(cols):   # the lowest panel of each column names the a axis
        grid[(len(runs) - 1 - c) // cols, c].set_xlabel("a (architecture)")
    for ax in grid[:, 0]:
        ax.set_ylabel("w (weights)")
    # the legend off the panels (in a corner of the first one it covered contours and their labels): in
    # the first empty slot of the last row, else under the panels
    handles, labels = axes[0].get_legend_handles_labels()
    if len(runs) < len(axes):
        spare = axes[len(runs)]
        spare.set_visible(True)
        spare.axis("off")
        spare.legend(handles, labels, fontsize=8, loc="center", frameon=False)
    else:
        fig.legend(handles, labels, fontsize=8, loc="outside lower center", ncol=len(labels), frameon=False)
    return fig
