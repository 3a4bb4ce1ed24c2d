"""Genotypes: the discrete architectures search hands to training.

Two kinds:
- `Genotype`: one normal and one reduction cell, stacked (DARTS). Its text form is the notation of
  the papers and of the released code, `Genotype(normal=[('sep_conv_3x3', 0), ...],
  normal_concat=[2, 3, 4, 5], reduce=[...], reduce_concat=[...])`; it is parsed, never eval'd.
- `CellwiseGenotype`: every cell of the network has its own architecture (global search, DNAS).

A cell with N intermediate nodes lists 2 (op, input) pairs per node; node i (0-based) may read the
two cell inputs (indices 0, 1) and the earlier nodes (indices 2 .. i+1).

Here: the types, validation, JSON, `load`. The text notation is read by `genotype_parse`; the
published cells are listed as plain data in `genotype_published` and checked into `KNOWN` here; the
rules that turn architecture weights into a cell are `discretise`.
"""

from __future__ import annotations

import json
import numbers
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence, Union

from .errors import GenotypeError, same_name, suggest
from .genotype_parse import parse_cell_lines, parse_cellwise, parse_fields
from .genotype_published import ALIASES, PUBLISHED
from .notices import option, resume_call
from .ops import OPS, PRIMITIVES
from .runfolder import run_command

Gene = tuple[str, int]  # (op name, input index)


@dataclass(frozen=True)
class Cell:
    """One cell's architecture: 2 genes per intermediate node, and the node indices concatenated."""

    genes: tuple[Gene, ...]
    concat: tuple[int, ...]
    reduction: bool = False

    def __post_init__(self) -> None:   # lists, ranges and numpy ints as the released code writes them
        object.__setattr__(self, "genes", _genes(self.genes, "cell genes"))
        object.__setattr__(self, "concat", _ints(self.concat, "cell concat"))
        if not isinstance(self.reduction, bool):
            raise GenotypeError(f"cell reduction: expected True or False, got {self.reduction!r}")

    @property
    def nodes(self) -> int:
        return len(self.genes) // 2

    def to_dict(self) -> dict:
        return {"genes": [[op, j] for op, j in self.genes], "concat": list(self.concat),
                "reduction": self.reduction}


@dataclass(frozen=True)
class Genotype:
    """A normal and a reduction cell (DARTS): 2 (op name, input index) genes per intermediate node,
    and the states concatenated as the cell's output. Lists and ranges are taken as the released
    code writes them (`normal_concat=range(2, 6)`) and kept as tuples; `validate` checks op names
    and indices."""

    normal: tuple[Gene, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Gene, ...]
    reduce_concat: tuple[int, ...]

    def __post_init__(self) -> None:
        for name in ("normal", "reduce"):
            object.__setattr__(self, name, _genes(getattr(self, name), name))
        for name in ("normal_concat", "reduce_concat"):
            object.__setattr__(self, name, _ints(getattr(self, name), name))

    @property
    def nodes(self) -> int:
        return len(self.normal) // 2

    def cell(self, reduction: bool) -> Cell:
        if reduction:
            return Cell(self.reduce, self.reduce_concat, True)
        return Cell(self.normal, self.normal_concat, False)

    def cells(self, layers: int) -> list[Cell]:
        """The per-position cells of a network of `layers` cells (reductions at L/3 and 2L/3)."""
        return [self.cell(i in reduction_layers(layers)) for i in range(layers)]

    def to_dict(self) -> dict:
        return {"normal": [[op, j] for op, j in self.normal], "normal_concat": list(self.normal_concat),
                "reduce": [[op, j] for op, j in self.reduce], "reduce_concat": list(self.reduce_concat)}

    def __str__(self) -> str:
        def genes(gs: Sequence[Gene]) -> str:
            return "[" + ", ".join(f"({op!r}, {j})" for op, j in gs) + "]"

        return (f"Genotype(normal={genes(self.normal)}, normal_concat={list(self.normal_concat)}, "
                f"reduce={genes(self.reduce)}, reduce_concat={list(self.reduce_concat)})")


