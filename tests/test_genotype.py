import json

import pytest
import torch
from hypothesis import given, settings, strategies as st

from diffnas import genotype as G
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


@pytest.mark.parametrize("text,match", [
    ("Genotype(normal=[('sep_conv_3x3', 0)", "character"),
    ("Genotype(normal=[('sep_conv_3x3', 0), ('bogus_op', 1)], normal_concat=[2], reduce=[('skip_connect', 0), "
     "('skip_connect', 1)], reduce_concat=[2])", "unknown op 'bogus_op'"),
    ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 5)], normal_concat=[2], reduce=[('skip_connect', 0), "
     "('skip_connect', 1)], reduce_concat=[2])", "node 0 reads input 5"),
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
    ("unfinished", "unfinished: a pipeline folder without search/genotype.json (its search has not finished)"),
])
def test_load_says_what_is_wrong_with_a_path(tmp_path, monkeypatch, spec, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "unfinished" / "search").mkdir(parents=True)
    with pytest.raises(GenotypeError) as info:
        G.load(spec)
    assert str(info.value) == message


@pytest.mark.parametrize("spec", ["~0", "__import__('os').system('ls /tmp')", "a/b(c)"])
def test_load_treats_code_like_text_as_no_path(spec):
    with pytest.raises(GenotypeError, match="is neither a known name"):
        G.load(spec)


@pytest.mark.parametrize("spec", ["darts_v2", "DARTS-V2", "dartsv2", "Darts_V2", "DARTS_V3"])
def test_load_suggests_the_published_name(spec):
    with pytest.raises(GenotypeError, match=r"is neither a known name \(did you mean 'DARTS_V2'\?\)"):
        G.load(spec)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_parser_raises_only_its_own_error(text):
    try:
        G.parse(text)
    except GenotypeError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(list("Genotype(normal=[('sep_conv_3x3', 0)],_concat=range(2,6)reduce 0123)[]'\"")),
                max_size=120))
def test_parser_on_near_miss_text(chars):
    try:
        G.parse("Genotype(" + "".join(chars))
    except GenotypeError:
        pass


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
    cell = G.top2_cell(w, PRIMITIVES, 3)
    assert cell.genes == (("dil_conv_5x5", 1), ("sep_conv_3x3", 0),
                          ("skip_connect", 2), ("max_pool_3x3", 1),
                          ("sep_conv_5x5", 3), ("avg_pool_3x3", 1))
    assert cell.concat == (2, 3, 4)


def test_threshold_keeps_at_most_two_passing_edges():
    w = hand_weights(2, {(0, 0): ("sep_conv_3x3", 0.95), (0, 1): ("skip_connect", 0.5),
                         (1, 0): ("dil_conv_3x3", 0.9), (1, 1): ("sep_conv_5x5", 0.88), (1, 2): ("max_pool_3x3", 0.86)})
    cell = G.threshold_cell(w, PRIMITIVES, 2, 0.85)
    assert cell.genes == (("sep_conv_3x3", 0), ("none", 1), ("dil_conv_3x3", 0), ("sep_conv_5x5", 1))


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
    with pytest.raises(GenotypeError, match="integer seed"):
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
