"""Figures and cell diagrams drawn from small generated run folders (runfolder_fixtures)."""

from __future__ import annotations

import argparse
import re
import warnings
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
import torch
from PIL import Image
from progress_helpers import bars_from_the_start
from runfolder_fixtures import search_metrics, train_metrics, write_search_run, write_train_run

from diffnas import celldiagram, plots, report, run_figures
from diffnas import genotype as G
from diffnas.errors import DiffnasError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE, path
    with Image.open(path) as im:
        im.verify()  # checks the chunks' CRCs
    with Image.open(path) as im:
        rgb = im.convert("RGB")
        assert rgb.width > 200 and rgb.height > 150, (path, rgb.size)
        assert any(lo < hi for lo, hi in rgb.getextrema()), f"{path} is a single colour"


def check_svg(path: Path) -> None:
    root = ET.parse(path).getroot()
    assert root.tag.rsplit("}", 1)[-1] == "svg", path


def check_figures(paths: list[Path]) -> None:
    for p in paths:
        assert p.is_file(), p
        if p.suffix == ".png":
            check_png(p)
        elif p.suffix == ".svg":
            check_svg(p)


def stems(paths: list[Path], suffix: str) -> set[str]:
    return {p.stem for p in paths if p.suffix == suffix}


_EDGE = re.compile(r"^\s*(\w+)\s*->\s*(\w+)\s*\[(.*)\];\s*$")


def dot_edges(text: str) -> tuple[Counter, Counter]:
    """(multiset of (src, dst, op) gene edges, multiset of nodes joined to the output) from dot text."""
    def index(node: str) -> int:
        m = re.fullmatch(r"in([01])|n(\d+)", node)
        assert m, f"unexpected node id {node!r}"
        return int(m[1]) if m[1] is not None else int(m[2]) + 2

    genes: Counter = Counter()
    concat: Counter = Counter()
    for line in text.splitlines():
        m = _EDGE.match(line)
        if m is None:
            assert "->" not in line, f"unparsed edge line {line!r}"
            continue
        src, dst, attrs = m.groups()
        if dst == "out":
            concat[index(src)] += 1
            continue
        label = re.search(r'label="([^"]*)"', attrs)
        assert label, line
        genes[(index(src), index(dst), label[1])] += 1
    return genes, concat


def expected_edges(cell: G.Cell) -> tuple[Counter, Counter]:
    return (Counter((j, g // 2 + 2, op) for g, (op, j) in enumerate(cell.genes) if op != "none"),
            Counter(cell.concat))


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], list[str]]:
    run = write_search_run(tmp_path_factory.mktemp("shared"), shared=True, layers=5, nodes=2, epochs=3)
    notes: list[str] = []
    return run, report.plot_run(run, notes=notes), notes


@pytest.fixture(scope="module")
def global_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], list[str]]:
    # no metrics.jsonl: this variant also checks that a missing piece is named and the rest drawn
    run = write_search_run(tmp_path_factory.mktemp("global"), shared=False, layers=3, nodes=1, epochs=2,
                           omit={"metrics.jsonl"})
    notes: list[str] = []
    return run, report.plot_run(run, notes=notes), notes


def test_shared_run_figures(shared_run: tuple[Path, list[Path], list[str]]) -> None:
    run, paths, notes = shared_run
    assert notes == []
    assert all(p.parent == run / "figures" for p in paths)
    want = {"curves", "weights_heatmap", "weights_evolution_normal", "weights_evolution_reduction",
            "cell_normal", "cell_reduce"}
    assert stems(paths, ".png") == want and stems(paths, ".svg") == want
    assert stems(paths, ".dot") == {"cell_normal", "cell_reduce"}
    check_figures(paths)
    genotype = G.load(str(run / "genotype.json"))
    for reduction, stem in ((False, "cell_normal"), (True, "cell_reduce")):
        text = (run / "figures" / f"{stem}.dot").read_text()
        assert dot_edges(text) == expected_edges(genotype.cell(reduction))


def test_global_run_figures(global_run: tuple[Path, list[Path], list[str]]) -> None:
    run, paths, notes = global_run
    assert notes == ["no metrics.jsonl: learning curves skipped"]
    genotype = G.load(str(run / "genotype.json"))
    assert isinstance(genotype, G.CellwiseGenotype)
    distinct = celldiagram.distinct_cells(genotype)
    cells = {stem for stem, _, _ in distinct}
    want = {"weights_heatmap", "network"} | {f"weights_evolution_layer{k:02d}" for k in range(3)} | cells
    assert stems(paths, ".png") == want and stems(paths, ".svg") == want
    assert stems(paths, ".dot") == cells
    check_figures(paths)
    for stem, _, cell in distinct:
        assert dot_edges((run / "figures" / f"{stem}.dot").read_text()) == expected_edges(cell)


def test_dot_edges_exclude_none_and_match_every_gene(tmp_path: Path) -> None:
    with_none = G.Cell((("sep_conv_3x3", 0), ("none", 1), ("skip_connect", 2), ("none", 0),
                        ("dil_conv_3x3", 3), ("dil_conv_3x3", 3)), (2, 3, 4), False)
    reduce = G.Cell((("max_pool_3x3", 0), ("max_pool_3x3", 1), ("none", 2), ("avg_pool_3x3", 1),
                     ("skip_connect", 2), ("sep_conv_5x5", 0)), (2, 3, 4), True)
    cellwise = G.CellwiseGenotype((with_none, reduce, with_none))
    for genotype in (G.KNOWN["DARTS_V2"], G.KNOWN["PC_DARTS_CIFAR"], cellwise):
        out = tmp_path / str(id(genotype))
        paths = celldiagram.write_cell_diagrams(genotype, out)
        distinct = celldiagram.distinct_cells(genotype)
        assert len(distinct) == 2  # the repeated cell is drawn once
        for stem, _, cell in distinct:
            assert dot_edges((out / f"{stem}.dot").read_text()) == expected_edges(cell)
        check_figures(paths)
    assert "none" not in celldiagram.cell_dot(with_none)


