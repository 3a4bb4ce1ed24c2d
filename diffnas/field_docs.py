"""A dataclass's docstring completed with its fields: `help(SearchConfig)` says what each one means.

The meaning of a field is the comment beside it in the source (units, the paper or code it follows),
so it is written once, where the field is; a comment block above a field without a comment of its own
is that field's, and above one with its own comment, the heading of a section of fields.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import textwrap
import tokenize


def _comments(cls: type) -> tuple[dict[str, str], dict[str, str]]:
    """({field: its comment}, {field: the section heading above it}) read off the class's source (its
    annotated fields and the comments the tokenizer finds: a docstring is no comment); empty where the
    source cannot be read (a frozen application)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
        body = ast.parse(source).body[0].body   # type: ignore[attr-defined]
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (OSError, TypeError, SyntaxError, tokenize.TokenError, IndexError, AttributeError):
        return {}, {}
    lines = source.splitlines()
    trailing = {t.start[0]: t.string.lstrip("#").strip() for t in tokens
                if t.type == tokenize.COMMENT and lines[t.start[0] - 1][:t.start[1]].strip()}
    alone = {t.start[0]: t.string.lstrip("#").strip() for t in tokens
             if t.type == tokenize.COMMENT and not lines[t.start[0] - 1][:t.start[1]].strip()}
    docs: dict[str, str] = {}
    headings: dict[str, str] = {}
    for node in body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above: list[str] = []
        name, line = node.target.id, node.lineno - 1
        while line in alone:
            above.insert(0, alone[line])
            line -= 1
        own = trailing.get(node.end_lineno or node.lineno, "")
        if own and above:
            headings[name] = " ".join(above)
        docs[name] = own or " ".join(above)
    return docs, headings


def with_field_docs(cls: type) -> type:
    """`cls` (a dataclass) with a line per field appended to its docstring: its default, if any, and
    its comment, under the section headings; returned, so that it can decorate."""
    docs, headings = _comments(cls)
    out = [inspect.cleandoc(cls.__doc__ or ""), "", "Fields (default: meaning):"]
    for f in dataclasses.fields(cls):
        if f.name in headings:
            out.append(f"  {headings[f.name]}:")
        if f.default is not dataclasses.MISSING:
            shown = f"{f.name} = {f.default!r}"
        elif f.default_factory is not dataclasses.MISSING:
            shown = f"{f.name} = {f.default_factory()!r}"
        else:
            shown = f.name
        out.append(f"    {shown}" + (f": {docs[f.name]}" if docs.get(f.name) else ""))
    cls.__doc__ = "\n".join(out)
    return cls