@dataclass(frozen=True)
class CellwiseGenotype:
    """A network in which cell k has its own architecture `cells_[k]` (output of global search).

    `len(g)` is its cell count, `g[k]` cell k, and `for cell in g` goes through them in order."""

    cells_: tuple[Cell, ...]

    def __post_init__(self) -> None:
        cells = tuple(self.cells_) if isinstance(self.cells_, (list, tuple)) else None
        if cells is None or not all(isinstance(c, Cell) for c in cells):
            raise GenotypeError(f"per-cell genotype: expected a sequence of Cell, got {self.cells_!r}")
        object.__setattr__(self, "cells_", cells)

    @property
    def nodes(self) -> int:
        return self.cells_[0].nodes

    def __len__(self) -> int:
        return len(self.cells_)

    def __getitem__(self, k: int) -> Cell:
        return self.cells_[k]

    def __iter__(self) -> Iterator[Cell]:
        return iter(self.cells_)

    def cells(self, layers: int | None = None) -> list[Cell]:
        """The per-position cells of a network of `layers` cells, which must be this genotype's count
        (GenotypeError otherwise); None: its own."""
        if layers is None:
            return list(self.cells_)
        if layers != len(self.cells_):
            raise depth_error(len(self.cells_), layers)
        expected = reduction_layers(layers)
        for k, cell in enumerate(self.cells_):
            if cell.reduction != (k in expected):
                raise GenotypeError(f"per-cell genotype: cell {k} reduction={cell.reduction}, but the "
                                    f"network reduces at cells {sorted(expected)}")
        return list(self.cells_)

    def to_dict(self) -> dict:
        return {"cells": [c.to_dict() for c in self.cells_]}

    def __str__(self) -> str:
        return json.dumps(self.to_dict())


AnyGenotype = Union[Genotype, CellwiseGenotype]


def network_depth(genotype: AnyGenotype, layers: int | None) -> int | None:
    """The depth a network of `genotype` is built at: a per-cell genotype's own cell count, which a
    depth asked for (`layers`) must equal (`depth_error` otherwise); `layers` for a normal/reduce
    genotype (None: the caller's default). The one rule of `diffnas train`, `train()` and `params`."""
    if isinstance(genotype, CellwiseGenotype):
        if layers is not None and layers != len(genotype):
            raise depth_error(len(genotype), layers)
        if len(genotype) < 3:   # the network's minimum, said of the genotype (`layers: must be >= 3` was not)
            raise GenotypeError(f"per-cell genotype has {len(genotype)} cell{'s' if len(genotype) != 1 else ''}: a "
                                f"network needs 3 at least (cells L/3 and 2L/3 reduce), and a per-cell genotype "
                                f"is one cell a layer")
        return len(genotype)
    return layers


def depth_error(cells: int, layers: int) -> GenotypeError:
    """A per-cell genotype of `cells` cells asked to fill a network of `layers`."""
    return GenotypeError(f"per-cell genotype has {cells} cell{'s' if cells != 1 else ''} but the network has "
                         f"{layers}: a per-cell (dnas, global) genotype fixes the depth; train it at {cells} "
                         f"cell{'s' if cells != 1 else ''} "
                         f"({option('layers', cells)} or no layers value at all)")


