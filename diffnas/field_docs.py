"""A dataclass's docstring completed with its fields: `help(SearchConfig)` says what each one means.

The meaning of a field is the comment beside it in the source (units, the paper or code it follows),
so it is written once, where the field is; a comment block above a field without a comment of its own
is that field's, and above one with its own comment, the heading of a section of fields.
"""

from __future__ import annotations

import dataclasses
import inspect


def _comments(cls: type) -> tuple[dict[str, str], dict[str, str]]:
    """({field: its comment}, {field: the section heading above it}) read off the class's source;
    empty where the source cannot be read (a frozen application)."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return {}, {}
    docs: dict[str, str] = {}
    headings: dict[str, str] = {}
    block: list[str] = []
    for line in lines:
        if not line.startswith("    ") or line.startswith("     "):   # the class body's own lines only
            continue
        text = line.strip()
        if text.startswith("#"):
            block.append(text.lstrip("# "))
            continue
        name, colon, rest = text.partition(":")
        if colon and name.isidentifier() and not text.startswith(("def ", "@")):
            own = rest.split("  # ", 1)[1].strip() if "  # " in rest else ""
            if own and block:
                headings[name] = " ".join(block)
            docs[name] = own or " ".join(block)
        block = []
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
