import json
import re

import pytest
import torch
from hypothesis import given, settings, strategies as st

from diffnas import discretise as D, genotype as G
from diffnas.errors import GenotypeError
from diffnas.ops import PRIMITIVES


@pytest.mark.parametrize("name", list(G.KNOWN))
def test_known_round_trips(name):
    g = G.KNOWN[name]
    assert G.parse(str(g)) == g
    assert G.from_json(G.to_json(g)) == g


def test_paper_notation_with_range_and_positional():
    text = ("Genotype([('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), "
            "('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], range(2, 6), "
            "[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), "
            "('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], range(2, 6))")
    g = G.parse(text)
    assert g.normal_concat == (2, 3, 4, 5) and g.reduce[7] == ("avg_pool_3x3", 0)


def test_cellwise_round_trip_and_layers():
    cells = tuple(G.Cell((("sep_conv_3x3", 0), ("skip_connect", 1)) * 2, (2, 3), k in (1, 2)) for k in range(4))
    g = G.CellwiseGenotype(cells)
    assert G.from_json(G.to_json(g)) == g
    assert len(g.cells(4)) == 4
    with pytest.raises(GenotypeError, match="cells"):
        g.cells(5)


def _mixed_cells():
    """Four cells, each different, reductions at 1 and 2 (the positions of a 4-cell network)."""
    ops = ["sep_conv_3x3", "max_pool_3x3", "dil_conv_5x5", "skip_connect"]
    genes = [((ops[k], 0), (ops[(k + 1) % 4], 1), (ops[(k + 2) % 4], 2), ("avg_pool_3x3", k % 2)) for k in range(4)]
    return G.CellwiseGenotype(tuple(G.Cell(genes[k], (2, 3), k in (1, 2)) for k in range(4)))


def test_the_reports_per_cell_lines_are_read_back_as_the_same_genotype(tmp_path):
    from diffnas.report import paper_notation

    g = _mixed_cells()
    text = paper_notation(g)
    assert text.splitlines()[1].startswith("cell 1 (reduce): [('max_pool_3x3', 0), ('dil_conv_5x5', 1)")
    assert G.load(text) == g
    (tmp_path / "cells.txt").write_text("\n" + text + "\n\n")
    assert G.load(str(tmp_path / "cells.txt")) == g
    with pytest.raises(GenotypeError, match="cells.txt: .*line of cell 2: .*expected cell number 2"):
        (tmp_path / "cells.txt").write_text(text.replace("cell 2", "cell 3"))
        G.load(str(tmp_path / "cells.txt"))


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("(reduce)", "(reduction)", 1), "line of cell 1: .*expected normal or reduce"),
    (lambda t: t.replace("concat=", "concat", 1), "line of cell 0: .*expected '='"),
    (lambda t: t.replace("\n", " x\n", 1), "line of cell 0: .*expected the end of the line"),
    (lambda t: t[:-2], "line of cell 3: .*text ends there"),
    (lambda t: t.replace("'dil_conv_5x5'", "'dil_conv_9x9'", 1), "cell 0: unknown op 'dil_conv_9x9'"),
    (lambda t: t.replace("(reduce)", "(normal)", 1), None),  # well formed: refused by the network, below
])
def test_per_cell_lines_that_are_wrong_say_which_line(edit, message):
    text = edit(G.cell_lines(_mixed_cells()))
    if message is None:
        with pytest.raises(GenotypeError, match="cell 1 reduction=False, but the network reduces at cells"):
            G.load(text).cells(4)
        return
    with pytest.raises(GenotypeError, match=message):
        G.load(text)


def test_network_depth_is_a_per_cell_genotypes_own_and_refuses_another():
    cells = tuple(G.Cell((("sep_conv_3x3", 0), ("skip_connect", 1)) * 2, (2, 3), k in (1, 2)) for k in range(4))
    per_cell = G.CellwiseGenotype(cells)
    assert G.network_depth(per_cell, None) == G.network_depth(per_cell, 4) == 4
    with pytest.raises(GenotypeError, match="has 4 cells but the network has 20.*layers=4"):
        G.network_depth(per_cell, 20)
    shared = G.load("DARTS_V2")
    assert G.network_depth(shared, None) is None and G.network_depth(shared, 8) == 8


@pytest.mark.parametrize("text,match", [
    ("Genotype(normal=[('sep_conv_3x3', 0)", "character"),
    ("Genotype(normal=[('sep_conv_3x3', 0), ('bogus_op', 1)], normal_concat=[2], reduce=[('skip_connect', 0), "
     "('skip_connect', 1)], reduce_concat=[2])", "unknown op 'bogus_op'"),
    ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 5)], normal_concat=[2], reduce=[('skip_connect', 0), "
     "('skip_connect', 1)], reduce_concat=[2])", "node 2 reads state 5"),
    ("Genotype(normal=[('sep_conv_3x3', 0)], normal_concat=[2], reduce=[], reduce_concat=[2])", "2 \\(op, input\\)"),
    ("__import__('os').system('true')", "must start with"),
    ("Genotype(normal=__import__('os'))", "only range"),
    ("Genotype(normal=[], normal_concat=[2], reduce=[], reduce_concat=[2], extra=1)", "unknown field"),
])
def test_malformed_text_gives_clear_error(text, match):
    with pytest.raises(GenotypeError, match=match):
        G.parse(text)


