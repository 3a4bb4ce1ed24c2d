"""The figures of a run folder (DESIGN.md, "Run folder"): `plot_run` writes every figure the folder
supports into `figures/` (a pipeline's into its stages' own), `plot_curves` only the learning curves
(cheap enough for a search to call after an epoch). A piece that is missing or unreadable is skipped
with one line saying so; the rest is still drawn. `report.write_report` puts them in a page.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from . import genotype as G
from .arch import ARCHS
from .celldiagram import DOT_MISSING, dot_available, dot_missing_first_said, write_cell_diagrams
from .config import THRESHOLD_ARCHS, SearchConfig
from .drawn import drawn_before, fingerprint, forget, record, sweep
from .errors import DiffnasError
from .notices import say
from .plots import (cell_views, curves_figure, evolution_figure, genotype_misfit, heatmap_figure, load_alphas,
                    network_figure, save_figure)
from .runfolder import run_config
from .runlog import read_rows

PIECES = ("config.json", "metrics.jsonl", "alphas.pt", "genotype.json", "summary.json")


def run_parts(run_dir: Path) -> list[tuple[str, Path]]:
    """('', run) for a plain run; ('search', ...), ('train', ...) for a pipeline folder."""
    subs = [(name, run_dir / name) for name in ("search", "train") if (run_dir / name).is_dir()]
    return subs or [("", run_dir)]


def check_run_folder(run_dir: Path) -> Path:
    """`run_dir` as a Path; DiffnasError when it is not a run folder (one line)."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise DiffnasError(f"{run_dir}: no such run folder")
    if not run_dir.is_dir():
        raise DiffnasError(f"{run_dir}: not a folder (expected a run folder)")
    if not any((d / p).is_file() for _, d in run_parts(run_dir) for p in PIECES) \
            and not any((run_dir / p).is_file() for p in PIECES):
        raise DiffnasError(f"{run_dir}: not a run folder (none of {', '.join(PIECES)} found)")
    return run_dir


def note(notes: list[str] | None, text: str) -> None:
    """A missing or unreadable piece of a run folder, said: appended to `notes`, or logged as a warning."""
    if notes is None:   # a warning, as every other line of a run is said (the logger's WARNING level)
        say(f"diffnas: warning: {text}", above_bars=True)   # the figures' bar may be drawn
    else:
        notes.append(text)


def short(e: Exception) -> str:
    """An error's first line (its name when it says nothing), for a note."""
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _metrics(run: Path, notes: list[str] | None, where: str) -> list[dict[str, Any]]:
    path = run / "metrics.jsonl"
    if not path.is_file():
        note(notes, f"{where}no metrics.jsonl: learning curves skipped")
        return []
    records = read_rows(path)
    if not records:
        note(notes, f"{where}metrics.jsonl has no records: learning curves skipped")
    return records


def latest_genotype(run: Path) -> tuple[G.AnyGenotype, int] | None:
    """An unfinished search's genotype so far: the last row of genotypes.jsonl (written each epoch;
    genotype.json only at the end) and its epoch; None when it has no readable row."""
    rows = read_rows(run / "genotypes.jsonl")
    if not rows or not isinstance(rows[-1], dict):
        return None
    try:
        return G.from_dict(rows[-1].get("genotype")), int(rows[-1].get("epoch", len(rows)))
    except (DiffnasError, TypeError, ValueError):
        return None


def _genotype(run: Path, notes: list[str] | None, where: str) -> tuple[G.AnyGenotype | None, str]:
    """The run's genotype, and "" or, for an unfinished search's genotype so far, what its figures'
    titles say of it ("after epoch 3, not finished")."""
    path = run / "genotype.json"
    if not path.is_file():
        latest = latest_genotype(run)
        if latest is not None:
            note(notes, f"{where}no genotype.json yet (written when the search finishes): the genotype "
                         f"after epoch {latest[1]}, from genotypes.jsonl")
            return latest[0], f"after epoch {latest[1]}, not finished"
        note(notes, f"{where}no genotype.json: cell diagrams and genotype skipped")
        return None, ""
    try:
        return G.load(str(path)), ""
    except DiffnasError as e:
        note(notes, f"{where}genotype.json unreadable ({short(e)}): cell diagrams skipped")
        return None, ""


def plot_curves(run_dir: Path, out_dir: Path | None = None) -> list[Path]:
    """Only the learning curves (`figures/curves.png|svg`); [] while metrics.jsonl has no record."""
    run_dir = Path(run_dir)
    path = run_dir / "metrics.jsonl"
    records = read_rows(path)
    if not records:
        return []
    return save_figure(curves_figure(records, _warmup(run_config(run_dir) or {})),
                       Path(out_dir or run_dir / "figures") / "curves")


def _warmup(cfg: dict[str, Any]) -> int:
    """A search's warm-up epochs (weights only), as its config.json `cfg` says; 0 for any other run."""
    value = cfg.get("warmup_epochs", 0) if cfg.get("command") == "search" else 0
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _edge_factor(cfg: dict[str, Any]) -> bool:
    """Whether the run's psi holds an edge factor (arch.py: pc, dnas), as its config.json `cfg` says."""
    arch = cfg.get("arch")
    return isinstance(arch, str) and arch in ARCHS and ARCHS[arch].edge_factor


