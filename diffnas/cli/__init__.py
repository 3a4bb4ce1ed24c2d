"""`diffnas` command line: argv -> config -> one library call. Nothing else parses argv.

Each subcommand lives in its own module exposing `register(subparsers)`, which adds a parser with
`set_defaults(func=run)`, and `run(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from ..errors import DiffnasError

COMMANDS = ("search", "train", "run", "evaluate", "params", "toy", "plot", "report", "download")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diffnas", description="Differentiable neural architecture search.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DiffnasError as e:
        if debug:
            raise
        print(f"diffnas: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("diffnas: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