def reduction_layers(layers: int) -> set[int]:
    """Cells that halve the resolution: L/3 and 2L/3 (quark0/darts cnn/model.py)."""
    return {layers // 3, 2 * layers // 3}


# ---------------------------------------------------------------------------------------------
# validation


def validate(genotype: AnyGenotype, ops: Iterable[str] | None = None, nodes: int | None = None) -> AnyGenotype:
    """Check op names and node indices; raise GenotypeError naming the first problem. A `none` gene
    (FairDARTS: a node that keeps fewer than two inputs) passes whatever `ops` is."""
    if not isinstance(genotype, (Genotype, CellwiseGenotype)):
        raise GenotypeError(f"expected a Genotype or CellwiseGenotype, got {type(genotype).__name__} "
                            f"{_shown(repr(genotype))} (genotype.load reads a name, file, run folder or notation "
                            f"into one)")
    known = set(OPS if ops is None else ops) | {"none"}
    cells: list[tuple[str, Cell]]
    if isinstance(genotype, Genotype):
        cells = [("normal", genotype.cell(False)), ("reduce", genotype.cell(True))]
    else:
        if not genotype.cells_:
            raise GenotypeError("per-cell genotype has no cells")
        cells = [(f"cell {k}", c) for k, c in enumerate(genotype.cells_)]
    for where, cell in cells:
        if not cell.genes or len(cell.genes) % 2:
            got = f"{len(cell.genes)} pair" + ("" if len(cell.genes) == 1 else "s")
            raise GenotypeError(f"{where}: expected 2 (op, input) pairs per node, got {got}")
        if nodes is not None and cell.nodes != nodes:
            raise GenotypeError(f"{where}: has {cell.nodes} nodes, the network expects {nodes}")
        for g, (op, j) in enumerate(cell.genes):
            if op not in known:
                if ops is not None and op in OPS:
                    raise GenotypeError(f"{where}: op {op!r} is not in the op set ({', '.join(ops)})")
                meant = suggest(op, sorted(known))   # a typo: the name meant; else the names there are
                raise GenotypeError(f"{where}: unknown op {op!r}" + (meant or (
                    f"; known ops: {', '.join(OPS)} (an op added to diffnas.ops.OPS is known only to the "
                    f"process that added it: add it again first)")))
            node = g // 2
            if not 0 <= j < node + 2:
                raise GenotypeError(f"{where}: node {node + 2} reads state {j}, but only states 0..{node + 1} come "
                                    f"before it (0, 1: the cell's inputs; 2..: its nodes, as in concat)")
        _check_output(where, cell)
    return genotype


def _check_output(where: str, cell: Cell) -> None:
    """The cell output: the concatenation of distinct states, at least one of them an intermediate
    node that computes something. Inputs 0, 1 may stand beside the nodes in a normal cell (EvalCell
    builds that), never in a reduction cell, whose inputs are at twice its output resolution."""
    span = "2" if cell.nodes == 1 else f"2..{cell.nodes + 1}"
    nodes = f"intermediate node ({span})"
    if not cell.concat:
        raise GenotypeError(f"{where}: concat is empty; the cell output needs at least one {nodes}")
    seen: set[int] = set()
    for c in cell.concat:
        if not 0 <= c < cell.nodes + 2:
            raise GenotypeError(f"{where}: concat index {c} does not fit a cell of {cell.nodes} nodes")
        if c in seen:
            raise GenotypeError(f"{where}: concat lists node {c} twice")
        seen.add(c)
    inner = [c for c in cell.concat if c >= 2]
    if not inner:
        raise GenotypeError(f"{where}: concat {list(cell.concat)} holds only the cell inputs 0, 1; the cell output "
                            f"needs at least one {nodes}")
    if cell.reduction and len(inner) < len(cell.concat):
        raise GenotypeError(f"{where}: a reduction cell cannot concatenate its inputs (0, 1): they are at the "
                            "higher resolution")
    inputs = [c for c in cell.concat if c < 2]   # a normal cell may pass its inputs on
    output = (f"output only repeats input {' and '.join(map(str, inputs))} beside zeros" if inputs
              else "output is all zeros")
    if all(op == "none" for op, _ in cell.genes):
        raise GenotypeError(f"{where}: every gene is 'none': the cell computes nothing (its {output})")
    # a node whose genes are all 'none' is zero (FairDARTS leaves such nodes out of the concatenation)
    if all(all(op == "none" for op, _ in cell.genes[2 * (c - 2):2 * (c - 1)]) for c in inner):
        raise GenotypeError(f"{where}: every concatenated node ({', '.join(map(str, inner))}) has only 'none' genes: "
                            f"the cell's {output}")


# ---------------------------------------------------------------------------------------------
# JSON


def _genes(value: object, where: str) -> tuple[Gene, ...]:
    if not isinstance(value, (list, tuple)):
        raise GenotypeError(f"{where}: expected a list of [op, input] pairs")
    out = []
    for g, item in enumerate(value):
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise GenotypeError(f"{where}: expected [op name, input index] pairs, got {item!r}")
        op, j = item
        if isinstance(j, numbers.Integral) and not isinstance(j, bool):
            j = int(j)   # a numpy int from an argmax
        if not isinstance(op, str):
            raise GenotypeError(f"{where}: node {g // 2 + 2} gene {item!r}: a gene is (op name, input index); the op "
                                f"must be a quoted name, got {op!r}")
        if not isinstance(j, int) or isinstance(j, bool):
            raise GenotypeError(f"{where}: node {g // 2 + 2} gene {item!r}: a gene's input must be an integer node "
                                f"index, got {j!r}")
        out.append((op, j))
    return tuple(out)


def _ints(value: object, where: str) -> tuple[int, ...]:
    if isinstance(value, range):
        value = list(value)
    if (not isinstance(value, (list, tuple))
            or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)):
        raise GenotypeError(f"{where}: expected a list of node indices, got {value!r}")
    return tuple(int(v) for v in value)


