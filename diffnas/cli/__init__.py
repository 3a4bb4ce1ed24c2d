"""`diffnas` command line: argv -> config -> one library call. Nothing else parses argv.

Each subcommand lives in its own module exposing `register(subparsers)`, which adds a parser with
`set_defaults(func=run)`, and `run(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from typing import NoReturn, Sequence

from ..errors import DiffnasError

COMMANDS = ("search", "train", "run", "evaluate", "params", "toy", "plot", "report", "download")


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors (a bad flag value, a missing argument) are one line, exit 2,
    like every other input error; subcommand parsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"diffnas: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="diffnas", description="Differentiable neural architecture search.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    for p in sub.choices.values():  # `diffnas search ... --debug` works too (main() looks for it in argv)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        return _run(argv, debug)
    except KeyboardInterrupt:
        # Ctrl-C outside the loops (they stop at a step boundary themselves): while the subcommands
        # import torch and matplotlib, or between steps of a command
        if debug:
            traceback.print_exc()
        print("diffnas: interrupted", file=sys.stderr)
        return 130


def _run(argv: list[str], debug: bool) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help (0), or a usage error already printed on one line (2)
        return e.code if isinstance(e.code, int) else 0 if e.code is None else 2
    try:
        return int(args.func(args) or 0)
    except (DiffnasError, OSError) as e:
        # input errors (and the file system refusing a path): one line, exit 2; tracebacks with --debug
        if debug:
            traceback.print_exc()
        if isinstance(e, OSError) and e.filename is not None:
            message = f"{e.filename}: {e.strerror or e}"
        else:
            message = str(e)
        print(f"diffnas: error: {' '.join(message.split(chr(10)))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
