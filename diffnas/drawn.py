"""Figures already drawn: `figures/.drawn.json` names the files a run's figures were drawn from (a
hash of each, not a modification time: a copied folder's figures still count, and a file rewritten
within one tick of the file system's clock still counts as changed) and the figures drawn, so
`diffnas report` draws again only when one of them changed or a figure is gone (a DNAS search's
twenty-odd figures take tens of seconds; the files, under a MB)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from . import __version__
from .atomic import atomic_write

STAMP = ".drawn.json"
# everything a run's figures are drawn from (config.json: the parametrisation and the threshold)
# raised when the figures' drawing changes, so a report redraws what an older diffnas drew
FIGURES_FORMAT = 3
SOURCES = ("config.json", "metrics.jsonl", "alphas.pt", "genotype.json", "genotypes.jsonl")


def fingerprint(run: Path, rendered: bool) -> dict[str, Any]:
    """What the figures of `run` would be drawn from now: its source files' contents (a hash each),
    whether Graphviz renders the cell diagrams, and this diffnas's version and figure format."""
    files: dict[str, Any] = {}
    for name in SOURCES:
        try:
            digest = hashlib.sha256()
            with open(run / name, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            files[name] = digest.hexdigest()
        except OSError:
            files[name] = None
    return {"diffnas": __version__, "format": FIGURES_FORMAT, "graphviz": rendered, "sources": files}


def _stamp(out: Path) -> tuple[Any, list[Any], list[str]] | None:
    """`out`'s stamp: its key, its figures as written, and those of them that are plain file names in
    `out` (not a path elsewhere); None when there is none, or it is torn or edited out of shape."""
    try:
        stamp = json.loads((out / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stamp, dict) or not isinstance(stamp.get("figures"), list):
        return None
    figures = stamp["figures"]
    names = [n for n in figures if isinstance(n, str) and n == Path(n).name and n not in ("", ".", "..")]
    return stamp.get("key"), figures, names


def drawn_before(out: Path, key: dict[str, Any]) -> list[Path] | None:
    """The figures in `out` drawn from exactly `key`'s files, when every one of them is still there;
    None when they must be drawn (never drawn, drawn from other files, or one deleted)."""
    stamp = _stamp(out)
    if stamp is None or stamp[0] != key:   # none, torn or edited: draw
        return None
    paths = [out / name for name in stamp[2]]
    return paths if len(paths) == len(stamp[1]) and all(p.is_file() for p in paths) else None


def record(out: Path, key: dict[str, Any], paths: list[Path]) -> None:
    """Note that `paths` (all in `out`) were drawn from `key`'s files."""
    names = [p.name for p in paths if p.parent == out]
    if len(names) != len(paths):   # a figure elsewhere: nothing to stamp
        return
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"key": key, "figures": names})
    atomic_write(out / STAMP, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def undrawn_note(run: Path) -> str | None:
    """For a complete run resumed: the line saying that its figures are not all drawn from its files
    as they are now (a kill came while its end drew them, or the total was lowered to the epochs run),
    and how to draw them; None when they are."""
    from .celldiagram import dot_available
    from .notices import to_run

    key = fingerprint(run, (run / "genotype.json").is_file() and dot_available())
    if drawn_before(run / "figures", key) is not None:
        return None
    go = to_run(("diffnas", "plot", run), f"plot_run({str(run)!r})")
    return f"diffnas: note: the figures of {run} are not all drawn from its files as they are now: `{go}` draws them"


def forget(out: Path) -> list[str]:
    """Drawing starts: until it has finished, the figures in `out` are not the stamp's. Returns the names
    of the figures the stamp listed (what `sweep` may remove once the new ones are drawn)."""
    stamp = _stamp(out)
    (out / STAMP).unlink(missing_ok=True)
    return stamp[2] if stamp is not None else []


def sweep(out: Path, before: list[str], now: list[Path]) -> None:
    """Remove the figures an earlier drawing made (`before`, its stamp's names) that this one did not
    (`now`): a DNAS run redrawn once two of its layers' cells became one left the other's cell_NN
    files beside the new ones. Only stamped names go: a file of the user's in `out` stays."""
    kept = {p.name for p in now}
    for name in before:
        if name not in kept:
            (out / name).unlink(missing_ok=True)
