"""`diffnas plot RUN_DIR [--out DIR]`: every figure a run folder supports (PNG + SVG, .dot sources)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "plot", help="draw the figures of a run folder",
        description="Write weight heatmaps, weight evolution, cell diagrams, the per-layer network figure "
                    "and learning curves of a search, train or pipeline run folder (PNG + SVG, .dot sources).")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder (search, train or pipeline)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR", help="output folder (default RUN_DIR/figures)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..run_figures import check_run_folder, plot_run  # matplotlib is imported only when the command runs
    from ..runfolder import check_run_dir

    run_dir = check_run_folder(args.run_dir)
    # a file there (or above it), or a read-only run: said before seconds of drawing, not as the OS's words
    if args.out is not None:
        check_run_dir(args.out, "--out")
    else:
        check_run_dir(run_dir / "figures", "RUN_DIR")
    print(f"diffnas: drawing the figures of {run_dir}", file=sys.stderr)
    notes: list[str] = []
    paths = plot_run(args.run_dir, args.out, notes=notes)
    for note in notes:
        print(f"diffnas: {note}", file=sys.stderr)
    for path in paths:
        print(path)
    return 0