def _known_keys(d: dict, known: Sequence[str], what: str) -> None:
    """A key `known` lacks (a typo, most often) is a GenotypeError, not silently left out."""
    for key in d:
        if key not in known:
            raise GenotypeError(f"{what}: unknown key {key!r}{suggest(str(key), list(known))} "
                                f"(a genotype holds {', '.join(known)})")


def from_dict(d: object, what: str = "genotype JSON") -> AnyGenotype:
    """A genotype from its fields; `what` names the form they came in, for the errors."""
    if not isinstance(d, dict):
        raise GenotypeError(f"{what} must be an object")
    _known_keys(d, ("cells",) if "cells" in d else ("normal", "normal_concat", "reduce", "reduce_concat"), what)
    if "cells" in d:
        if not isinstance(d["cells"], list):
            raise GenotypeError("'cells' must be a list")
        cells = []
        for k, c in enumerate(d["cells"]):
            if not isinstance(c, dict) or "genes" not in c or "concat" not in c:
                raise GenotypeError(f"cell {k}: expected an object with 'genes', 'concat' and 'reduction'")
            _known_keys(c, ("genes", "concat", "reduction"), f"cell {k}")
            reduction = c.get("reduction", False)
            if not isinstance(reduction, bool):
                raise GenotypeError(f"cell {k}: 'reduction' must be true or false, got {reduction!r}")
            cells.append(Cell(_genes(c["genes"], f"cell {k}"), _ints(c["concat"], f"cell {k} concat"), reduction))
        return validate(CellwiseGenotype(tuple(cells)))
    missing = [k for k in ("normal", "normal_concat", "reduce", "reduce_concat") if k not in d]
    if missing:
        raise GenotypeError(f"{what} lacks {', '.join(missing)}")
    # Genotype checks and converts its fields itself (__post_init__), naming each as this form does
    return validate(Genotype(d["normal"], d["normal_concat"], d["reduce"], d["reduce_concat"]))


def to_json(genotype: AnyGenotype) -> str:
    """genotype.json's text: a line per gene (json.dumps(indent=1) gave each op name and input its own
    line, some 270 lines for five cells)."""
    return _json_lines(genotype.to_dict())


def _json_lines(value: Any, depth: int = 0) -> str:
    """JSON with a line per dict key and per item of a list of lists or dicts; lists of plain values
    (a gene, a concat) on one line."""
    pad, end = " " * (depth + 1), " " * depth
    if isinstance(value, dict) and value:
        items = (f"{pad}{json.dumps(k)}: {_json_lines(v, depth + 1)}" for k, v in value.items())
        return "{\n" + ",\n".join(items) + f"\n{end}}}"
    if isinstance(value, list) and value and all(isinstance(v, (list, dict)) for v in value):
        return "[\n" + ",\n".join(pad + _json_lines(v, depth + 1) for v in value) + f"\n{end}]"
    return json.dumps(value)


def from_json(text: str) -> AnyGenotype:
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise GenotypeError(f"genotype JSON is malformed: {e}") from None
    except RecursionError:
        raise GenotypeError("genotype JSON is nested too deeply") from None
    return from_dict(d)


# ---------------------------------------------------------------------------------------------
# paper notation (read by genotype_parse) and the published cells (listed in genotype_published)


def parse(text: str) -> Genotype:
    """Parse the paper / released-code notation. Never evaluates the text."""
    genotype = from_dict(parse_fields(text), "Genotype(...) notation")
    assert isinstance(genotype, Genotype)
    return genotype


def cell_lines(genotype: CellwiseGenotype) -> str:
    """A per-cell genotype in the gene notation of the papers, a line per cell:
    `cell 0 (normal): [('sep_conv_3x3', 0), ...], concat=[2, 3, 4, 5]`. `load` reads it back."""
    return "\n".join(f"cell {k} ({'reduce' if c.reduction else 'normal'}): "
                     f"[{', '.join(f'({op!r}, {j})' for op, j in c.genes)}], concat={list(c.concat)}"
                     for k, c in enumerate(genotype.cells_))


