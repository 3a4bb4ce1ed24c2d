"""`diffnas report RUN_DIR`: figures plus one self-contained report.html; prints its path."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report", help="write RUN_DIR/report.html",
        description="Draw the figures of a run folder into RUN_DIR/figures and write RUN_DIR/report.html: "
                    "config, summary, figures and the genotype; opens in a browser without a server.")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder (search, train or pipeline)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..report import check_run_folder, write_report

    print(f"diffnas: drawing the figures and writing the report of {check_run_folder(args.run_dir)}", file=sys.stderr)
    notes: list[str] = []
    path = write_report(args.run_dir, notes=notes)
    for note in notes:
        print(f"diffnas: {note}", file=sys.stderr)
    print(path)
    return 0
