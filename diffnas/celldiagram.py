"""Cell diagrams in the style of the DARTS paper, drawn by Graphviz.

We write the `.dot` source ourselves (no `graphviz` Python package) and render it with the real
`dot` program, as quark0/darts cnn/visualize.py does through its wrapper: inputs c_{k-2}, c_{k-1}
on the left, intermediate nodes 0..N-1, output c_{k} on the right (rankdir LR), one edge per gene
labelled and coloured by its op. Genes whose op is 'none' contribute nothing and are not drawn, nor
are nodes left with no input that the output does not concatenate.

Node ids in the source are `in0`, `in1` (the cell inputs, gene indices 0 and 1), `n0`..`n{N-1}`
(gene index i + 2) and `out`, so the source can be read back (the tests do).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Sequence

from .atomic import atomic_write
from .genotype import AnyGenotype, Cell, CellwiseGenotype, Genotype

# Fixed colours for the DARTS primitives so every figure of every run agrees (colour-blind friendly
# Okabe-Ito / Tableau hues); other op names get a stable colour from a hash of the name.
OP_COLORS: dict[str, str] = {
    "none": "#bbbbbb",
    "max_pool_3x3": "#0072b2",
    "avg_pool_3x3": "#56b4e9",
    "skip_connect": "#009e73",
    "sep_conv_3x3": "#d55e00",
    "sep_conv_5x5": "#e69f00",
    "dil_conv_3x3": "#cc79a7",
    "dil_conv_5x5": "#882255",
}
_EXTRA = ("#332288", "#117733", "#44aa99", "#999933", "#aa4499", "#6699cc", "#661100", "#888888")

DOT_MISSING = "Graphviz 'dot' not found: wrote .dot sources only; `apt-get install graphviz` to render them"
_warned = False


def op_color(op: str) -> str:
    """The colour of an op, the same in cell diagrams and matplotlib figures."""
    if op in OP_COLORS:
        return OP_COLORS[op]
    h = int(hashlib.md5(op.encode()).hexdigest(), 16)  # stable across runs, unlike hash()
    return _EXTRA[h % len(_EXTRA)]


def _luminance(colour: str) -> float:
    """WCAG 2 relative luminance of "#rrggbb"."""
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two "#rrggbb" colours, 1 to 21."""
    lighter, darker = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def text_on(fill: str) -> str:
    """"black" or "white", whichever text contrasts more with `fill` ("#rrggbb") by WCAG 2."""
    return "black" if contrast(fill, "#000000") >= contrast(fill, "#ffffff") else "white"


def label_color(colour: str, contrast_ratio: float = 4.5) -> str:
    """`colour` ("#rrggbb") darkened in steps until it reaches `contrast_ratio` against white (WCAG 2's AA for
    text, 4.5:1): the op colours are light for thin text (sep_conv_5x5's orange: 2.0:1), the edges
    keep them and their labels take this."""
    for step in range(21):
        shade = 1 - step / 20
        darker = "#" + "".join(f"{round(int(colour[i:i + 2], 16) * shade):02x}" for i in (1, 3, 5))
        if contrast(darker, "#ffffff") >= contrast_ratio:
            return darker
    return "#000000"


def node_id(index: int) -> str:
    """Dot id of gene input index `index` (0, 1: cell inputs; i + 2: intermediate node i)."""
    return f"in{index}" if index < 2 else f"n{index - 2}"