def test_malformed_json():
    with pytest.raises(GenotypeError, match="malformed"):
        G.from_json('{"normal": [["sep_conv_3x3", 0]')
    with pytest.raises(GenotypeError, match="lacks"):
        G.from_json('{"normal": []}')


def test_load_by_name_file_and_errors(tmp_path):
    assert G.load("DARTS_V2") == G.KNOWN["DARTS_V2"]
    p = tmp_path / "g.json"
    G.save(G.KNOWN["PDARTS"], p)
    assert G.load(str(p)) == G.KNOWN["PDARTS"]
    (tmp_path / "g.txt").write_text(str(G.KNOWN["DARTS_V1"]))
    assert G.load(str(tmp_path / "g.txt")) == G.KNOWN["DARTS_V1"]
    with pytest.raises(GenotypeError, match="did you mean 'DARTS_V2'"):
        G.load("DARTS_V3")
    (tmp_path / "bad.json").write_text('{"normal": [["sep_conv_3x3"')
    with pytest.raises(GenotypeError, match="bad.json"):
        G.load(str(tmp_path / "bad.json"))


def test_load_takes_the_released_codes_namedtuple_a_dict_and_a_result():
    """train(cfg, search(...)), train(cfg, g.to_dict()) and DARTS's genotypes.py namedtuple were all
    'expected a name, a path or Genotype(...) notation, got SearchResult' (API walk)."""
    from collections import namedtuple

    v2 = G.KNOWN["DARTS_V2"]
    released = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")   # quark0/darts genotypes.py
    assert G.load(released(list(v2.normal), range(2, 6), list(v2.reduce), range(2, 6))) == v2
    assert G.load(v2.to_dict()) == v2
    cells = tuple(G.Cell(v2.normal, v2.normal_concat, k in G.reduction_layers(3)) for k in range(3))
    assert G.load(G.CellwiseGenotype(cells).to_dict()) == G.CellwiseGenotype(cells)

    class Result:
        genotype = v2

    assert G.load(Result()) is v2
    with pytest.raises(GenotypeError, match="^normal: expected 2 \\(op, input\\) pairs per node, got 1 pair$"):
        G.load(released([("sep_conv_3x3", 0)], [2], [], [2]))
    with pytest.raises(GenotypeError, match="^genotype dict lacks reduce$"):
        G.load({k: v for k, v in v2.to_dict().items() if k != "reduce"})
    with pytest.raises(GenotypeError, match="^genotype: expected a name, a path, .* got int$"):
        G.load(3)


def test_load_run_folder_and_pipeline_folder(tmp_path):
    (tmp_path / "search-run").mkdir()
    G.save(G.KNOWN["PDARTS"], tmp_path / "search-run" / "genotype.json")
    (tmp_path / "pipeline" / "search").mkdir(parents=True)
    G.save(G.KNOWN["DARTS_V1"], tmp_path / "pipeline" / "search" / "genotype.json")
    assert G.load(str(tmp_path / "search-run")) == G.KNOWN["PDARTS"]
    assert G.load(str(tmp_path / "pipeline")) == G.KNOWN["DARTS_V1"]


@pytest.mark.parametrize("spec,message", [
    ("missing.json", "missing.json: no such file"),
    ("notes.TXT", "notes.TXT: no such file"),
    ("runs/nothing", "runs/nothing: no such file"),
    ("empty", "empty: a folder without genotype.json (a search run folder has one; a pipeline folder RUN has "
              "RUN/search/genotype.json)"),
    ("unfinished", "unfinished: a pipeline folder without search/genotype.json (its search has not finished; "
                   "go on with `diffnas run --resume unfinished`)"),
    ("stopped", "stopped: a search run without genotype.json: it has not finished; finish it with "
                "`diffnas search --resume stopped`"),
])
def test_load_says_what_is_wrong_with_a_path(tmp_path, monkeypatch, spec, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "unfinished" / "search").mkdir(parents=True)
    (tmp_path / "stopped").mkdir()   # a search interrupted before its last epoch: checkpoint, no genotype
    (tmp_path / "stopped" / "config.json").write_text('{"command": "search"}')
    (tmp_path / "stopped" / "checkpoint.pt").write_bytes(b"")
    from diffnas.notices import command_line

    with pytest.raises(GenotypeError) as info, command_line():   # said as to the command line's user
        G.load(spec)
    assert str(info.value) == message


@pytest.mark.parametrize("spec", ["~0", "__import__('os').system('ls /tmp')", "a/b(c)"])
def test_load_treats_code_like_text_as_no_path(spec):
    with pytest.raises(GenotypeError, match="is neither a known name"):
        G.load(spec)


