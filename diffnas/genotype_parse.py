"""The paper notation of a genotype, read without evaluating it.

The papers and their released code (quark0/darts cnn/genotypes.py and its forks) write cells as
`Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=range(2, 6), reduce=[...],
reduce_concat=[...])`. `parse_fields` reads exactly that grammar (lists, tuples, quoted strings,
integers, `range(...)`, the four fields by keyword or position) and returns the raw fields;
`genotype.parse` turns them into a checked `Genotype`. `parse_cell_lines` reads the per-cell form
(a line per cell, `cell 0 (normal): [('sep_conv_3x3', 0), ...], concat=[2, 3, 4, 5]`, as
`genotype.cell_lines` writes it and the report shows it) the same way, and `parse_cellwise` a per-cell
genotype's repr, `CellwiseGenotype(cells_=(Cell(genes=..., concat=..., reduction=...), ...))`.
Decimals and True/False/None are read as values too, so that a gene like ('sep_conv_3x3', True) is
refused there, naming the gene. Nothing here knows op names or cell rules, so this module imports only
the error type.
"""

from __future__ import annotations

from typing import Callable

from .errors import GenotypeError

FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")
CONSTANTS = {"True": True, "False": False, "None": None}  # Python's literals; none is valid anywhere


class _Parser:
    def __init__(self, text: str):
        self.s = text
        self.i = 0

    def fail(self, what: str) -> GenotypeError:
        near = self.s[self.i:self.i + 20]
        return GenotypeError(f"genotype text: expected {what} at character {self.i}"
                             + (f" (near {near!r})" if near else " (text ends there)"))

    def ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1

    def peek(self) -> str:
        self.ws()
        return self.s[self.i] if self.i < len(self.s) else ""

    def eat(self, ch: str) -> None:
        if self.peek() != ch:
            raise self.fail(repr(ch))
        self.i += 1

    def name(self) -> str:
        self.ws()
        j = self.i
        while j < len(self.s) and (self.s[j].isalnum() or self.s[j] == "_"):
            j += 1
        if j == self.i or self.s[self.i].isdigit():
            raise self.fail("a name")
        out, self.i = self.s[self.i:j], j
        return out

    def value(self) -> object:
        c = self.peek()
        if not c:  # cut short ("" is `in` every string, so test it first)
            raise self.fail("a value")
        if c in "[(":
            close = "]" if c == "[" else ")"
            self.i += 1
            items: list[object] = []
            while self.peek() != close:
                items.append(self.value())
                if self.peek() == ",":
                    self.i += 1
                elif self.peek() != close:
                    raise self.fail(f"',' or {close!r}")
            self.i += 1
            return items if c == "[" else tuple(items)
        if c in "'\"":
            end = self.s.find(c, self.i + 1)
            if end < 0:
                raise self.fail("a closing quote")
            out, self.i = self.s[self.i + 1:end], end + 1
            return out
        if c.isdigit() or c == "-":
            j = self.i + 1
            while j < len(self.s) and self.s[j].isdigit():
                j += 1
            if not self.s[self.i:j].lstrip("-"):
                raise self.fail("a number")
            if self.s[j:j + 1] == "." and self.s[j + 1:j + 2].isdigit():  # 1.0: a float, for the caller to refuse
                k = j + 1
                while k < len(self.s) and self.s[k].isdigit():
                    k += 1
                out_f, self.i = float(self.s[self.i:k]), k
                return out_f
            out_i, self.i = int(self.s[self.i:j]), j
            return out_i
        if c.isalpha() or c == "_":
            start = self.i
            fn = self.name()
            if fn in CONSTANTS:  # read as values, so that the caller says where they do not belong
                return CONSTANTS[fn]
            if fn != "range" and not self.peek() and "range".startswith(fn):
                raise self.fail("range(...)")  # cut short inside the name
            if fn != "range" and self.peek() != "(":
                raise GenotypeError(f"genotype text: unquoted name {fn} at character {start}: op names are quoted "
                                    f"({fn!r}), and only range(...) may be called")
            if fn != "range":
                raise GenotypeError(f"genotype text: only range(...) may be called inside, got {fn!r}")
            args = self.value()
            if not isinstance(args, tuple) or not 1 <= len(args) <= 3 or not all(type(a) is int for a in args):
                raise GenotypeError("genotype text: range() takes 1 to 3 integers")
            if len(args) == 3 and args[2] == 0:
                raise GenotypeError("genotype text: range() step must not be zero")
            if len(range(*args)) > 1000:  # type: ignore[arg-type]
                raise GenotypeError("genotype text: range() is far longer than any cell")
            return list(range(*args))  # type: ignore[arg-type]
        raise self.fail("a value")

    def genotype(self) -> dict[str, object]:
        if self.name() != "Genotype":
            raise GenotypeError("genotype text must start with 'Genotype('")
        fields = self.arguments(FIELDS, self.value)
        if self.peek():
            raise self.fail("the end of the text")
        return fields

    def arguments(self, fields: tuple[str, ...], value: Callable[[], object], of: str = "") -> dict[str, object]:
        """`(field=VALUE, ...)`, or the first fields by position (as a dataclass's repr writes them)
        before any by keyword, each VALUE read by `value`; `of` names the call in messages (" of Cell")."""
        self.eat("(")
        out: dict[str, object] = {}
        positional = 0
        keywords = False
        while self.peek() != ")":
            save = self.i
            key: str | None = None
            if self.peek().isalpha():
                key = self.name()
                if self.peek() == "=":
                    self.i += 1
                elif not self.peek():
                    raise self.fail("'='")  # cut short after a field name
                else:
                    self.i, key = save, None
            if key is None:
                if positional >= len(fields) or keywords:
                    raise self.fail("a keyword argument")
                key = fields[positional]
                positional += 1
            else:
                keywords = True
            if key not in fields:
                raise GenotypeError(f"genotype text: unknown field {key!r}{of} (fields: {', '.join(fields)})")
            if key in out:
                raise GenotypeError(f"genotype text: field {key!r}{of} given twice")
            out[key] = value()
            if self.peek() == ",":
                self.i += 1
            elif self.peek() != ")":
                raise self.fail("',' or ')'")
        self.i += 1
        return out

    def cellwise(self) -> list[dict[str, object]]:
        """`CellwiseGenotype(cells_=(Cell(genes=..., concat=..., reduction=...), ...))`, its repr."""
        def cells() -> list[dict[str, object]]:
            close = {"(": ")", "[": "]"}.get(self.peek())
            if close is None:
                raise self.fail("a tuple of Cell(...)")
            self.i += 1
            out = []
            while self.peek() != close:
                self.word("Cell")
                out.append(self.arguments(("genes", "concat", "reduction"), self.value, " of Cell"))
                if self.peek() == ",":
                    self.i += 1
                elif self.peek() != close:
                    raise self.fail(f"',' or {close!r}")
            self.i += 1
            return out

        self.word("CellwiseGenotype")
        fields = self.arguments(("cells_",), cells, " of CellwiseGenotype")
        if self.peek():
            raise self.fail("the end of the text")
        if "cells_" not in fields:
            raise GenotypeError("genotype text: CellwiseGenotype() holds no cells_")
        return fields["cells_"]   # type: ignore[return-value]

    def word(self, expected: str) -> None:
        if self.name() != expected:
            raise self.fail(repr(expected))

    def cell_line(self, k: int) -> dict[str, object]:
        """`cell K (normal|reduce): GENES, concat=LIST`, cell K being the k-th line."""
        self.word("cell")
        at = self.i
        number = self.value()
        if number != k or type(number) is not int:
            self.i = at
            raise self.fail(f"cell number {k}")
        self.eat("(")
        at = self.i
        kind = self.name()
        if kind not in ("normal", "reduce"):
            self.i = at
            raise self.fail("normal or reduce")
        self.eat(")")
        self.eat(":")
        genes = self.value()
        self.eat(",")
        self.word("concat")
        self.eat("=")
        concat = self.value()
        return {"genes": genes, "concat": concat, "reduction": kind == "reduce"}