def parse_cells(text: str) -> CellwiseGenotype:
    """Read `cell_lines` text, or a per-cell genotype's repr, back. Never evaluates the text."""
    cells = parse_cellwise(text) if text.lstrip().startswith("CellwiseGenotype") else parse_cell_lines(text)
    genotype = from_dict({"cells": cells}, "per-cell genotype text")
    assert isinstance(genotype, CellwiseGenotype)
    return genotype


def _published(name: str) -> Genotype:
    try:
        genotype = from_dict(PUBLISHED[name])
    except GenotypeError as e:
        raise GenotypeError(f"published genotype {name}: {e}") from None
    assert isinstance(genotype, Genotype)
    return genotype


KNOWN: dict[str, Genotype] = {name: _published(name) for name in PUBLISHED}
KNOWN.update({alias: KNOWN[name] for alias, name in ALIASES.items()})


def random_genotype(seed: int, nodes: int = 4, ops: Sequence[str] = PRIMITIVES) -> Genotype:
    """A uniformly random cell pair from the DARTS space: per node two distinct inputs, each with a
    random op other than `none` (the random-search baseline of the DARTS paper, section 3.3)."""
    import random

    rng = random.Random(seed)
    usable = [o for o in ops if o != "none"]

    def cell() -> tuple[Gene, ...]:
        genes: list[Gene] = []
        for i in range(nodes):
            genes += [(rng.choice(usable), j) for j in sorted(rng.sample(range(i + 2), 2))]
        return tuple(genes)

    concat = tuple(range(2, nodes + 2))
    return Genotype(cell(), concat, cell(), concat)


def _looks_like_path(spec: str, path: Path) -> bool:
    """A file name (.json, .txt), a folder that exists, or text with a path separator that is not
    code-like (no brackets or quotes)."""
    if spec.lower().endswith((".json", ".txt")):
        return True
    if ("/" in spec or "\\" in spec) and not any(ch in spec for ch in "()[]'\""):
        return True
    try:
        return path.is_dir()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


def _genotype_file(spec: str) -> Path | None:
    """The file a spec names: the file itself, a run folder's genotype.json, or a pipeline folder's
    search/genotype.json; None when the spec is no path at all. A path that names nothing usable
    is a GenotypeError saying what is there instead."""
    path = Path(spec)
    try:
        if path.is_file():
            return path
        if not _looks_like_path(spec, path):
            return None
        if not path.exists():
            raise GenotypeError(f"{spec}: no such file")
        if not path.is_dir():
            raise GenotypeError(f"{spec}: not a file")
        for inside in (path / "genotype.json", path / "search" / "genotype.json"):
            if inside.is_file():
                return inside
    except (OSError, ValueError):
        return None
    if (path / "search").is_dir():
        raise GenotypeError(f"{spec}: a pipeline folder without search/genotype.json (its search has not "
                            f"finished; go on with `{resume_call('run', Path(spec))}`)")
    if (path / "checkpoint.pt").is_file() and run_command(path) == "search":
        raise GenotypeError(f"{spec}: a search run without genotype.json: it has not finished; finish it with "
                            f"`{resume_call('search', Path(spec))}`")
    raise GenotypeError(f"{spec}: a folder without genotype.json (a search run folder has one; a pipeline "
                        "folder RUN has RUN/search/genotype.json)")


def _shown(text: str) -> str:
    """`text` cut to 80 characters for a message."""
    return text if len(text) <= 80 else text[:77] + "..."


def _unassigned(text: str) -> str:
    """`Genotype(...)` of a line copied from a genotypes.py (DARTS's, PC-DARTS's): `DARTS_V2 = Genotype(...)`."""
    assigned = re.match(r"[A-Za-z_]\w*\s*=\s*(?=(Cellwise)?Genotype\b)", text)
    return text[assigned.end():] if assigned else text


def published_name(spec: str) -> str | None:
    """The published genotype `spec` names as `load` reads it (`darts_v2`: DARTS_V2, unless a file has
    that name), or None."""
    spec = spec.strip()
    if spec in KNOWN:
        return spec
    return same_name(spec, KNOWN) if _genotype_file(spec) is None else None