def test_an_unknown_genotype_names_every_form_load_takes():
    """It named a known name, a file and Genotype(...) notation; random:SEED, run and pipeline folders and
    the per-cell notation, all taken, went unsaid. Each named form is checked to load."""
    with pytest.raises(GenotypeError) as info:
        G.load("NOPE")
    said = str(info.value)
    for form in ("random:SEED", "genotype.json", "a run or pipeline folder", "Genotype(...)", "`cell 0 (...)`"):
        assert form in said, form
    assert isinstance(G.load("random:3"), G.Genotype)
    per_cell = G.CellwiseGenotype(tuple(G.load("DARTS_V2").cells(3)))
    assert G.load(G.cell_lines(per_cell)) == per_cell and G.cell_lines(per_cell).startswith("cell 0 (")


@pytest.mark.parametrize("spec", ["darts_v2", "DARTS-V2", "dartsv2", "Darts_V2"])
def test_a_published_name_is_taken_up_to_case_and_separators(spec, tmp_path, monkeypatch):
    """`--genotype darts_v2` was refused with "did you mean 'DARTS_V2'?"; a file of that name still wins."""
    assert G.load(spec) is G.KNOWN["DARTS_V2"]
    monkeypatch.chdir(tmp_path)
    G.save(G.KNOWN["PDARTS"], tmp_path / spec)
    assert G.load(spec) == G.KNOWN["PDARTS"]


def test_a_node_with_one_pair_says_one_pair():
    with pytest.raises(GenotypeError, match=r"normal: expected 2 \(op, input\) pairs per node, got 1 pair$"):
        G.load("Genotype(normal=[('sep_conv_3x3', 0)], normal_concat=[2], reduce=[('max_pool_3x3', 0), "
               "('skip_connect', 1)], reduce_concat=[2])")


def test_load_suggests_the_published_name():
    with pytest.raises(GenotypeError, match=r"is neither a known name \(did you mean 'DARTS_V2'\?\)"):
        G.load("DARTS_V3")
    assert G.load("darts") is G.KNOWN["DARTS"] and G.load("Darts_V1") is G.KNOWN["DARTS_V1"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_parser_raises_only_its_own_error(text):
    try:
        parsed = G.parse(text)
    except GenotypeError:
        return
    assert_round_trips(parsed)


def assert_round_trips(parsed):
    """What the parser accepts is a genotype that reads back as itself, from its own notation."""
    assert isinstance(parsed, (G.Genotype, G.CellwiseGenotype))
    assert G.parse(str(parsed)) == parsed


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(list("Genotype(normal=[('sep_conv_3x3', 0)],_concat=range(2,6)reduce 0123)[]'\"")),
                max_size=120))
def test_parser_on_near_miss_text(chars):
    try:
        parsed = G.parse("Genotype(" + "".join(chars))
    except GenotypeError:
        return
    assert_round_trips(parsed)


def hand_weights(nodes, choices):
    """Weights where node i's edge j has op `choices[(i, j)]` at strength s, all else 0.01."""
    ops = list(PRIMITIVES)
    edges = sum(i + 2 for i in range(nodes))
    w = torch.full((edges, len(ops)), 0.01)
    start = 0
    for i in range(nodes):
        for j in range(i + 2):
            if (i, j) in choices:
                op, s = choices[(i, j)]
                w[start + j, ops.index(op)] = s
        start += i + 2
    return w


def test_top2_picks_strongest_edges_ignoring_none():
    w = hand_weights(3, {(0, 0): ("sep_conv_3x3", 0.5), (0, 1): ("dil_conv_5x5", 0.6),
                         (1, 0): ("none", 0.99), (1, 1): ("max_pool_3x3", 0.3), (1, 2): ("skip_connect", 0.4),
                         (2, 3): ("sep_conv_5x5", 0.9), (2, 1): ("avg_pool_3x3", 0.2)})
    cell = D.top2_cell(w, PRIMITIVES, 3)
    assert cell.genes == (("dil_conv_5x5", 1), ("sep_conv_3x3", 0),
                          ("skip_connect", 2), ("max_pool_3x3", 1),
                          ("sep_conv_5x5", 3), ("avg_pool_3x3", 1))
    assert cell.concat == (2, 3, 4)


def test_an_op_no_process_added_names_the_known_ones_and_how_an_added_one_is_known():
    """A genotype naming an op added to diffnas.ops.OPS in another process (its search's) said only
    "unknown op", with no list and no word of adding it."""
    from diffnas.errors import GenotypeError

    notation = repr(G.KNOWN["DARTS_V2"]).replace("'sep_conv_3x3'", "'conv_1x1'", 1)
    with pytest.raises(GenotypeError, match=r"unknown op 'conv_1x1'; known ops: none, .* \(an op added to "
                                            r"diffnas.ops.OPS is known only to the process that added it: add it "
                                            r"again first\)$"):
        G.load(notation)