def test_dot_leaves_out_nodes_that_receive_nothing_and_are_not_concatenated() -> None:
    cell = G.KNOWN["FAIR_DARTS_A"].cell(False)   # node 3 (n1) keeps no input; concat (2, 4, 5)
    dot = celldiagram.cell_dot(cell)
    declared = set(re.findall(r"^  (n\d+) \[label", dot, flags=re.M))
    assert declared == {"n0", "n2", "n3"}
    assert not re.search(r"\bn1\b", dot)   # no node, no edge
    # a node that receives nothing but is concatenated is still drawn
    kept = G.Cell((("sep_conv_3x3", 0), ("none", 1), ("none", 0), ("none", 1)), (2, 3), False)
    assert set(re.findall(r"^  (n\d+) \[label", celldiagram.cell_dot(kept), flags=re.M)) == {"n0", "n1"}
    assert '  n1 [label="1 (no input: zero)"' in celldiagram.cell_dot(kept)


def test_a_node_that_receives_nothing_but_feeds_another_is_declared_and_says_so() -> None:
    """FAIR_DARTS_C's normal node 1 keeps no input and is not concatenated, but node 3 takes its
    skip_connect: undeclared, Graphviz drew it as a bare grey box "n1", read as a third cell input."""
    dot = celldiagram.cell_dot(G.KNOWN["FAIR_DARTS_C"].cell(False))
    declared = set(re.findall(r"^  (\w+) \[label", dot, flags=re.M))
    used = {name for edge in re.findall(r"^  (\w+) -> (\w+)", dot, flags=re.M) for name in edge}
    assert used <= declared, used - declared
    assert '  n1 [label="1 (no input: zero)", fillcolor=gray90, style="filled,rounded,dashed"];' in dot
    for name in G.KNOWN:   # every published genotype's cells: each node an edge names is declared
        for reduction in (False, True):
            text = celldiagram.cell_dot(G.KNOWN[name].cell(reduction))
            assert {n for e in re.findall(r"^  (\w+) -> (\w+)", text, flags=re.M) for n in e} <= set(
                re.findall(r"^  (\w+) \[label", text, flags=re.M)), name


def test_missing_dot_writes_source_and_warns_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(celldiagram.shutil, "which", lambda name: None)
    monkeypatch.setattr(celldiagram, "_warned", False)
    with pytest.warns(RuntimeWarning, match="apt-get install graphviz") as caught:
        first = celldiagram.write_cell_diagrams(G.KNOWN["DARTS"], tmp_path / "a")
        second = celldiagram.write_cell_diagrams(G.KNOWN["DARTS"], tmp_path / "b")
    assert len([w for w in caught if "graphviz" in str(w.message)]) == 1
    assert {p.suffix for p in first + second} == {".dot"} and len(first) == 2
    run = write_train_run(tmp_path / "run", omit={"metrics.jsonl"})
    notes: list[str] = []
    celldiagram._warned = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # the note says it; no Python warning besides it
        report.plot_run(run, notes=notes)
    assert sum("apt-get install graphviz" in n for n in notes) == 1


def test_missing_dot_is_logged_once_when_a_pipeline_draws_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """With no notes list (the end of a search, then of a training, in one `diffnas run`) the figures
    are drawn twice, and the missing Graphviz is said once."""
    monkeypatch.setattr(celldiagram.shutil, "which", lambda name: None)
    monkeypatch.setattr(celldiagram, "_warned", False)
    run = write_train_run(tmp_path / "run", omit={"metrics.jsonl"})
    for out in ("a", "b"):
        report.plot_run(run, tmp_path / out)
        assert (tmp_path / out / "cell_normal.dot").is_file()
    err = capsys.readouterr().err
    assert err.count("apt-get install graphviz") == 1 and "diffnas: warning: Graphviz 'dot' not found" in err


def test_heatmap_labels_and_values(global_run: tuple[Path, list[Path], list[str]]) -> None:
    alphas = plots.load_alphas(global_run[0] / "alphas.pt")
    fig = plots.heatmap_figure(alphas)
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.images]
    assert len(panels) == alphas["history"].shape[1]
    final = alphas["history"][-1]
    for k, ax in enumerate(panels):
        # the edges named as in the cell diagrams: inputs c_{k-2}, c_{k-1}, intermediate nodes from 0
        names = lambda i: ("c_{k-2}", "c_{k-1}")[i] if i < 2 else str(i - 2)  # noqa: E731
        assert [t.get_text() for t in ax.get_yticklabels()] == [f"{names(s)} -> {names(d)}" for s, d in alphas["edges"]]
        assert [t.get_text() for t in ax.get_xticklabels()] == list(alphas["ops"])
        # each value in its own cell: column = op, row = edge (a transposed label sat in another's cell)
        shown = {tuple(int(round(c)) for c in t.get_position()): float(t.get_text()) for t in ax.texts}
        edges, ops = final[k].shape
        assert sorted(shown) == [(o, e) for o in range(ops) for e in range(edges)]
        for (o, e), value in shown.items():
            assert value == pytest.approx(float(final[k][e, o]), abs=0.006)


def test_heatmap_tells_close_small_weights_apart(global_run: tuple[Path, list[Path], list[str]]) -> None:
    """DNAS-like psi, all near 0.018: three significant digits, and a colour scale from min to max."""
    alphas = plots.load_alphas(global_run[0] / "alphas.pt")
    steps = torch.arange(alphas["history"][-1].numel(), dtype=torch.float32).view_as(alphas["history"][-1])
    alphas["history"] = (0.018 + 1e-5 * steps).unsqueeze(0)
    fig = plots.heatmap_figure(alphas)
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.images]
    final = alphas["history"][-1]
    for k, ax in enumerate(panels):
        shown = [float(t.get_text()) for t in ax.texts]
        assert shown == pytest.approx(final[k].flatten().tolist(), rel=3e-3)
        assert len(set(shown)) > 1                      # not all "0.02"
        genes = final[..., [o for o, op in enumerate(alphas["ops"]) if op != "none"]]   # the scale: ops that can be genes
        assert ax.images[0].get_clim() == pytest.approx((float(genes.min()), float(genes.max())))