def load(spec: str | os.PathLike[str] | AnyGenotype) -> AnyGenotype:
    """A genotype from a published name, `random:SEED`, a JSON file, a search run folder (its
    genotype.json), a pipeline folder (its search/genotype.json), a text file in paper notation
    (or `cell_lines`' per-cell form), or that text itself; a genotype object is checked
    (`validate`) and returned. Also taken: `to_dict()`'s dict, the released DARTS code's Genotype
    namedtuple (any object with normal, normal_concat, reduce and reduce_concat), and a result that
    holds a genotype (a SearchResult's `.genotype`: `train(cfg, search(...))`)."""
    if isinstance(spec, (Genotype, CellwiseGenotype)):
        return validate(spec)
    if isinstance(spec, dict):
        return validate(from_dict(spec, "genotype dict"))
    if all(hasattr(spec, f) for f in ("normal", "normal_concat", "reduce", "reduce_concat")):
        # genotypes.py of quark0/darts, PC-DARTS, P-DARTS: namedtuple('Genotype', 'normal normal_concat ...')
        return validate(Genotype(spec.normal, spec.normal_concat, spec.reduce, spec.reduce_concat))  # type: ignore
    if isinstance(getattr(spec, "genotype", None), (Genotype, CellwiseGenotype)):
        return validate(spec.genotype)   # type: ignore[union-attr]  # a result holding one: the check above
    if not isinstance(spec, (str, os.PathLike)):
        raise GenotypeError(f"genotype: expected a name, a path, Genotype(...) notation, a genotype or its dict, "
                            f"got {type(spec).__name__}")
    spec = os.fspath(spec).strip()
    if not spec:  # Path("") is the current folder: say what is missing rather than what is there
        raise GenotypeError("the genotype is empty: give a published name (DARTS_V2, PDARTS, ...), random:SEED, "
                            "a genotype.json, a run folder or Genotype(...) notation")
    if spec in KNOWN:
        return KNOWN[spec]
    if spec.startswith("random:"):
        seed = spec.split(":", 1)[1]
        if not (seed.isascii() and seed.isdigit()):  # '²'.isdigit() is True, but int('²') fails
            raise GenotypeError(f"genotype {spec!r}: expected random:SEED, SEED a whole number >= 0 (digits only)")
        return random_genotype(int(seed))
    spec = _unassigned(spec)
    if spec.startswith("Genotype"):
        return parse(spec)
    if re.match(r"cell\s+\d+\s*\(", spec) or spec.startswith("CellwiseGenotype"):
        return parse_cells(spec)
    if spec.startswith("{"):
        return from_json(spec)
    if name := published_name(spec):   # `darts_v2`, where no file has that name
        return KNOWN[name]
    path = _genotype_file(spec)
    if path is None:
        raise GenotypeError(f"genotype {_shown(spec)!r} is neither a known name{suggest(spec, KNOWN)} "
                            f"({', '.join(KNOWN)}), random:SEED, a genotype.json or a run or pipeline folder, "
                            f"nor Genotype(...), per-cell `cell 0 (...)` or CellwiseGenotype(...) notation")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise GenotypeError(f"{path}: cannot read genotype file ({e})") from None
    try:
        text = _unassigned(text.strip())
        if re.match(r"cell\s+\d+\s*\(", text) or text.startswith("CellwiseGenotype"):
            return parse_cells(text)
        return parse(text) if text.startswith("Genotype") else from_json(text)
    except GenotypeError as e:
        raise GenotypeError(f"{path}: {e}") from None


def spec_path(spec: str) -> str:
    """`spec` with the file or run folder that `load` would read it from made absolute; a spec `load`
    takes otherwise (empty, a published name, random:SEED, notation) as it is."""
    text = spec.strip()
    if not text or text in KNOWN or text.startswith("random:") or re.match(r"((Cellwise)?Genotype|cell\s+\d+\s*\(|\{)",
                                                                           _unassigned(text)):
        return spec
    try:   # a path not there yet (a pipeline's search/genotype.json before its search) stays as typed
        if published_name(text):
            return spec
        path = _genotype_file(text)
    except (OSError, ValueError, GenotypeError):
        return spec
    if path is None or Path(text).expanduser().is_absolute():
        return spec
    folder = Path(text).expanduser()
    return str(folder.absolute()) if folder.exists() else spec


def save(genotype: AnyGenotype, path: str | Path) -> None:
    """Write `genotype` as genotype.json does (`load` reads it back), atomically: a kill leaves the old
    file or the new one, never half of one."""
    from .atomic import atomic_write_bytes

    atomic_write_bytes(Path(path), (to_json(genotype) + "\n").encode())