def test_discretising_weights_of_another_shape_is_refused():
    """(9, 2) weights for a 2-node cell of 2 ops gave a cell, read off the wrong rows."""
    from diffnas.errors import GenotypeError

    for shape in ((9, 2), (5, 3)):
        with pytest.raises(GenotypeError, match=rf"^cannot discretise: weights of shape \({shape[0]}, {shape[1]}\), "
                                                r"where 2 nodes and 2 ops make \(5, 2\)$"):
            D.top2_cell(torch.rand(shape), ("skip_connect", "sep_conv_3x3"), 2)
        with pytest.raises(GenotypeError, match="^cannot discretise: weights of shape"):
            D.threshold_cell(torch.rand(shape), ("skip_connect", "sep_conv_3x3"), 2, 0.5)
    assert D.top2_cell(torch.rand(5, 2), ("skip_connect", "sep_conv_3x3"), 2).nodes == 2


def test_discretising_non_finite_weights_is_refused():
    """NaN alphas (a hand-written loop that diverged) gave a plausible all-skip_connect cell: NaN
    compares false with everything, so the first op and the first inputs won."""
    from diffnas.arch import build

    ops = ("skip_connect", "sep_conv_3x3")
    for bad in (float("nan"), float("inf")):
        w = torch.rand(5, 2)
        w[3, 1] = bad
        with pytest.raises(GenotypeError, match=r"^cannot discretise: the weights hold 1 non-finite values"):
            D.top2_cell(w, ops, 2)
        with pytest.raises(GenotypeError, match=r"^cannot discretise: the weights hold 1 non-finite"):
            D.threshold_cell(w, ops, 2, 0.5)
    arch = build("softmax", 3, 2, ops, (1, 2))
    with torch.no_grad():
        for p in arch.parameters():
            p.fill_(float("nan"))
    with pytest.raises(GenotypeError, match="non-finite"):
        arch.genotype()


def test_threshold_keeps_at_most_two_passing_edges():
    w = hand_weights(2, {(0, 0): ("sep_conv_3x3", 0.95), (0, 1): ("skip_connect", 0.5),
                         (1, 0): ("dil_conv_3x3", 0.9), (1, 1): ("sep_conv_5x5", 0.88), (1, 2): ("max_pool_3x3", 0.86)})
    cell = D.threshold_cell(w, PRIMITIVES, 2, 0.85)
    assert cell.genes == (("sep_conv_3x3", 0), ("none", 1), ("dil_conv_3x3", 0), ("sep_conv_5x5", 1))


def test_threshold_passes_at_the_threshold_and_leaves_out_nodes_that_keep_no_input():
    """FairDARTS threshold_sparse: kept when >= threshold; a node keeping nothing is not concatenated
    (DCOCell), and an input from it is not kept either (DCOCell skips edges from missing nodes)."""
    w = hand_weights(3, {(0, 0): ("sep_conv_3x3", 0.75), (0, 1): ("skip_connect", 0.2),
                         (1, 0): ("dil_conv_3x3", 0.5), (1, 1): ("max_pool_3x3", 0.4),
                         (2, 3): ("sep_conv_5x5", 0.99), (2, 1): ("avg_pool_3x3", 0.9)})
    cell = D.threshold_cell(w, PRIMITIVES, 3, 0.75)   # 0.75: exact in float32, so "at" is exact
    assert cell.genes == (("sep_conv_3x3", 0), ("none", 1),       # exactly at the threshold: kept
                          ("none", 0), ("none", 1),               # node 3: nothing passes, left out
                          ("avg_pool_3x3", 1), ("none", 3))       # node 4: its input from node 3 is not kept
    assert cell.concat == (2, 4)
    g = G.Genotype(cell.genes, cell.concat, cell.genes, (2, 4))
    G.validate(g, nodes=3)


def test_threshold_cell_where_nothing_passes_keeps_the_strongest_edge_from_a_cell_input():
    w = hand_weights(2, {(0, 0): ("sep_conv_3x3", 0.3), (0, 1): ("skip_connect", 0.2),
                         (1, 1): ("dil_conv_3x3", 0.6), (1, 2): ("max_pool_3x3", 0.8)})
    cell = D.threshold_cell(w, PRIMITIVES, 2, 0.85)
    assert cell.genes == (("none", 0), ("none", 1), ("dil_conv_3x3", 1), ("none", 2))
    assert cell.concat == (3,)
    # said: the one edge kept below the threshold (node 1's dil_conv from c_{k-1}, 0.6); nothing when any passes
    assert D.threshold_fallback(w, PRIMITIVES, 2, 0.85) == ("dil_conv_3x3", 1, 1, pytest.approx(0.6))
    assert D.threshold_fallback(w, PRIMITIVES, 2, 0.55) is None   # node 1 keeps its dil_conv from c_{k-1}
    psi = torch.stack([w, torch.full_like(w, 0.9)])   # layer 0 normal (falls back), layer 1 reduction (passes)
    assert D.threshold_notes(psi, PRIMITIVES, 2, 0.85, reductions=(1,)) == [
        "no input of the normal cell reached the threshold 0.85; it keeps its strongest edge (dil_conv_3x3 from "
        "c_{k-1} to node 1, state 3 in the genotype, 0.600) so that it has an output (FairDARTS's own cell would "
        "have none)"]


