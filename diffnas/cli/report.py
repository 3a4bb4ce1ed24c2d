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
    p.add_argument("--redraw", action="store_true",
                   help="draw every figure again (by default, figures drawn from the run's files as they are "
                        "now, at its end or by an earlier report, are kept)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="write report.html and the figures into DIR instead of RUN_DIR (a run on read-only "
                        "storage, or another user's)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..report import check_out, check_run_folder, write_report
    from ..runfolder import check_run_dir

    run_dir = check_run_folder(args.run_dir)
    if args.out is None:   # a read-only run: said before any drawing, and told of --out
        check_run_dir(run_dir / "figures", "RUN_DIR")
    else:   # before the first line says where the report goes ("into" a folder it then refused)
        check_out(run_dir, args.out)
    into = "" if args.out is None else f" into {args.out}"
    print(f"diffnas: drawing every figure and writing the report of {run_dir}{into}" if args.redraw else
          f"diffnas: writing the report of {run_dir}{into}, with its figures (those drawn from its files as they "
          f"are now are kept; --redraw draws them all)", file=sys.stderr)
    notes: list[str] = []
    path = write_report(args.run_dir, notes=notes, redraw=args.redraw, out=args.out)
    for note in notes:
        print(f"diffnas: {note}", file=sys.stderr)
    print(path)
    return 0
