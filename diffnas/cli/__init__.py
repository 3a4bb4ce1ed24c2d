"""`diffnas` command line: argv -> config -> one library call. Nothing else parses argv.

Each subcommand lives in its own module exposing `register(subparsers)`, which adds a parser with
`set_defaults(func=run)`, and `run(args) -> int`.

This module imports nothing heavy at module level (nor does the package, diffnas/__init__.py): both
entry points, the console script `diffnas` and `python -m diffnas`, import it before `main` runs,
and Ctrl-C is only handled inside `main`. torch, numpy and matplotlib come in with the subcommands.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import importlib.metadata
import importlib.util
import io
import os
import platform
import re
import select
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Collection, Iterator, NoReturn, Sequence

from ..errors import ConfigError, DiffnasError, suggest
from ..notices import command_line
from ..signals import Terminated, terminate_raises
from .flags import field_flags, flag_named, typed_flags

COMMANDS = ("search", "train", "run", "evaluate", "params", "toy", "plot", "report", "download")
DISTRIBUTED = ("search", "train", "run")   # the commands that share their work over torchrun's processes


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors (a bad flag value, a missing argument) are one line, exit 2,
    like every other input error; subcommand parsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        # argparse names no close choice (`diffnas serch`; Python 3.14's suggest_on_error would)
        bad = re.match(r"argument [^:]+: invalid choice: (.*) \(choose from (.*)\)$", message)
        if bad:   # the choices quoted or not, as Python versions write them
            message += suggest(bad.group(1).strip("'"), [c.strip().strip("'") for c in bad.group(2).split(",")])
        self.exit(2, _error_line(f"{message} (see `{self.prog} --help`)") + "\n")


# how long a rank other than 0 waits before printing an error
QUIET_RANK_WAIT = 5.0


def _error_line(message: str) -> str:
    """"diffnas: error: MESSAGE", one line. Under torchrun a rank other than 0 names itself ("rank N: "),
    and holds its error back QUIET_RANK_WAIT seconds first: most errors are every rank's alike (the
    command line, the config, a missing data folder, a run folder in use), and when rank 0 meets one
    too and exits, torchrun stops the other ranks before they print, so it is said once; one that only
    this rank meets (a file its machine lacks) is still said, late by those seconds. Rank 0 waits for
    it meanwhile (in a collective, or torchrun's wait)."""
    rank = os.environ.get("RANK", "0") if "WORLD_SIZE" in os.environ else "0"
    if rank != "0":
        time.sleep(QUIET_RANK_WAIT)
    who = "" if rank == "0" else f"rank {rank}: "
    return f"diffnas: error: {who}{' '.join(message.split(chr(10)))}"


def version_line() -> str:
    """`diffnas --version`: what a bug report needs (torch's version read without importing it)."""
    from .. import __version__

    return f"diffnas {__version__} (torch {_torch_version()}, Python {platform.python_version()})"


def _torch_version() -> str:
    """torch.__version__ as torch/version.py writes it ("2.2.2+cu121": the build, which the package
    metadata of PyPI's CUDA wheels leaves out), read without importing torch; else the metadata's."""
    try:
        spec = importlib.util.find_spec("torch")
        for folder in (spec.submodule_search_locations or []) if spec is not None else []:
            match = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]",
                              (Path(folder) / "version.py").read_text(), re.MULTILINE)
            if match:
                return match.group(1)
    except (OSError, ImportError, ValueError, UnicodeDecodeError):
        pass
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