def test_random_genotypes_are_valid_seeded_and_varied():
    gs = [G.load(f"random:{s}") for s in range(20)]
    for g in gs:
        G.validate(g, nodes=4)
        for cell in (g.normal, g.reduce):
            for i in range(4):
                (a, ja), (b, jb) = cell[2 * i], cell[2 * i + 1]
                assert ja != jb and "none" not in (a, b)
    assert G.load("random:3") == G.load("random:3")
    assert len({str(g) for g in gs}) == 20
    with pytest.raises(GenotypeError, match=r"SEED a whole number >= 0 \(digits only\)"):
        G.load("random:x")


# kept edges per cell in xiaomi-automl/FairDARTS fairdarts/genotypes.py @ 675a0c8 (its (op, node, input)
# triples), and the nodes that receive none (left out of the concatenation by its DCOCell)
FAIR_DARTS_EDGES = {"A": (4, 8, {3}), "B": (6, 8, set()), "C": (6, 8, {3}), "D": (8, 8, set()),
                    "E": (6, 8, {3}), "F": (6, 8, set()), "G": (6, 8, {3})}


@pytest.mark.parametrize("letter", list(FAIR_DARTS_EDGES))
def test_fair_darts_cells_keep_the_published_edges(letter):
    g = G.load(f"FAIR_DARTS_{letter}")
    assert g is G.KNOWN[f"FAIR_DARTS_{letter}"] and G.parse(str(g)) == g and G.from_json(G.to_json(g)) == g
    normal_edges, reduce_edges, empty = FAIR_DARTS_EDGES[letter]
    for genes, concat, edges, empty_nodes in ((g.normal, g.normal_concat, normal_edges, empty),
                                              (g.reduce, g.reduce_concat, reduce_edges, set())):
        assert sum(op != "none" for op, _ in genes) == edges
        kept = {2 + i for i in range(4) if any(op != "none" for op, _ in genes[2 * i:2 * i + 2])}
        assert kept == set(range(2, 6)) - empty_nodes
        assert set(concat) == kept  # only nodes that receive an edge are concatenated


# ---------------------------------------------------------------------------------------------
# validation gaps: concat lists, cells that compute nothing, gene inputs, an empty spec

def darts_v2(**changes):
    """DARTS_V2's fields as `from_dict` takes them, with some replaced."""
    return {**G.KNOWN["DARTS_V2"].to_dict(), **changes}


ALL_NONE = [["none", 0], ["none", 1], ["none", 0], ["none", 2], ["none", 1], ["none", 3], ["none", 0], ["none", 4]]