def cell_dot(cell: Cell, name: str = "cell", title: str | None = None) -> str:
    """Graphviz source of one cell."""
    q = _quote
    lines = [f"digraph {q(name)} {{",
             "  rankdir=LR;",
             # more room between nodes from 5 on: 6-node cells' edge labels ran into each other
             f'  graph [fontname="Helvetica", fontsize=14, nodesep={0.3 if cell.nodes < 5 else 0.5}, '
             f'ranksep={0.6 if cell.nodes < 5 else 0.8}];',
             '  node [style="filled,rounded", shape=box, fontname="Helvetica", fontsize=16, penwidth=1.5];',
             '  edge [fontname="Helvetica", fontsize=12, penwidth=2];']
    if title:
        lines.append(f"  label={q(title)}; labelloc=t;")
    lines.append(f'  in0 [label={q("c_{k-2}")}, fillcolor=darkseagreen2];')
    lines.append(f'  in1 [label={q("c_{k-1}")}, fillcolor=darkseagreen2];')
    # a node that receives nothing and is not concatenated (FairDARTS leaves such nodes out) is not drawn;
    # one that receives nothing yet feeds another (FAIR_DARTS_C's node 1: all-zero, its `none` genes are
    # the Zero op) is drawn greyed and says so, not left for Graphviz to invent as a bare "n1"
    receives = {g // 2 for g, (op, _) in enumerate(cell.genes) if op != "none"}
    feeds = {j - 2 for op, j in cell.genes if op != "none" and j >= 2}
    for i in range(cell.nodes):
        if i in receives:
            lines.append(f'  n{i} [label={q(str(i))}, fillcolor=lightblue];')
        elif i in feeds or i + 2 in cell.concat:
            label = q(f"{i} (no input: zero)")
            lines.append(f'  n{i} [label={label}, fillcolor=gray90, style="filled,rounded,dashed"];')
    lines.append(f'  out [label={q("c_{k}")}, fillcolor=palegoldenrod];')
    lines.append("  { rank=source; in0; in1; }  { rank=sink; out; }")
    for g, (op, j) in enumerate(cell.genes):
        if op == "none":
            continue
        c = op_color(op)
        lines.append(f"  {node_id(j)} -> n{g // 2} [label={q(op)}, color={q(c)}, fontcolor={q(label_color(c))}];")
    for k in cell.concat:
        lines.append(f"  {node_id(k)} -> out [color=gray50, style=dashed, penwidth=1];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dot_available() -> bool:
    return shutil.which("dot") is not None


def dot_missing_first_said() -> bool:
    """True the first time this process is to say that `dot` is missing, False after: a pipeline draws
    the search's figures, then the training's, and says it once."""
    global _warned
    first, _warned = not _warned, True
    return first


def render(dot_path: Path, formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    """Render a .dot file next to itself with the `dot` program; [] (and one warning) without it."""
    exe = shutil.which("dot")
    if exe is None:
        if dot_missing_first_said():
            warnings.warn(DOT_MISSING, RuntimeWarning, stacklevel=2)
        return []
    out = []
    for fmt in formats:
        target = Path(dot_path).with_suffix("." + fmt)
        dpi = ["-Gdpi=120"] if fmt == "png" else []

        def run_dot(tmp: Path) -> None:
            done = subprocess.run([exe, *dpi, f"-T{fmt}", "-o", str(tmp), str(dot_path)], capture_output=True,
                                  text=True, timeout=120)
            if done.returncode != 0:
                raise RuntimeError(f"dot failed on {dot_path}: {done.stderr.strip()}")

        atomic_write(target, run_dot)  # so a browser never shows half a file
        out.append(target)
    return out


def distinct_cells(genotype: AnyGenotype) -> list[tuple[str, str, Cell]]:
    """(file stem, title, cell) for each distinct cell: normal and reduce for a Genotype; for a
    CellwiseGenotype each architecture once, titled with the layers that use it."""
    if isinstance(genotype, Genotype):
        return [("cell_normal", "normal cell", genotype.cell(False)),
                ("cell_reduce", "reduction cell", genotype.cell(True))]
    assert isinstance(genotype, CellwiseGenotype)
    layers: dict[Cell, list[int]] = {}
    for k, cell in enumerate(genotype.cells_):
        layers.setdefault(cell, []).append(k)
    out = []
    for cell, ks in layers.items():
        kind = "reduction" if cell.reduction else "normal"
        where = ", ".join(map(str, ks))
        out.append((f"cell_{ks[0]:02d}", f"{kind} cell, layer{'s' if len(ks) > 1 else ''} {where}", cell))
    return out


def write_cell_diagrams(genotype: AnyGenotype, out_dir: Path, render_images: bool = True,
                        when: str = "") -> list[Path]:
    """Write a .dot per distinct cell into `out_dir` and render each to PNG and SVG when `dot` exists;
    `when` ends each title (an unfinished search's "after epoch 3, not finished")."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for stem, title, cell in distinct_cells(genotype):
        dot_path = out_dir / f"{stem}.dot"
        dot_path.write_text(cell_dot(cell, stem, f"{title} ({when})" if when else title))
        paths.append(dot_path)
        if render_images:
            paths += render(dot_path)
    return paths