class _Version(argparse.Action):
    """--version: the line is made only when asked (reading torch's metadata costs every other start)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        print(version_line())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="diffnas", description="Differentiable neural architecture search.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    parser.add_argument("--version", action=_Version, help="print the versions of diffnas, torch and Python, and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    for p in sub.choices.values():  # `diffnas search ... --debug` works too (main() looks for it in argv)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    started = time.monotonic()   # the commands print their wall time from here
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        return _run(argv, debug, started)
    except (KeyboardInterrupt, Terminated) as e:
        # Ctrl-C or SIGTERM outside the loops (they stop at a step boundary themselves) and outside the
        # imports (_ctrl_c_exits): between steps of a command
        if debug:
            traceback.print_exc()
        said = "" if _quiet_rank() else "diffnas: "   # under torchrun: said once, by rank 0
        if isinstance(e, Terminated):
            if said:
                print(f"{said}terminated ({signal.Signals(e.signum).name})", file=sys.stderr)
            return 128 + e.signum
        if said:
            print(f"{said}interrupted", file=sys.stderr)
        return 130


@contextlib.contextmanager
def _ctrl_c_exits(debug: bool) -> Iterator[None]:
    """Within the block, Ctrl-C ends the process at once: "diffnas: interrupted", exit code 130; and
    SIGTERM too: "diffnas: terminated (SIGTERM)", 143 (by default it ended the process without a word).

    For the imports of torch, numpy and matplotlib, where a KeyboardInterrupt cannot be caught
    reliably: raised inside pybind11 code it aborts the process (std::terminate, SIGABRT); raised
    inside numpy's import it leaves a half-made numpy whose next import fails with another error
    and a traceback; raised inside code run by PyRun_String, Python exits by SIGINT even after
    `main` caught it. Nothing has been written yet, so there is nothing to clean up. Signals stay as
    they are off the main thread, or when they already have a handler other than Python's default
    (a SIGTERM ignored by who started the process stays ignored).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if debug:
            stack = "".join(traceback.format_stack(frame))  # type: ignore[arg-type]
            name = "KeyboardInterrupt" if signum == signal.SIGINT else signal.Signals(signum).name
            print(f"Traceback (most recent call last):\n{stack}{name}", file=sys.stderr)
        if not _quiet_rank():   # under torchrun: said once
            said = "interrupted" if signum == signal.SIGINT else f"terminated ({signal.Signals(signum).name})"
            print(f"diffnas: {said}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + signum)   # 130 for SIGINT, 143 for SIGTERM

    defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
    previous = {sig: signal.signal(sig, handler) for sig, default in defaults.items()
                if signal.getsignal(sig) is default}
    try:
        yield
    finally:
        for sig, handler_before in previous.items():
            signal.signal(sig, handler_before)


def _flag_hint(parser: argparse.ArgumentParser, extra: list[str]) -> str:
    """" (did you mean --epochs?)" for the first unknown flag close to one of the command's."""
    known = [s for a in parser._actions for s in a.option_strings if s.startswith("--")]
    for word in extra:
        if word.startswith("--"):
            close = difflib.get_close_matches(word.split("=", 1)[0], known, n=1, cutoff=0.75)
            if close:
                return f" (did you mean {close[0]}?)"
    return ""


def _blank_value(argv: list[str]) -> str | None:
    """The flag given an empty or blank string in `argv` ("''" for a positional argument): `--config ''` (an
    unset shell variable) read no file, `--run-dir ''` made runs/..., `plot ''` drew the current folder
    (argparse's Path('') is '.'). None when there is none: no value of diffnas is blank."""
    for i, token in enumerate(argv):
        flag, eq, value = token.partition("=")
        if flag.startswith("--") and eq and not value.strip():
            return flag
        if not token.strip():
            before = argv[i - 1] if i else ""
            return before if before.startswith("--") and before != "--" and "=" not in before else "''"
    return None


def _quiet_rank() -> bool:
    """Under torchrun, a rank other than 0: what every rank would say alike, rank 0 says."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 and os.environ.get("RANK", "0") != "0"


def _run(argv: list[str], debug: bool, started: float) -> int:
    try:
        with _ctrl_c_exits(debug):   # the subcommands import torch, numpy, matplotlib
            parser = build_parser()
        # under torchrun only rank 0 prints the help or the versions, not each of the N copies
        with contextlib.redirect_stdout(io.StringIO()) if _quiet_rank() else contextlib.nullcontext():
            args, extra = parser.parse_known_args(argv)
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        sub = commands.choices[args.command]
        if extra:   # named by the subcommand's parser: `see diffnas search --help`, where the flags are
            sub.error(f"unrecognized arguments: {' '.join(extra)}{_flag_hint(sub, extra)}")
        blank = _blank_value(argv)
        if blank:
            sub.error(f"{blank}: an empty value; leave the flag out for its default" if blank.startswith("--")
                      else "an empty argument ('' where a path belongs)")
    except SystemExit as e:  # --help (0), or a usage error already printed on one line (2)
        return e.code if isinstance(e.code, int) else 0 if e.code is None else 2
    args.started = started
    args.field_flags = field_flags(sub)   # for messages that list fields (what a resume may change)
    if args.command not in DISTRIBUTED and int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        # torchrun started N copies: each printed the result and wrote the same files at once
        if _quiet_rank():
            return 0
        print(f"diffnas: {args.command} runs in one process: under torchrun rank 0 runs it and the others do "
              f"nothing (only {', '.join(DISTRIBUTED)} share their work)", file=sys.stderr)
    typed = typed_flags(sub, args)   # before the command fills in values of its own (--dry-run's, defaults)
    args.typed = typed   # for the start's warnings, which name these as the errors below do
    try:
        # command_line: the library's messages name flags, not keyword arguments; terminate_raises: a
        # SIGTERM outside the loops (reading data, between a pipeline's stages) unwinds, so a half-made run
        # folder is removed and the stop is said, as for Ctrl-C, not a silent end
        with command_line(argv=argv), terminate_raises():
            code = int(args.func(args) or 0)
        sys.stdout.flush()   # buffered output meets a closed pipe here, not in the interpreter's exit
        return code
    except BrokenPipeError as e:
        if not _stdout_closed():   # another pipe (a socket, a child's): an error like any other
            return _error(e, debug)
        # output piped into a reader that stopped (`| head`): quiet, as other tools are
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())   # the interpreter's last flush at exit must not fail again
        return 128 + signal.SIGPIPE
    except ConfigError as e:   # a value typed as a flag is named as typed
        return _error(e, debug, flag_named(str(e), typed))
    except (DiffnasError, OSError) as e:
        return _error(e, debug)
    except (MemoryError, RuntimeError) as e:   # numpy's, torch's CPU allocator's, CUDA's: one line, not a traceback
        message = out_of_memory(e, {o for a in sub._actions for o in a.option_strings})
        if message is None:
            raise
        return _error(e, debug, message, code=1)
    except ValueError as e:
        if "Expected more than 1 value per channel when training" not in str(e):
            raise
        # a batch of one image per batch-norm group reaching a 1x1 feature map (tiny images, --batch-size 1)
        return _error(e, debug, "batch norm got one value per channel (one image per batch-norm group at a 1x1 "
                                "feature map), which it cannot normalise: pass a larger --batch-size (or fewer "
                                "--bn-groups), or larger images")


# the flags whose smaller values need less memory, those of the command's that it has (`params` has no
# --batch-size; it said so)
MEMORY_FLAGS = ("--batch-size", "--channels", "--layers", "--nodes", "--image-size", "--random-resized-crop",
                "--train-batch-size", "--train-channels", "--train-layers", "--train-random-resized-crop")


def out_of_memory(e: BaseException, flags: Collection[str] = MEMORY_FLAGS) -> str | None:
    """The one line for an allocation that failed (a network, batch or image size beyond the memory),
    naming those of MEMORY_FLAGS among the command's `flags`; None for an error that is not one."""
    text = str(e)
    if not (isinstance(e, MemoryError) or "can't allocate memory" in text or "out of memory" in text.lower()):
        return None
    size = re.search(r"allocate (\d+) bytes", text)
    said = (f"{float(size[1]) / 2**30:.1f} GiB" if size else None) or (
        m[1] if (m := re.search(r"allocate ([\d.]+ [KMGT]i?B)", text)) else None)
    named = [f for f in MEMORY_FLAGS if f in flags]
    listed = f"{', '.join(named[:-1])} or {named[-1]}" if len(named) > 1 else "".join(named)
    return (f"out of memory{f' (one allocation of {said})' if said else ''}: "
            + (f"smaller {listed} need less" if named else "smaller sizes need less") + " (--debug shows where)")


def _stdout_closed() -> bool:
    """True when stdout is a pipe whose reader is gone (poll reports an error on its write end)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):   # no poll (Windows), stdout without a descriptor
        return False


def _error(e: BaseException, debug: bool, message: str | None = None, code: int = 2) -> int:
    """Input errors (and the file system refusing a path): one line (`message`, or the error's own),
    exit `code` (2; 1 for running out of memory); tracebacks with --debug."""
    if debug:
        traceback.print_exception(e)
    if message is None and isinstance(e, FileExistsError) and e.filename is not None:   # mkdir met a file
        message = f"{e.filename}: a file is in the way where a folder is to be made"
    if message is None:
        message = f"{e.filename}: {e.strerror or e}" if isinstance(e, OSError) and e.filename is not None else str(e)
    if type(e).__name__ == "PeerFailed" and not _quiet_rank():   # (by name: torch is not imported here) another
        # rank's own error, held back QUIET_RANK_WAIT seconds, and torchrun stops it once rank 0 exits: its line first
        time.sleep(QUIET_RANK_WAIT + 1)
    print(_error_line(message), file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