@pytest.mark.parametrize("changes,message", [
    ({"normal_concat": [2, 2, 3]}, "normal: concat lists node 2 twice"),
    ({"reduce_concat": [2, 3, 4, 5, 3]}, "reduce: concat lists node 3 twice"),
    ({"normal_concat": [0, 1]}, "normal: concat [0, 1] holds only the cell inputs 0, 1; the cell output needs at "
                                "least one intermediate node (2..5)"),
    ({"normal_concat": [1]}, "normal: concat [1] holds only the cell inputs 0, 1; the cell output needs at "
                             "least one intermediate node (2..5)"),
    ({"normal_concat": []}, "normal: concat is empty; the cell output needs at least one intermediate node (2..5)"),
    ({"reduce_concat": [0, 2, 3]}, "reduce: a reduction cell cannot concatenate its inputs (0, 1): they are at the "
                                   "higher resolution"),
    ({"normal": ALL_NONE}, "normal: every gene is 'none': the cell computes nothing (its output is all zeros)"),
    ({"reduce": ALL_NONE}, "reduce: every gene is 'none': the cell computes nothing (its output is all zeros)"),
    ({"normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1], ["none", 0], ["none", 1]], "normal_concat": [3]},
     "normal: every concatenated node (3) has only 'none' genes: the cell's output is all zeros"),
    ({"normal": [["sep_conv_3x3", 0], ["none", 1], ["none", 0], ["none", 2]], "normal_concat": [0, 3]},
     "normal: every concatenated node (3) has only 'none' genes: the cell's output only repeats input 0 beside "
     "zeros"),
    ({"normal": [["none", 0], ["none", 1], ["none", 0], ["none", 2]], "normal_concat": [1, 3]},
     "normal: every gene is 'none': the cell computes nothing (its output only repeats input 1 beside zeros)"),
])
def test_validation_refuses_cells_that_make_no_sense(changes, message):
    with pytest.raises(GenotypeError) as info:
        G.from_dict(darts_v2(**changes))
    assert str(info.value) == message


def test_validation_keeps_what_the_network_builds():
    """A normal cell may concatenate a cell input beside its nodes (network.EvalCell builds it), and a
    node of only 'none' genes may be concatenated beside a node that computes something."""
    from diffnas.network import build_network

    wide = G.from_dict(darts_v2(normal_concat=[0, 1, 2, 3, 4, 5]))
    sparse = G.from_dict(darts_v2(normal=[["sep_conv_3x3", 0], ["none", 1], ["none", 0], ["none", 2]],
                                  normal_concat=[2, 3]))
    assert tuple(wide.normal_concat) == (0, 1, 2, 3, 4, 5) and tuple(sparse.normal_concat) == (2, 3)
    for g in (wide, sparse):   # and the network builds and runs them
        net = build_network(g, channels=4, classes=3, layers=3, auxiliary=False).eval()
        assert net(torch.randn(2, 3, 8, 8))[0].shape == (2, 3)   # (logits, auxiliary logits or None)


def test_per_cell_genotype_is_validated_the_same_way():
    good = {"genes": [["sep_conv_3x3", 0], ["skip_connect", 1]], "concat": [2], "reduction": False}
    for cell, message in [({**good, "concat": [2, 2]}, "cell 1: concat lists node 2 twice"),
                          ({**good, "concat": [0]}, "cell 1: concat [0] holds only the cell inputs 0, 1"),
                          ({**good, "genes": [["none", 0], ["none", 1]]}, "cell 1: every gene is 'none'"),
                          ({**good, "concat": [1, 2], "reduction": True}, "cell 1: a reduction cell cannot"),
                          ({**good, "reduction": "false"}, "cell 1: 'reduction' must be true or false, got 'false'")]:
        with pytest.raises(GenotypeError) as info:
            G.from_dict({"cells": [good, cell]})
        assert str(info.value).startswith(message)


GENE = "('dil_conv_3x3', 2)"  # DARTS_V2's last normal gene: node 3


@pytest.mark.parametrize("gene,message", [
    ("('dil_conv_3x3', True)", "normal: node 5 gene ('dil_conv_3x3', True): a gene's input must be an integer node "
                               "index, got True"),
    ("('dil_conv_3x3', None)", "normal: node 5 gene ('dil_conv_3x3', None): a gene's input must be an integer node "
                               "index, got None"),
    ("('dil_conv_3x3', 1.0)", "normal: node 5 gene ('dil_conv_3x3', 1.0): a gene's input must be an integer node "
                              "index, got 1.0"),
    ("('dil_conv_3x3', '2')", "normal: node 5 gene ('dil_conv_3x3', '2'): a gene's input must be an integer node "
                              "index, got '2'"),
    ("(2, 'dil_conv_3x3')", "normal: node 5 gene (2, 'dil_conv_3x3'): a gene is (op name, input index); the op "
                            "must be a quoted name, got 2"),
    ("(dil_conv_3x3, 2)", "genotype text: unquoted name dil_conv_3x3 at character 165: op names are quoted "
                          "('dil_conv_3x3'), and only range(...) may be called"),
    # already clear before: a negative index, a node reading itself or a later node, an op in capitals
    ("('dil_conv_3x3', -1)", "normal: node 5 reads state -1, but only states 0..4 come before it (0, 1: the "
                             "cell's inputs; 2..: its nodes, as in concat)"),
    ("('dil_conv_3x3', 5)", "normal: node 5 reads state 5, but only states 0..4 come before it (0, 1: the "
                             "cell's inputs; 2..: its nodes, as in concat)"),
    ("('DIL_CONV_3X3', 2)", "normal: unknown op 'DIL_CONV_3X3' (did you mean 'dil_conv_3x3'?)"),
])
def test_gene_errors_name_the_gene(gene, message):
    text = str(G.KNOWN["DARTS_V2"])
    assert text.count(GENE) == 1
    with pytest.raises(GenotypeError) as info:
        G.parse(text.replace(GENE, gene))
    assert str(info.value) == message


def test_range_takes_integers_not_booleans():
    text = str(G.KNOWN["DARTS_V2"]).replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range(True, 6)")
    with pytest.raises(GenotypeError, match=r"range\(\) takes 1 to 3 integers"):
        G.parse(text)


def test_json_gene_input_must_be_an_integer():
    normal = [list(g) for g in G.KNOWN["DARTS_V2"].normal[:7]] + [["dil_conv_3x3", True]]
    with pytest.raises(GenotypeError, match=r"^normal: node 5 gene \['dil_conv_3x3', True\]: a gene's input must be "
                                            r"an integer node index, got True$"):
        G.from_json(json.dumps(darts_v2(normal=normal)))


@pytest.mark.parametrize("spec", ["", "   ", "\n"])
def test_load_refuses_an_empty_spec(spec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not "the current folder, which has no genotype.json"
    with pytest.raises(GenotypeError) as info:
        G.load(spec)
    assert str(info.value) == ("the genotype is empty: give a published name (DARTS_V2, PDARTS, ...), random:SEED, "
                               "a genotype.json, a run folder or Genotype(...) notation")


@pytest.mark.parametrize("spec", ["", "  "])
def test_an_empty_spec_inside_a_pipeline_folder_is_still_empty(spec, tmp_path, monkeypatch):
    """`--genotype ""` run from inside a pipeline folder: Path("") is that folder, whose
    search/genotype.json must not be picked silently."""
    from diffnas.cli.options import run_genotype
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "genotype.json").write_text(json.dumps(darts_v2()))
    monkeypatch.chdir(tmp_path)
    assert run_genotype(spec) == spec
    with pytest.raises(GenotypeError, match="^the genotype is empty"):
        G.load(run_genotype(spec))


def test_a_line_copied_from_a_genotypes_py_loads(tmp_path):
    """`DARTS_V2 = Genotype(...)` as DARTS's genotypes.py writes it, typed or in a file, was refused
    with the generic 'neither a known name ... nor Genotype(...) notation'."""
    line = f"DARTS_V2 = {G.KNOWN['DARTS_V2']}"
    assert G.load(line) == G.KNOWN["DARTS_V2"]
    (tmp_path / "cell.txt").write_text("PC_DARTS_cifar=" + str(G.KNOWN["PC_DARTS_CIFAR"]) + "\n")
    assert G.load(str(tmp_path / "cell.txt")) == G.KNOWN["PC_DARTS_CIFAR"]
    with pytest.raises(GenotypeError, match="neither a known name"):
        G.load("x = 3")


def test_a_per_cell_genotype_is_a_sequence_of_its_cells():
    """len(g.cells) failed (a method) and the cells sat in `cells_`."""
    cells = tuple(G.Cell((("sep_conv_3x3", 0), ("skip_connect", 1)), (2,), k in (1, 2)) for k in range(4))
    g = G.CellwiseGenotype(cells)
    assert len(g) == 4 and g[2] is cells[2] and list(g) == list(cells) == g.cells() == g.cells(4)


def test_notation_missing_a_field_is_called_notation_not_json():
    with pytest.raises(GenotypeError, match=r"^Genotype\(\.\.\.\) notation lacks reduce_concat$"):
        G.load('Genotype(normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1)], normal_concat=[2], '
               'reduce=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1)])')


def test_the_released_codes_genotype_written_as_python_is_the_same_genotype():
    """DARTS's genotypes.py, pasted: lists and range() where the dataclass holds tuples. It compared
    unequal to the parsed DARTS_V2 and could not be hashed."""
    g = G.Genotype(normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
                           ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
                   normal_concat=range(2, 6),
                   reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
                           ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
                   reduce_concat=[2, 3, 4, 5])
    assert g == G.load("DARTS_V2") and hash(g) == hash(G.load("DARTS_V2"))
    assert G.load(g) is g   # load takes a genotype too


@pytest.mark.parametrize("index", [True, 0.0, "1", None])
def test_a_gene_index_that_is_not_an_integer_is_refused_when_made(index):
    """True was read as 1, 0.0 failed only inside the network's forward."""
    with pytest.raises(GenotypeError, match="a gene's input must be an integer node index"):
        G.Genotype([("sep_conv_3x3", index), ("sep_conv_3x3", 1)], (2,), [("max_pool_3x3", 0)] * 2, (2,))


def test_numpy_indices_from_an_argmax_are_plain_ints():
    import numpy as np

    g = G.Genotype([("sep_conv_3x3", np.int64(0)), ("sep_conv_3x3", np.int32(1))], [np.int64(2)],
                   [("max_pool_3x3", 0)] * 2, (2,))
    assert g.normal == (("sep_conv_3x3", 0), ("sep_conv_3x3", 1)) and g.normal_concat == (2,)
    assert all(type(j) is int for _, j in g.normal) and type(g.normal_concat[0]) is int
    assert G.from_json(G.to_json(g)) == g


def test_an_op_outside_the_given_op_set_is_not_called_unknown():
    with pytest.raises(GenotypeError, match=r"normal: op 'sep_conv_3x3' is not in the op set \(skip_connect, "
                                            r"max_pool_3x3\)"):
        G.validate(G.load("DARTS_V2"), ops=["skip_connect", "max_pool_3x3"])
    with pytest.raises(GenotypeError, match="unknown op 'sep_conv_9x9'"):
        G.validate(G.Genotype([("sep_conv_9x9", 0)] * 2, (2,), [("max_pool_3x3", 0)] * 2, (2,)),
                   ops=["skip_connect"])


@pytest.mark.parametrize("edit,message", [
    (lambda d: d.update(normal_conact=d.pop("normal_concat")), "unknown key 'normal_conact' (did you mean "
                                                               "'normal_concat'?)"),
    (lambda d: d.update(bogus=1), "unknown key 'bogus'"),
])
def test_an_unknown_key_in_genotype_json_is_refused(edit, message):
    d = G.load("DARTS_V2").to_dict()
    edit(d)
    with pytest.raises(GenotypeError, match=re.escape(message)):
        G.from_json(json.dumps(d))


def test_an_unknown_key_in_a_per_cell_genotypes_cell_is_refused():
    cell = {"genes": [["sep_conv_3x3", 0], ["skip_connect", 1]], "concat": [2], "reduction": False,
            "reductoin": True}
    with pytest.raises(GenotypeError, match="cell 0: unknown key 'reductoin'"):
        G.from_dict({"cells": [cell]})


@pytest.mark.parametrize("cells", [1, 2])
def test_a_per_cell_genotype_of_fewer_than_3_cells_is_said_of_the_genotype(cells):
    """`cell 0 (normal): [...]` alone was refused as 'layers: must be >= 3, got 1', a value never typed."""
    darts = G.load("DARTS_V2")
    genotype = G.CellwiseGenotype(tuple(darts.cell(k == 1) for k in range(cells)))
    with pytest.raises(GenotypeError, match=rf"^per-cell genotype has {cells} cells?: a network needs 3 at least"):
        G.network_depth(genotype, None)
    assert G.network_depth(G.CellwiseGenotype(tuple(darts.cells(3))), None) == 3


@pytest.mark.parametrize("cellwise", [False, True])
def test_genotype_json_has_a_line_per_gene_and_reads_back(cellwise):
    """json.dumps(indent=1) gave each op name and input a line of its own: some 270 lines for the five
    cells of a DNAS search, in genotype.json and in the report."""
    darts = G.load("DARTS_V2")
    genotype = G.CellwiseGenotype((darts.cell(False), darts.cell(True), darts.cell(False))) if cellwise else darts
    text = G.to_json(genotype)
    assert G.from_json(text) == genotype
    cells = genotype.cells_ if cellwise else (darts.cell(False), darts.cell(True))
    genes = sum(len(c.genes) for c in cells)
    lines = text.splitlines()
    assert len([line for line in lines if re.fullmatch(r'\s*\["\w+", \d+\],?', line)]) == genes
    assert len(lines) <= genes + 8 * len(cells) + 2


def test_a_per_cell_genotypes_repr_loads_back_and_a_broken_one_is_named():
    """`repr` of a plain Genotype loaded (paper notation); a per-cell one's did not ("neither a known
    name ...")."""
    g = G.random_genotype(1)
    cellwise = G.CellwiseGenotype((g.cell(False), g.cell(True), g.cell(False)))
    assert G.load(repr(cellwise)) == cellwise
    assert G.load(repr(cellwise).replace("cells_=", "")) == cellwise   # by position too
    with pytest.raises(GenotypeError, match="unknown field 'cells' of CellwiseGenotype"):
        G.load(repr(cellwise).replace("cells_=", "cells="))
    with pytest.raises(GenotypeError, match="expected the end of the text"):
        G.load(repr(cellwise) + " x")
    with pytest.raises(GenotypeError, match="only range"):   # never evaluated
        G.load("CellwiseGenotype(cells_=(Cell(genes=__import__('os'), concat=(2,), reduction=False),))")
    assert G.load(f"DNAS = {cellwise!r}") == cellwise   # a line copied from a script
    with pytest.raises(GenotypeError, match=r"CellwiseGenotype\(\.\.\.\) notation"):
        G.load("Cellwise_genotype")


def test_a_per_cell_genotypes_repr_in_a_file_loads(tmp_path):
    """The repr saved to a file was read as JSON: "genotype JSON is malformed"."""
    g = G.random_genotype(2)
    cellwise = G.CellwiseGenotype((g.cell(False), g.cell(True), g.cell(False)))
    (tmp_path / "g.txt").write_text(repr(cellwise) + "\n")
    assert G.load(str(tmp_path / "g.txt")) == cellwise


@pytest.mark.parametrize("thing", ["DARTS_V2", {"normal": []}, 3])
def test_validate_names_what_it_got_when_it_is_no_genotype(thing):
    """validate("DARTS_V2") raised AttributeError: 'str' object has no attribute 'cells_'."""
    with pytest.raises(GenotypeError, match=rf"^expected a Genotype or CellwiseGenotype, got {type(thing).__name__} "
                                            r".*\(genotype.load reads a name, file, run folder or notation into one\)"):
        G.validate(thing)


def test_a_none_gene_passes_against_an_op_set_without_none():
    """FairDARTS's threshold writes ('none', j) for a node that keeps fewer than two inputs; validating
    that genotype against its own op set (no none) refused it."""
    ops = [op for op in PRIMITIVES if op != "none"]
    cell = G.Cell((("sep_conv_3x3", 0), ("none", 1), ("skip_connect", 1), ("none", 0)), (2, 3))
    genotype = G.Genotype(cell.genes, cell.concat, cell.genes, cell.concat)
    assert G.validate(genotype, ops=ops) is genotype
    with pytest.raises(GenotypeError, match="op 'sep_conv_3x3' is not in the op set"):
        G.validate(genotype, ops=["skip_connect"])


def test_an_unfinished_search_named_as_a_genotype_from_python_is_told_the_python_call(tmp_path):
    """genotype.load of a search run without genotype.json said `diffnas search --resume RUN` to a
    Python caller."""
    run = tmp_path / "s"
    run.mkdir()
    (run / "config.json").write_text('{"command": "search"}')
    (run / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(GenotypeError, match=rf"it has not finished; finish it with `search\(cfg, resume='{run}'\)`$"):
        G.load(str(run))
    (run / "search").mkdir()
    with pytest.raises(GenotypeError, match=r"go on with `run_pipeline\(search_cfg, train_cfg, '.*', resume=True\)`"):
        G.load(str(run))