def test_heatmap_values_tell_apart_what_the_colours_do(shared_run: tuple[Path, list[Path], list[str]]) -> None:
    # one epoch of softmax search: every weight within 0.1247..0.1253, which two decimals print as 0.12 / 0.13
    alphas = plots.load_alphas(shared_run[0] / "alphas.pt")
    final = alphas["history"][-1]
    steps = torch.arange(final.numel(), dtype=torch.float32).view_as(final) / final.numel()
    alphas["history"] = (0.1247 + 6e-4 * steps).unsqueeze(0)
    fig = plots.heatmap_figure(alphas)
    for k, ax in zip([k for _, k in plots.cell_views(alphas)], [a for a in fig.axes if a.images]):
        shown = [float(t.get_text()) for t in ax.texts]
        assert shown == pytest.approx(alphas["history"][-1][k].flatten().tolist(), abs=5.1e-6)   # 5 decimals
        assert len(set(shown)) > len(shown) // 2                  # not two values, 0.12 and 0.13


def test_heatmap_outlines_the_genes_of_the_genotype(shared_run: tuple[Path, list[Path], list[str]]) -> None:
    from matplotlib.patches import Rectangle
    run = shared_run[0]
    alphas, genotype = plots.load_alphas(run / "alphas.pt"), G.load(str(run / "genotype.json"))
    fig = plots.heatmap_figure(alphas, genotype)
    assert "outlined: the genes of the genotype" in fig.texts[0].get_text()
    edges = [tuple(e) for e in alphas["edges"]]
    for (title, k), ax in zip(plots.cell_views(alphas), [a for a in fig.axes if a.images]):
        boxes = {(round(r.get_y() + 0.5), round(r.get_x() + 0.5)) for r in ax.patches if isinstance(r, Rectangle)}
        cell = genotype.cell(title.startswith("reduction"))
        ops = list(alphas["ops"])
        want = {(edges.index((src, g // 2 + 2)), ops.index(op)) for g, (op, src) in enumerate(cell.genes)}
        assert boxes == want and len(boxes) == 2 * cell.nodes
    assert not [r for ax in plots.heatmap_figure(alphas).axes for r in ax.patches   # no genotype: no outlines
                if isinstance(r, Rectangle)]


def test_per_edge_heatmap_shows_pc_darts_op_ranking_without_the_edge_factor(shared_run) -> None:
    """PC-DARTS psi = edge factor x softmax(alpha): the factor set each row's colours. The per-edge
    view divides it out, leaving softmax(alpha) exactly (arch.py's EdgeNormArch)."""
    from diffnas.arch import EdgeNormArch

    alphas = plots.load_alphas(shared_run[0] / "alphas.pt")
    layers, edges, ops = alphas["history"].shape[1:]
    arch = EdgeNormArch(layers, 2, alphas["ops"], alphas["reductions"])
    with torch.no_grad():
        for p in arch.parameters():
            p.copy_(3 * torch.randn_like(p))
    alphas["history"] = arch.weights().detach().unsqueeze(0)
    fig, plain = plots.heatmap_figure(alphas, per_edge=True), plots.heatmap_figure(alphas)
    assert fig.texts[0].get_text().startswith("ops' shares of each edge's weight")
    panels = zip(plots.cell_views(alphas), [a for a in fig.axes if a.images], [a for a in plain.axes if a.images])
    for (title, k), ax, plain_ax in panels:
        alpha = arch.alpha_reduce if title.startswith("reduction") else arch.alpha_normal
        shown = [float(t.get_text()) for t in ax.texts]
        assert shown == pytest.approx(torch.softmax(alpha.detach(), -1).flatten().tolist(), abs=6e-3)
        assert [float(t.get_text()) for t in plain_ax.texts] != pytest.approx(shown, abs=6e-3)   # the factor's view


def test_one_epoch_curves_have_one_integer_tick() -> None:
    fig = plots.curves_figure([{"epoch": 1, "train_loss": 2.0, "val_loss": 2.1, "train_acc": 0.1, "val_acc": 0.1,
                                "w_lr": 0.025, "alpha_lr": 3e-4}])
    for ax in fig.axes:
        assert list(ax.get_xticks()) == [1]


def test_evolution_panels_follow_history(global_run: tuple[Path, list[Path], list[str]]) -> None:
    alphas = plots.load_alphas(global_run[0] / "alphas.pt")
    h = alphas["history"]
    fig = plots.evolution_figure(alphas, layer=2)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == h.shape[2]
    assert len(fig.legends) == 1
    for e, ax in enumerate(panels):
        assert ax.get_title() == plots.edge_labels(alphas["edges"])[e]
        for o, line in enumerate(ax.get_lines()):
            assert line.get_label() == alphas["ops"][o]
            assert torch.allclose(torch.tensor(line.get_ydata(), dtype=torch.float32), h[:, 2, e, o].float())


def test_evolution_of_an_edge_factor_run_draws_each_ops_share_and_one_epoch_has_one_tick(global_run, tmp_path,
                                                                                          monkeypatch) -> None:
    """PC-DARTS's beta set a shared axis of 0.025 to 0.063 on which an edge's ops, 1e-4 apart, drew as
    one line; a history of the start alone had its x axis ticked at -0.04 ... 0.04."""
    alphas = plots.load_alphas(global_run[0] / "alphas.pt")
    h = alphas["history"]
    fig = plots.evolution_figure(alphas, layer=2, per_edge=True)
    shares = h[:, 2] / h[:, 2].sum(-1, keepdim=True)
    for e, ax in enumerate(ax for ax in fig.axes if ax.get_visible()):
        for o, line in enumerate(ax.get_lines()):
            assert torch.allclose(torch.tensor(line.get_ydata(), dtype=torch.float32), shares[:, e, o].float())
    assert "each op's share of its edge's psi" in fig._suptitle.get_text()
    start = plots.evolution_figure({**alphas, "history": h[:1]}, layer=0)
    assert all(list(ax.get_xticks()) == [0] for ax in start.axes if ax.get_visible())
    # a run's figures: per edge where psi holds an edge factor
    asked = []
    real = run_figures.evolution_figure
    monkeypatch.setattr(run_figures, "evolution_figure", lambda *a, **kw: asked.append(kw.get("per_edge")) or
                        real(*a, **kw))
    run = write_search_run(tmp_path / "pc", layers=3, nodes=2, omit={"metrics.jsonl"})
    config = __import__("json").loads((run / "config.json").read_text())
    (run / "config.json").write_text(__import__("json").dumps({**config, "arch": "pc"}))
    report.plot_run(run, tmp_path / "out")
    assert asked and all(asked)


def test_evolution_draws_the_genotypes_ops_thick_and_on_top(global_run) -> None:
    """Five ops within 1e-3 of each other hid the chosen one under the last-drawn line."""
    run = global_run[0]
    alphas, genotype = plots.load_alphas(run / "alphas.pt"), G.load(str(run / "genotype.json"))
    layer = 1
    reduction = layer in alphas["reductions"]
    genes = set(plots.chosen_genes(genotype, layer, reduction, alphas["ops"], alphas["edges"]))
    assert genes
    fig = plots.evolution_figure(alphas, layer, genotype=genotype)
    assert fig.texts[0].get_text().endswith("; thick: the genotype's op")
    for e, ax in enumerate(ax for ax in fig.axes if ax.get_visible()):
        for o, line in enumerate(ax.get_lines()):
            gene = (e, o) in genes
            assert (line.get_linewidth() > 2, line.get_zorder() > 2) == (gene, gene)
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == list(alphas["ops"])
    assert {line.get_linewidth() for line in legend.get_lines()} == {1.5}   # not a panel's thick gene
    plain = plots.evolution_figure(alphas, layer)
    assert "thick" not in plain.texts[0].get_text()
    assert {line.get_linewidth() for ax in plain.axes for line in ax.get_lines()} == {1.3}


def test_network_figure_marks_reductions(global_run: tuple[Path, list[Path], list[str]]) -> None:
    genotype = G.load(str(global_run[0] / "genotype.json"))
    fig = plots.network_figure(genotype)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == [f"{k}\n{'R' if c.reduction else 'N'}" for k, c in enumerate(genotype.cells_)]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert sorted(legend) == sorted({op for c in genotype.cells_ for op, _ in c.genes})
    assert "(" not in fig._suptitle.get_text().splitlines()[0]
    # the key names the inputs as the other figures do (an f-string once read c_{k-2} as c_0)
    assert "input (c_{k-2}, c_{k-1} or node 0, 1, ...)" in fig._suptitle.get_text().splitlines()[1]
    so_far = plots.network_figure(genotype, "after epoch 1, not finished")._suptitle.get_text()
    assert so_far.splitlines()[0] == "per-layer architecture (after epoch 1, not finished)"


def test_network_figure_names_inputs_as_the_other_figures_do_in_legible_text() -> None:
    """Its boxes said k-2, k-1, n0 in 6-point text, where the heatmaps and cell diagrams say c_{k-2},
    c_{k-1}, 0."""
    darts = G.load("DARTS_V2")
    cells = (darts.cell(False), darts.cell(True), darts.cell(False))
    ax = plots.network_figure(G.CellwiseGenotype(cells)).axes[0]
    shown = {(round(t.get_position()[0]), round(t.get_position()[1])): t for t in ax.texts}
    for k, cell in enumerate(cells):
        for g, (_, j) in enumerate(cell.genes):
            assert shown[(k, g)].get_text() == plots.node_name(j)
            assert shown[(k, g)].get_fontsize() >= 8


@pytest.mark.parametrize("kind", ["search", "train"])
def test_curves_show_the_recorded_series(kind: str) -> None:
    records = search_metrics(4) if kind == "search" else train_metrics(4)
    fig = plots.curves_figure(records)
    legends = [[t.get_text() for t in ax.get_legend().get_texts()] for ax in fig.axes]
    if kind == "search":
        assert legends == [["train_loss", "val_loss"], ["train_acc", "val_acc"], ["w_lr", "alpha_lr"]]
        assert fig.axes[2].get_yscale() == "log"
    else:
        assert legends == [["train_loss", "test_loss"], ["train_acc", "test_acc"], ["lr"]]
    val = fig.axes[0].get_lines()[1]
    assert list(val.get_ydata()) == [r[f"{'val' if kind == 'search' else 'test'}_loss"] for r in records]
    # each y axis says what it measures (they had none, only the panel titles)
    assert [ax.get_ylabel() for ax in fig.axes] == [
        "cross-entropy (mean per image)", "top-1 accuracy (%)",
        "learning rate (log scale)" if kind == "search" else "learning rate"]


def test_plot_curves_is_cheap_and_tolerates_a_partial_line(tmp_path: Path) -> None:
    run = write_search_run(tmp_path / "r", omit={"metrics.jsonl", "alphas.pt", "genotype.json"})
    assert report.plot_curves(run) == []
    (run / "metrics.jsonl").write_text('{"epoch": 0, "train_loss": 2.0}\n{"epoch": 1, "tr')  # still being written
    paths = report.plot_curves(run)
    assert sorted(p.name for p in paths) == ["curves.png", "curves.svg"]
    check_figures(paths)


def test_broken_pieces_are_reported_and_the_rest_drawn(tmp_path: Path) -> None:
    run = write_search_run(tmp_path / "r", layers=3, nodes=2, omit={"metrics.jsonl"})
    (run / "alphas.pt").write_bytes(b"not a torch file")
    (run / "genotype.json").write_text('{"normal": [["sep_conv_3x3", 0]]}')
    notes: list[str] = []
    assert report.plot_run(run, tmp_path / "out", notes=notes) == []
    assert len(notes) == 3, notes
    assert notes[0] == "no metrics.jsonl: learning curves skipped"
    assert "alphas.pt: not a file torch.save writes" in notes[1] and notes[1].endswith("skipped")
    assert notes[2].startswith("genotype.json unreadable") and notes[2].endswith("cell diagrams skipped")
    write_search_run(run, layers=3, nodes=2, omit={"metrics.jsonl", "alphas.pt"})  # a good genotype now
    notes.clear()
    paths = report.plot_run(run, tmp_path / "out", notes=notes)
    assert stems(paths, ".dot") == {"cell_normal", "cell_reduce"} and all(p.parent == tmp_path / "out" for p in paths)
    assert len(notes) == 2 and "alphas.pt: not a file torch.save writes" in notes[1]


def test_empty_or_missing_folder_is_a_one_line_error(tmp_path: Path) -> None:
    for bad in (tmp_path / "nope", tmp_path):
        with pytest.raises(DiffnasError) as err:
            report.plot_run(bad)
        assert "\n" not in str(err.value) and str(bad) in str(err.value)


def test_cli_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from diffnas.cli import plot as plot_cmd

    parser = argparse.ArgumentParser(prog="diffnas")
    plot_cmd.register(parser.add_subparsers(dest="command"))
    run = write_train_run(tmp_path / "t", omit={"metrics.jsonl"})  # genotype only: cell diagrams are cheap
    args = parser.parse_args(["plot", str(run), "--out", str(tmp_path / "figs")])
    assert args.func(args) == 0
    out, err = capsys.readouterr()
    printed = [Path(line) for line in out.splitlines()]
    assert {p.name for p in printed} == {f"cell_{c}.{x}" for c in ("normal", "reduce") for x in ("dot", "png", "svg")}
    assert all(p.is_file() and p.parent == tmp_path / "figs" for p in printed)
    assert "no metrics.jsonl" in err and "no alphas.pt" not in err   # a train run never has alphas.pt
    assert err.splitlines()[0] == f"diffnas: drawing the figures of {run}"   # said first: it takes seconds


def test_plot_out_that_is_a_file_is_one_line_before_drawing(tmp_path: Path, capsys) -> None:
    """--out naming a file (or a path under one) failed with the OS's 'File exists' after the data was read."""
    from cli_helpers import fails

    run = write_train_run(tmp_path / "t", omit={"metrics.jsonl"})
    (tmp_path / "afile").write_text("x")
    for out in (tmp_path / "afile", tmp_path / "afile" / "sub"):
        err = fails(capsys, ["plot", str(run), "--out", str(out)], f"--out: {tmp_path / 'afile'} is a file, not a folder")
        assert "drawing" not in err
    assert (tmp_path / "afile").read_text() == "x"


@pytest.mark.parametrize("threshold, marked", [(0.3, True), (2.0, False)])
def test_heatmap_marks_the_fairdarts_threshold_on_its_scale(shared_run, threshold, marked) -> None:
    """A sigmoid search keeps the ops whose psi passes the threshold: the heatmap showed the genes
    (outlines) but not the line they had to pass."""
    alphas = plots.load_alphas(shared_run[0] / "alphas.pt")
    final = alphas["history"][-1]
    alphas["history"] = (torch.arange(final.numel(), dtype=torch.float32).view_as(final) / final.numel()).unsqueeze(0)
    fig = plots.heatmap_figure(alphas, threshold=threshold)
    bar = next(ax for ax in fig.axes if not ax.images and ax.get_label() == "<colorbar>")
    lines = [line for line in bar.get_lines() if line.get_color() == "red"]
    title = " ".join(fig.texts[0].get_text().split())   # wrapped to the figure's width
    if marked:
        assert len(lines) == 1 and list(lines[0].get_ydata()) == [threshold, threshold]
        assert "; red line on the scale: the threshold 0.3;" in title
    else:
        assert not lines and "; the threshold 2 is above every weight;" in title
    plain = plots.heatmap_figure(alphas)   # no threshold: nothing marked
    assert "threshold" not in plain.texts[0].get_text()
    per_edge = plots.heatmap_figure(alphas, per_edge=True, threshold=threshold)   # shares: not psi's scale
    assert "threshold" not in per_edge.texts[0].get_text()


def test_plot_run_passes_a_sigmoid_searchs_threshold(tmp_path, monkeypatch) -> None:
    import json

    seen = []
    real = plots.heatmap_figure
    monkeypatch.setattr(run_figures, "heatmap_figure",
                        lambda *a, **k: seen.append(k.get("threshold")) or real(*a, **k))
    run = write_search_run(tmp_path / "s", epochs=1)
    config = json.loads((run / "config.json").read_text())
    for arch, value, want in (("softmax", 0.7, None), ("sigmoid", 0.7, 0.7), ("sigmoid", None, 0.85)):
        saved = {**config, "arch": arch, **({"threshold": value} if value is not None else {})}
        (run / "config.json").write_text(json.dumps(saved))
        seen.clear()
        report.plot_run(run, tmp_path / f"out-{arch}-{value}")
        assert seen == [want], (arch, value)


def test_every_column_of_edge_panels_shows_its_epochs(tmp_path) -> None:
    """14 edges in a 3 x 5 grid: the panel above the empty slot had no epoch tick labels."""
    run = write_search_run(tmp_path / "r", shared=False, layers=3, nodes=4, epochs=2)
    alphas = plots.load_alphas(run / "alphas.pt")
    n = len(alphas["edges"])
    fig = plots.evolution_figure(alphas, layer=0)
    fig.canvas.draw()   # tick labels exist once drawn
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == n and n % 5
    for c in range(5):
        column = panels[c::5]
        labelled = [ax for ax in column if any(t.get_visible() and t.get_text() for t in ax.get_xticklabels())]
        assert labelled == [column[-1]] and column[-1].get_xlabel() == "epoch"


def test_curves_show_accuracy_in_percent() -> None:
    fig = plots.curves_figure([{"epoch": 1, "train_acc": 0.25, "val_acc": 0.5}, {"epoch": 2, "train_acc": 0.5}])
    ax = fig.axes[1]
    assert ax.get_title() == "accuracy (%)"
    assert [list(line.get_ydata()) for line in ax.get_lines()] == [[25.0, 50.0], [50.0]]


def test_heatmap_values_tell_apart_the_ops_of_each_edge_when_edges_weigh_differently(
        shared_run: tuple[Path, list[Path], list[str]]) -> None:
    """PC-DARTS: psi = op share x edge weight, rows at 1/2 .. 1/5 of 1/8; the scale's 3 decimals printed
    every value of a row alike (0.025), hiding which op the genotype picked in it."""
    alphas = plots.load_alphas(shared_run[0] / "alphas.pt")
    final = alphas["history"][-1]
    edges, ops = final.shape[1:]
    level = torch.linspace(0.0625, 0.025, edges).view(edges, 1)   # each edge its own level
    spread = 1e-4 * torch.arange(ops, dtype=torch.float32) / ops     # the ops within 1e-4 of each other
    alphas["history"] = (level + spread).expand_as(final).unsqueeze(0).clone()
    fig = plots.heatmap_figure(alphas)
    for ax in [a for a in fig.axes if a.images]:
        shown = [float(t.get_text()) for t in ax.texts]
        for row in range(edges):
            assert len(set(shown[row * ops:(row + 1) * ops])) > ops // 2, shown[row * ops:(row + 1) * ops]


def test_cell_diagram_labels_are_dark_enough_to_read_on_white() -> None:
    """sep_conv_5x5's orange (#e69f00) labels were 2.0:1 against the white page; WCAG AA asks 4.5:1 for text."""
    from diffnas import celldiagram as C

    def contrast(colour: str) -> float:
        return C.contrast(colour, "#ffffff")

    # the WCAG figures every contrast checker gives: #767676 passes at 4.54:1, #777777 fails at 4.48:1; black on
    # white 21:1, either order
    assert contrast("#767676") == pytest.approx(4.54, abs=0.01) and contrast("#777777") == pytest.approx(4.48, abs=0.01)
    assert C.contrast("#000000", "#ffffff") == C.contrast("#ffffff", "#000000") == pytest.approx(21)
    for op in [*C.OP_COLORS, "some_new_op", "another_op"]:
        edge = C.op_color(op)
        label = C.label_color(edge)
        assert contrast(label) >= 4.5, (op, edge, label)
        if contrast(edge) >= 4.5:
            assert label == edge   # dark enough already: unchanged
    text = C.cell_dot(G.load("DARTS_V2").cell(False))
    assert f'fontcolor="{C.label_color(C.op_color("sep_conv_3x3"))}"' in text
    assert f'color="{C.op_color("sep_conv_3x3")}"' in text   # the edge keeps the op's colour


def test_the_network_figures_box_labels_take_the_ink_that_contrasts_more() -> None:
    """The input labels on the op-coloured boxes were chosen by gamma-encoded luminance: white on
    skip_connect's green (#009e73, 3.4:1) and sep_conv_3x3's vermilion (#d55e00, 3.9:1), where black
    gives 6.1:1 and 5.4:1."""
    from matplotlib.colors import to_hex

    from diffnas import celldiagram as C

    darts = G.load("DARTS_V2")   # sep_conv_3x3, skip_connect, dil_conv_3x3; max_pool_3x3 in the reduction cell
    fig = plots.network_figure(G.CellwiseGenotype((darts.cell(False), darts.cell(True), darts.cell(False))))
    ax = fig.axes[0]
    fills = {(round(p.get_x() + 0.42, 6), round(p.get_y() + 0.42, 6)): to_hex(p.get_facecolor())
             for p in ax.patches if p.get_width() < 1}   # the gene boxes, not the reduction cell's frame
    checked = set()
    for text in ax.texts:
        fill = fills[tuple(round(v, 6) for v in text.get_position())]
        ink, other = to_hex(text.get_color()), to_hex("white" if text.get_color() == "black" else "black")
        assert C.contrast(fill, ink) >= C.contrast(fill, other), (text.get_text(), fill, ink)
        checked.add(fill)
    assert {C.op_color("skip_connect"), C.op_color("sep_conv_3x3"), C.op_color("max_pool_3x3")} <= checked
    assert C.text_on("#009e73") == C.text_on("#d55e00") == "black" and C.text_on("#332288") == "white"


@pytest.mark.parametrize("shared", [True, False])
def test_drawing_a_runs_figures_shows_how_many_are_left(tmp_path: Path, capsys, monkeypatch, shared) -> None:
    """A DNAS search's figures took 15-45 s after one 'drawing the figures' line and nothing more; a bar
    now counts them: curves, heatmap, one weight evolution per cell view, the cell diagrams (and the
    per-layer network of a per-cell genotype)."""
    run = write_search_run(tmp_path / "run", shared=shared, layers=3, nodes=2, epochs=2)
    views = 2 if shared else 3
    total = 1 + 1 + views + 1 + (0 if shared else 1)
    bars_from_the_start(monkeypatch)   # captured stderr is a log: no 30 s wait
    paths = report.plot_run(run)
    err = capsys.readouterr().err
    assert f"figures:   0%|          | 0/{total} " in err, err
    assert len({p.stem for p in paths if p.suffix == ".png" and not p.stem.startswith("cell_")}) == total - 1


def test_an_alphas_file_that_is_not_torchs_is_said_in_a_few_words(tmp_path: Path) -> None:
    """A garbage alphas.pt gave torch's paragraph advising to rerun torch.load with weights_only=False
    ("can result in arbitrary code execution"); a damaged one its first sentence only."""
    path = tmp_path / "alphas.pt"
    path.write_bytes(b"garbage, not a tensor file\n")
    with pytest.raises(DiffnasError) as info:
        plots.load_alphas(path)
    assert str(info.value) == f"{path}: not a file torch.save writes"
    torch.save({"history": torch.zeros(2, 1, 2, 3)}, path)
    path.write_bytes(path.read_bytes()[:40])   # cut short
    with pytest.raises(DiffnasError) as info:
        plots.load_alphas(path)
    said = str(info.value)
    assert said.startswith(f"{path}: cannot read (") and "weights_only" not in said and len(said) < len(str(path)) + 160


def _printed(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_heatmap_prints_every_panel_with_one_number_format_and_each_edges_top_two_apart(global_run) -> None:
    """DNAS panels were printed with 3 decimals in one layer and 4 in the next, and an edge's chosen op and
    its runner-up read alike (0.039, 0.039) where the row's span alone set the decimals."""
    alphas = plots.load_alphas(global_run[0] / "alphas.pt")
    final = alphas["history"][-1].clone()
    layers, edges, ops = final.shape
    final[:] = torch.linspace(0.01, 0.3, ops)          # a wide spread in every row: 2 decimals would do
    final[0, 0, :] = 0.001
    final[0, 0, 1:3] = torch.tensor([0.0394, 0.0391])   # but this edge's top two ops are 3e-4 apart
    alphas["history"] = final.unsqueeze(0)
    fig = plots.heatmap_figure(alphas)
    panels = [ax for ax in fig.axes if ax.images]
    formats = {len(text.split(".")[1]) for ax in panels for text in _printed(ax)}
    assert len(formats) == 1, formats
    first = _printed(panels[0])
    assert first[1] != first[2] and float(first[1]) > float(first[2])


def test_heatmap_tells_weights_near_the_threshold_from_it_and_dashes_those_past_it_but_no_gene(shared_run) -> None:
    """FairDARTS: 0.85044 and 0.85442 both printed "0.85" against the threshold 0.85, one a gene and one
    not (its node kept no input), and nothing in the figure said why the larger was left out."""
    from matplotlib.patches import Rectangle

    alphas = plots.load_alphas(shared_run[0] / "alphas.pt")
    final = alphas["history"][-1]
    layers, edges, ops = final.shape
    psi = torch.full_like(final, 0.2)
    psi[:, 0, 1] = 0.85044   # a gene
    psi[:, 1, 2] = 0.85442   # past the threshold, yet no gene in the genotype below
    alphas["history"] = psi.unsqueeze(0)
    op = alphas["ops"]
    nodes = [e for e in alphas["edges"] if e[1] == 2]
    assert len(nodes) == 2   # the fixture's cells have 2 nodes: edges 0, 1 into node 0
    cell = G.Cell(((op[1], 0), (op[0], 1), (op[0], 0), (op[0], 1)), (2, 3))
    genotype = G.Genotype(cell.genes, cell.concat, cell.genes, cell.concat)
    fig = plots.heatmap_figure(alphas, genotype, threshold=0.85)
    for ax in [a for a in fig.axes if a.images]:
        printed = _printed(ax)
        assert printed[1] not in ("0.85", "0.850") and float(printed[1]) > 0.85
        assert float(printed[ops + 2]) > 0.85 and printed[ops + 2] != printed[1]
        dashed = {(round(r.get_y() + 0.5), round(r.get_x() + 0.5)) for r in ax.patches
                  if isinstance(r, Rectangle) and r.get_linestyle() == "--"}
        assert dashed == {(1, 2)}
    assert "dashed: past the threshold but no gene" in fig.texts[0].get_text()
    bar = next(ax for ax in fig.axes if not ax.images and ax.get_label() == "<colorbar>")
    low, high = bar.get_ylim()
    assert high - 0.85442 > 0.02 * (high - low)   # the threshold's line is not in the scale's frame
    plain = plots.heatmap_figure(alphas, genotype)   # no threshold: no dashes
    assert not [r for ax in plain.axes for r in ax.patches if r.get_linestyle() == "--"]


def test_table_decimals_of_weights_with_nan_rows_come_from_the_finite_ones() -> None:
    """A run saved without its NaN checks can hold NaN weights: plot and report raised ValueError."""
    psi = torch.tensor([[[0.1, 0.1004, 0.5], [float("nan"), 0.2, 0.3]]])
    assert plots.table_decimals(psi) == plots.table_decimals(psi[:, :1])
    assert plots.table_decimals(torch.full((1, 2, 3), float("inf"))) == 2


def test_heatmap_decimals_ignore_a_near_tie_of_an_op_with_none(global_run) -> None:
    """`none` is never a gene: its near-tie with an edge's strongest op decides nothing, yet it pushed
    every panel to 5 decimals."""
    alphas = plots.load_alphas(global_run[0] / "alphas.pt")
    ops = list(alphas["ops"])
    assert "none" in ops
    final = alphas["history"][-1].clone()
    final[:] = torch.linspace(0.01, 0.3, len(ops))   # a wide spread in every row

    def formats() -> set[int]:
        alphas["history"] = final.unsqueeze(0)
        panels = [ax for ax in plots.heatmap_figure(alphas).axes if ax.images]
        return {len(text.split(".")[1]) for ax in panels for text in _printed(ax)}

    spread = formats()
    assert spread != {5}
    none, strongest = ops.index("none"), int(final[0, 0].argmax())
    final[0, 0, none] = final[0, 0, strongest] - 1e-5   # none within 1e-5 of the edge's strongest op
    assert formats() == spread
    final[0, 0, none] = 0.0
    other = next(o for o in range(len(ops)) if o not in (none, strongest))
    final[0, 0, other] = final[0, 0, strongest] - 1e-5   # an op's near-tie does count
    assert formats() == {5}


def test_evolution_of_a_layer_the_weights_do_not_have_is_a_config_error(global_run) -> None:
    """evolution_figure(alphas, 7) on 3 layers was a bare IndexError from the tensor."""
    from diffnas.errors import ConfigError

    alphas = plots.load_alphas(global_run[0] / "alphas.pt")
    with pytest.raises(ConfigError, match=r"^layer: 7 is not a layer of these weights \(0..2; reduction cells: 1, 2\)$"):
        plots.evolution_figure(alphas, 7)
    import numpy as np

    for layer in (2, np.int64(2), torch.tensor(2), -1):   # as the tensor's own indexing takes them
        fig = plots.evolution_figure(alphas, layer)
        assert fig._suptitle.get_text().endswith("layer 2")


def test_the_colour_scale_spans_the_ops_that_can_be_genes_and_a_title_wraps_to_the_figure(shared_run) -> None:
    """A `none` grown large (late DARTS) set the top of the colour scale and pressed the real ops into one
    colour; a small op set's narrow figure cut its one-line title off at both sides."""
    alphas = plots.load_alphas(shared_run[0] / "alphas.pt")
    final = alphas["history"][-1].clone()
    none = list(alphas["ops"]).index("none")
    final[..., none] += 0.6   # none far above every op
    alphas["history"] = final.unsqueeze(0)
    fig = plots.heatmap_figure(alphas)
    others = final[..., [o for o in range(final.shape[-1]) if o != none]]
    for ax in (a for a in fig.axes if a.images):
        assert ax.images[0].get_clim() == pytest.approx((float(others.min()), float(others.max())))
    assert "none (never a gene) lies beyond the colour scale, its value printed" in " ".join(
        fig.texts[0].get_text().split())
    final[..., none] = float(others.mean())   # none inside the others' span: nothing beyond the scale
    assert "beyond" not in plots.heatmap_figure({**alphas, "history": final.unsqueeze(0)}).texts[0].get_text()
    few = {**alphas, "ops": alphas["ops"][:3], "history": alphas["history"][..., :3]}
    fig = plots.heatmap_figure(few, threshold=0.85)
    fig.canvas.draw()
    box, title = fig.bbox, fig.texts[0].get_window_extent()
    assert len(fig.texts[0].get_text().splitlines()) > 1 and box.x0 <= title.x0 and title.x1 <= box.x1


def test_a_genotype_that_does_not_fit_the_weights_is_refused_not_drawn_without_its_genes(shared_run,
                                                                                       global_run) -> None:
    """heatmap_figure(alphas, genotype) outlined nothing, without a word, where the genotype was another
    search space's (another op set, node count or cell count): the caller took it for the genes."""
    from diffnas.errors import ConfigError

    alphas = plots.load_alphas(shared_run[0] / "alphas.pt")   # 2 nodes, the 8 ops
    fits = G.load(str(shared_run[0] / "genotype.json"))
    cell = fits.normal
    other_op = G.Genotype([("conv_7x1_1x7", 0), *cell[1:]], fits.normal_concat, fits.reduce, fits.reduce_concat)
    three_nodes = G.Genotype([*cell, ("skip_connect", 0), ("skip_connect", 1)], [2, 3, 4], fits.reduce,
                             fits.reduce_concat)
    for genotype, why in ((other_op, r"its normal cell has 'conv_7x1_1x7', not among these weights' ops \(none, "),
                          (three_nodes, "its normal cell has 3 nodes, these weights' 2"),
                          (G.CellwiseGenotype(tuple(fits.cells(4))), "it has 4 cells, these weights 5 layers")):
        for draw in (lambda: plots.heatmap_figure(alphas, genotype), lambda: plots.evolution_figure(alphas, 0,
                                                                                                    genotype=genotype)):
            with pytest.raises(ConfigError, match="^genotype: does not fit these architecture weights \\(" + why):
                draw()
    plots.heatmap_figure(alphas, G.CellwiseGenotype(tuple(fits.cells(5))))   # its cells, one per layer: fits
    cellwise = plots.load_alphas(global_run[0] / "alphas.pt")   # a per-cell search's own genotype fits
    plots.heatmap_figure(cellwise, G.load(str(global_run[0] / "genotype.json")))


def test_a_run_whose_genotype_json_is_another_spaces_draws_its_weights_without_outlines_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = write_search_run(tmp_path / "r", layers=3, nodes=2, omit={"metrics.jsonl"})
    three = G.Genotype([("skip_connect", 0), ("skip_connect", 1)] * 3, [2, 3, 4],
                       [("max_pool_3x3", 0), ("max_pool_3x3", 1)] * 3, [2, 3, 4])
    (run / "genotype.json").write_text(__import__("json").dumps(three.to_dict()))
    outlined = []
    heatmap, evolution = run_figures.heatmap_figure, run_figures.evolution_figure
    monkeypatch.setattr(run_figures, "heatmap_figure", lambda a, g, **kw: outlined.append(g) or heatmap(a, g, **kw))
    monkeypatch.setattr(run_figures, "evolution_figure", lambda a, k, t, g, **kw: outlined.append(g) or
                        evolution(a, k, t, g, **kw))
    notes: list[str] = []
    paths = report.plot_run(run, tmp_path / "out", notes=notes)
    assert ("the genotype does not fit alphas.pt (its normal cell has 3 nodes, these weights' 2): the weight "
            "figures outline no genes") in notes
    assert {"weights_heatmap", "cell_normal", "cell_reduce"} <= stems(paths, ".png")
    assert len(outlined) == 3 and outlined == [None] * 3   # the heatmap and the two evolution figures


def test_a_redrawing_removes_the_figures_it_no_longer_makes_and_only_those(tmp_path: Path) -> None:
    """A per-cell run redrawn after its cells changed (two layers' cells now one) left the old cell_NN
    diagrams beside the new ones, read as the run's."""
    import json

    run = write_search_run(tmp_path / "r", shared=False, layers=3, nodes=1, epochs=2, omit={"metrics.jsonl"})
    out = tmp_path / "out"
    first = {p.name for p in report.plot_run(run, out)}
    cells = sorted(n for n in first if n.startswith("cell_") and n.endswith(".dot"))
    assert len(cells) >= 2, first
    (out / "mine.txt").write_text("a file of the user's")
    g = G.load(str(run / "genotype.json"))
    same = G.CellwiseGenotype(tuple(g.cells_[1] if c.reduction else g.cells_[0] for c in g.cells_))   # fewer cells
    (run / "genotype.json").write_text(json.dumps(same.to_dict()))
    second = {p.name for p in report.plot_run(run, out)}
    on_disk = {p.name for p in out.iterdir()} - {".drawn.json", "mine.txt"}
    assert second != first   # the cells changed
    assert on_disk == second, on_disk ^ second   # nothing stale, nothing missing
    assert (out / "mine.txt").exists()


def test_warm_up_epochs_are_shaded_on_the_curves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PC-DARTS search's warm-up epochs plotted alpha_lr 6e-4 where alpha did not move, unmarked."""
    records = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.1 / e, "w_lr": 0.1, "alpha_lr": 6e-4}
               for e in range(1, 5)]
    fig = plots.curves_figure(records, warmup_epochs=2)
    for ax in fig.axes:
        (span,) = ax.patches   # axvspan: a Rectangle (matplotlib >= 3.9) or a Polygon, in data x
        xs = ([span.get_x(), span.get_x() + span.get_width()] if hasattr(span, "get_width")
              else [v[0] for v in span.get_xy()])
        assert (min(xs), max(xs)) == (0.5, 2.5)
    assert "warm-up: alpha fixed" in [t.get_text() for t in fig.axes[2].get_legend().get_texts()]
    assert not [p for ax in plots.curves_figure(records).axes for p in ax.patches]   # no warm-up: no band
    asked = []
    monkeypatch.setattr(run_figures, "curves_figure", lambda records, warmup: asked.append(warmup) or
                        plots.curves_figure(records, warmup))
    run = write_search_run(tmp_path / "r", layers=3, nodes=2, epochs=3)
    config = __import__("json").loads((run / "config.json").read_text())
    (run / "config.json").write_text(__import__("json").dumps({**config, "command": "search", "warmup_epochs": 2}))
    report.plot_run(run, tmp_path / "out")
    run_figures.plot_curves(run, tmp_path / "out2")
    assert asked == [2, 2]