def parse_fields(text: str) -> dict[str, object]:
    """The fields of `Genotype(...)` text as plain lists and ints; GenotypeError on anything else."""
    if not isinstance(text, str):
        raise GenotypeError("genotype text must be a string")
    try:
        return _Parser(text.strip()).genotype()
    except RecursionError:
        raise GenotypeError("genotype text is nested too deeply") from None


def parse_cellwise(text: str) -> list[dict[str, object]]:
    """The cells of a per-cell genotype's repr, `CellwiseGenotype(cells_=(Cell(...), ...))`, as raw
    `Cell` fields; GenotypeError on anything else."""
    try:
        return _Parser(text.strip()).cellwise()
    except RecursionError:
        raise GenotypeError("genotype text is nested too deeply") from None


def parse_cell_lines(text: str) -> list[dict[str, object]]:
    """The cells of per-cell text, a line per cell numbered from 0, as raw `Cell` fields (genes,
    concat, reduction); GenotypeError on anything else."""
    cells: list[dict[str, object]] = []
    for line in text.strip().splitlines():
        if not line.strip():
            continue
        parser = _Parser(line.strip())
        try:
            cell = parser.cell_line(len(cells))
            if parser.peek():
                raise parser.fail("the end of the line")
            cells.append(cell)
        except GenotypeError as e:
            raise GenotypeError(f"per-cell genotype text, line of cell {len(cells)}: {e}") from None
        except RecursionError:
            raise GenotypeError("genotype text is nested too deeply") from None
    return cells
