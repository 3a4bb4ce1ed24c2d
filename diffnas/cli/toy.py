"""`diffnas toy`: the two-parameter bilevel problem of the DARTS paper (Figure 2), run for several xi."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from .. import toy
from ..errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "toy", help="the DARTS toy bilevel problem: convergence for several xi, table + figure",
        description="Run the approximate bilevel algorithm (architecture step on the unrolled hypergradient, "
                    "then a weight step; plain gradient descent, lr 1e-2, start (a, w) = (2, -2)) on "
                    "L_train = w^2 - 2aw + a^2, L_val = aw - 2a + 1, for each xi, plus the exact "
                    "(implicit) hypergradient as a reference row. Optimum (a, w) = (1, 1).")
    p.add_argument("--xi", default=",".join(f"{x:g}" for x in toy.DEFAULT_XIS),
                   help="comma-separated xi values >= 0; 0 is first order (default: %(default)s)")
    p.add_argument("--hessian", choices=toy.HESSIANS, default="fd",
                   help="second-order Hessian-vector product: finite differences or exact autograd (default: fd)")
    p.add_argument("--json", action="store_true", help="print a JSON list (one object per row) instead of the table")
    p.add_argument("--csv", type=Path, metavar="FILE",
                   help="also write the rows as CSV to FILE (its folder is made if missing, as --out is)")
    p.add_argument("--out", type=Path, default=Path("runs/toy"), metavar="DIR",
                   help="folder for toy.png and toy.svg, made if missing (default: %(default)s)")
    p.set_defaults(func=run)


def parse_xis(text: str) -> list[float]:
    """'0,0.3,0.5' -> [0.0, 0.3, 0.5]; ConfigError on anything that is not a finite number >= 0."""
    items = [s.strip() for s in str(text).split(",")]
    if not any(items):
        raise ConfigError("--xi: expected a comma-separated list of numbers >= 0, e.g. 0,0.3,0.5")
    out = []
    for s in items:
        try:
            out.append(float(s))
        except ValueError:
            raise ConfigError(f"--xi: {s!r} is not a number (expected e.g. 0,0.3,0.5)") from None
    toy.check_xis(out, "--xi")
    return out


def run(args: argparse.Namespace) -> int:
    xis = parse_xis(args.xi)
    from ..runfolder import check_run_dir

    check_run_dir(args.out, "--out")   # a file where the folder should be: one line, before the runs
    if args.csv is not None:
        if args.csv.is_dir():
            raise ConfigError(f"--csv: {args.csv} is a folder; name the CSV file to write")
        check_run_dir(args.csv.parent, "--csv")
    runs = toy.run_toy(xis, hessian=args.hessian)
    rows = [r.to_dict() for r in runs]
    from ..plots import save_figure, toy_figure   # matplotlib is imported only when the figure is drawn

    figures = save_figure(toy_figure(runs), args.out / "toy")
    if args.csv is not None:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    written = [str(p) for p in figures] + ([str(args.csv)] if args.csv is not None else [])
    if args.json:
        print(json.dumps(rows, indent=2))
        print("wrote " + ", ".join(written), file=sys.stderr)  # stdout stays pure JSON
    else:
        print(toy.format_table(runs))
        print("wrote " + ", ".join(written))
    return 0