def run_threshold(cfg: dict[str, Any]) -> float | None:
    """The discretisation threshold of a run whose genotype is read off by one (`--arch sigmoid`), as its
    config.json `cfg` says; None otherwise."""
    value = cfg.get("threshold", SearchConfig.threshold)
    if cfg.get("arch") not in THRESHOLD_ARCHS or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def plot_one(run: Path, out: Path, notes: list[str] | None, where: str, reuse: bool = False) -> list[Path]:
    """Every figure of one run into `out`, with a progress bar of them on stderr (a paper-size DNAS
    search draws some twenty, each as PNG and SVG: tens of seconds). `reuse`: the figures `out`
    already holds, when drawn from the run's files as they are now (`drawn.py`), are not drawn again."""
    from .runlog import progress_bar

    records = _metrics(run, notes, where)
    genotype_notes: list[str] = []   # said after the weights' notes, where the cell diagrams are
    genotype, so_far = _genotype(run, genotype_notes, where)   # read first: the heatmap outlines its genes
    config = run_config(run) or {}   # read once: the command, the parametrisation, the threshold
    alphas = None
    if not (run / "alphas.pt").is_file():
        if config.get("command") != "train":   # a training run has no architecture weights to draw
            note(notes, f"{where}no alphas.pt: weight heatmaps and weight evolution skipped")
    else:
        try:
            alphas = load_alphas(run / "alphas.pt")
        except DiffnasError as e:
            note(notes, f"{where}{short(e)}: weight heatmaps and weight evolution skipped")
    for text in genotype_notes:
        note(notes, text)
    outlined = genotype   # the genes the weight figures outline: none from a genotype.json edited to another space
    if alphas is not None and genotype is not None and (misfit := genotype_misfit(genotype, alphas)) is not None:
        note(notes, f"{where}the genotype does not fit alphas.pt ({misfit}): the weight figures outline no genes")
        outlined = None
    rendered = genotype is not None and dot_available()
    # said once here (logged: once a process, as a pipeline draws twice); the .dot sources are still written
    if genotype is not None and not rendered and (notes is not None or dot_missing_first_said()):
        note(notes, f"{where}{DOT_MISSING}")
    key = fingerprint(run, rendered)
    before = drawn_before(out, key) if reuse else None
    if before is not None:
        return before
    stamped = forget(out)   # the names the stamp listed
    views = cell_views(alphas) if alphas is not None else []
    total = (bool(records) + (alphas is not None) * (1 + _edge_factor(config) + len(views))
             + (genotype is not None) * (1 + isinstance(genotype, G.CellwiseGenotype)))
    bar = progress_bar(range(total), total, f"{where}figures")
    paths: list[Path] = []
    complete = True

    def drawn(new: list[Path]) -> None:
        paths.extend(new)
        bar.update(1)

    try:
        if records:
            drawn(save_figure(curves_figure(records, _warmup(config)), out / "curves"))
        if alphas is not None:
            heatmap = heatmap_figure(alphas, outlined, threshold=run_threshold(config))
            drawn(save_figure(heatmap, out / "weights_heatmap"))
            if _edge_factor(config):
                drawn(save_figure(heatmap_figure(alphas, outlined, per_edge=True), out / "weights_heatmap_per_edge"))
            for title, k in views:
                name = title.split()[0] if alphas["shared"] else f"layer{k:02d}"
                # an edge factor (pc, dnas) spreads the rows apart: the ops' shares show their ranking
                fig = evolution_figure(alphas, k, f"architecture weights over the epochs: {title}", outlined,
                                       per_edge=_edge_factor(config))
                drawn(save_figure(fig, out / f"weights_evolution_{name}"))
        if genotype is not None:
            try:
                drawn(write_cell_diagrams(genotype, out, render_images=rendered, when=so_far))
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:  # a broken Graphviz must not sink the rest
                note(notes, f"{where}cell diagrams not rendered ({short(e)})")
                complete = False   # drawn again next time, and said again
            if isinstance(genotype, G.CellwiseGenotype):
                drawn(save_figure(network_figure(genotype, so_far), out / "network"))
    finally:
        bar.close()
    if complete and paths:
        record(out, key, paths)
        sweep(out, stamped, paths)
    return paths


def plot_run(run_dir: Path, out_dir: Path | None = None, *, notes: list[str] | None = None) -> list[Path]:
    """Write every figure the run folder supports (PNG + SVG, and .dot sources) and return their paths.

    Figures go to `out_dir` (a pipeline folder's sub-runs to its `search/` and `train/`), by default
    to each run's own `figures/` (a pipeline's: `search/figures/`, `train/figures/`, where its stages
    drew them at their ends, so they are not drawn twice on disk). One line per missing piece is
    appended to `notes` (logged as a warning when `notes` is None).
    """
    run_dir = check_run_folder(run_dir)
    paths: list[Path] = []
    for name, run in run_parts(run_dir):
        out = run / "figures" if out_dir is None else Path(out_dir) / name if name else Path(out_dir)
        paths += plot_one(run, out, notes, f"{name}: " if name else "")
    return paths
