"""The library's messages on stderr (notes, warnings, what to run to resume) go through the `diffnas`
logger, so a Python caller can quiet or redirect them with `logging`:
`logging.getLogger("diffnas").setLevel(logging.WARNING)` keeps only the warnings. By default the
logger writes each line to the current sys.stderr, as the command line shows them, and does not pass
them on to the root logger. Progress bars (tqdm: the loops', image decoding's, downloads') follow it
too: they are drawn while the logger shows INFO lines (`progress_shown`), and off at WARNING and above.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import shlex
import sys
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

LOGGER = logging.getLogger("diffnas")


class _Stderr(logging.Handler):
    """Each record's message, as it is, on whatever sys.stderr is when it is said (a test's capture,
    a redirect made after import); above any progress bar when the record asks (`above_bars`)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            if getattr(record, "above_bars", False):
                from tqdm import tqdm

                tqdm.write(text, file=sys.stderr)
            else:
                print(text, file=sys.stderr, flush=True)
        except Exception:   # logging's contract: a failing handler reports, never raises
            self.handleError(record)


if not LOGGER.handlers:
    LOGGER.addHandler(_Stderr())
    LOGGER.propagate = False
if LOGGER.level == logging.NOTSET:   # a level the caller set before importing diffnas stays
    LOGGER.setLevel(logging.INFO)


def say(line: str, *, above_bars: bool = False) -> None:
    """One line for the user: a warning (logging.WARNING) when it says "diffnas: warning:", else a
    note (logging.INFO). above_bars: written above an active progress bar, not into it."""
    level = logging.WARNING if line.startswith("diffnas: warning:") else logging.INFO
    LOGGER.log(level, line, extra={"above_bars": above_bars})


def shell(*words: object) -> str:
    """A command for the user to paste into a POSIX shell: each word (a path, a name) quoted where it
    needs it (`diffnas train --resume 'runs/my run'`); a word without spaces or shell characters is
    left as it is. A path (`Path`) that starts with "-" is written ./-name, so it is not taken for a flag."""
    return " ".join(shlex.quote(f"./{w}" if isinstance(w, Path) and str(w).startswith("-") else str(w))
                    for w in words)


# How a message names a config value depends on who reads it: the command line's user types flags,
# a Python caller keyword arguments. cli.main says which (`command_line`); a pipeline says which of
# its stages runs (`stage`), as `diffnas run` has its own flags for the training's values.
_COMMAND_LINE: contextvars.ContextVar[Mapping[str, Mapping[str, str]] | None] = contextvars.ContextVar(
    "diffnas_command_line", default=None)   # None: Python; else each stage's flags ({"train": {field: flag}})
_STAGE: contextvars.ContextVar[str] = contextvars.ContextVar("diffnas_stage", default="")
# the arguments `diffnas` was given (cli.main's argv, which a caller of main() may pass itself)
_ARGV: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar("diffnas_argv", default=None)
_NO_VALUE = object()


def progress_shown() -> bool:
    """Whether progress bars are drawn: while the `diffnas` logger shows INFO lines (the default)."""
    return LOGGER.isEnabledFor(logging.INFO)


def redraw_interval() -> float:
    """Seconds between a bar's redraws: 0.5 on a terminal; 30 when stderr is a file or a pipe (a job's
    log), where every redraw stays as a line: an hour's run wrote 7,200 of them."""
    return 0.5 if _stderr_is_terminal() else 30.0


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):   # replaced by an object without isatty, or closed
        return False


_CURSOR = re.compile("\x1b\\[[0-9;]*[A-Za-z]")   # a terminal's escape sequence: cursor up, erase line


class _Lines:
    """A stream for a tqdm bar writing into a log file or pipe: each redraw one line ending in a newline.
    tqdm draws for a terminal, each redraw "\\r" + the bar padded with spaces and a cleared bar a run of
    spaces, which a log keeps as one ever longer line of carriage returns (`less` shows ^M)."""

    def __init__(self, stream: Any):
        self._stream = stream

    def write(self, text: str) -> int:
        # tqdm's cursor moves for a bar below another (a caller's own outer bar) have no place in a log
        for piece in _CURSOR.sub("", text).replace("\n", "\r").split("\r"):
            if piece.strip():   # the clearing runs of spaces are left out
                self._stream.write(piece.rstrip() + "\n")
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:   # encoding, isatty, ...: the stream's own
        return getattr(self._stream, name)


def bar_settings() -> dict[str, Any]:
    """tqdm's stream and redraw timing for diffnas's bars, on stderr: at most one redraw in
    `redraw_interval()`, and tqdm's monitor thread (which redraws a bar that has not moved) no more
    often either. Into a log file or pipe each redraw is a line of its own (`_Lines`), and a bar
    shows only once it has run a redraw interval, so a short pass leaves no "0%" line behind."""
    interval = redraw_interval()
    settings: dict[str, Any] = {"file": sys.stderr, "mininterval": interval, "maxinterval": max(10.0, interval)}
    if not _stderr_is_terminal() and "ipykernel" not in sys.modules:   # a notebook redraws a "\r" bar in place
        settings.update(file=_Lines(sys.stderr), delay=interval)
    return settings


def on_command_line() -> bool:
    """Whether the messages said now are for the command line's user (else for a Python caller)."""
    return _COMMAND_LINE.get() is not None


def to_run(words: Sequence[object], python: str) -> str:
    """What the reader runs next: the command `words` (quoted by `shell`) on the command line, the
    Python call `python` (`train(cfg, resume='runs/x')`) from Python."""
    return shell(*words) if on_command_line() else python


def resume_call(command: str, run: object) -> str:
    """How the reader goes on with the run in `run`, made by `command` (search, train, or run/pipeline):
    `diffnas search --resume RUN` on the command line, `search(cfg, resume='RUN')` from Python."""
    cli = "run" if command == "pipeline" else command
    python = (f"run_pipeline(search_cfg, train_cfg, {str(run)!r}, resume=True)" if cli == "run"
              else f"{cli}(cfg, resume={str(run)!r})")
    return to_run(("diffnas", cli, "--resume", run), python)


def train_call(genotype: object) -> str:
    """The Python call that trains `genotype` (a search run's folder), to be completed with the
    caller's own values (the data, the size), as `diffnas train --genotype RUN` is with flags."""
    return f"train(train_config(genotype={str(genotype)!r}, ...))"


@contextlib.contextmanager
def command_line(stage_flags: Mapping[str, Mapping[str, str]] | None = None,
                 argv: Sequence[str] | None = None) -> Iterator[None]:
    """Messages said inside name values as flags. stage_flags: for `diffnas run`, the flag of each
    field a stage has one for ({"train": {"epochs": "--train-epochs", "device": "--device", ...}}).
    argv: the arguments of `diffnas` (cli.main's; `invocation`), kept by an inner call without them."""
    token = _COMMAND_LINE.set(dict(stage_flags or {}))
    argv_token = _ARGV.set(tuple(argv)) if argv is not None else None
    try:
        yield
    finally:
        _COMMAND_LINE.reset(token)
        if argv_token is not None:
            _ARGV.reset(argv_token)


def invocation() -> list[str] | None:
    """The arguments `diffnas` runs with (without the program's name), or None outside cli.main."""
    argv = _ARGV.get()
    return None if argv is None else list(argv)


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """A pipeline's stage (`"train"`) runs inside: its messages name its own flags. An error that
    leaves the block carries the stage it came from (`error_stage`), for the command line to name
    its value by the stage's flag."""
    token = _STAGE.set(name)
    try:
        yield
    except Exception as e:
        if not error_stage(e):
            e.diffnas_stage = name   # type: ignore[attr-defined]
        raise
    finally:
        _STAGE.reset(token)


def error_stage(e: BaseException) -> str:
    """The pipeline stage an error was raised in (`stage`), or ""."""
    return getattr(e, "diffnas_stage", "")


def option(name: str, value: Any = _NO_VALUE) -> str:
    """A config field (and a value for it) as the reader sets it: `--batch-size 16` on the command
    line (`--no-plots` for plots False), `batch_size=16` from Python; in the training stage of
    `diffnas run`, its flag (`--train-batch-size 16`), or `[train] batch_size = 16` for a field it has
    none for. A PLACEHOLDERS value ("N", "DIR") is written as it is."""
    flags = _COMMAND_LINE.get()
    if flags is None:
        return name if value is _NO_VALUE else f"{name}={_python(value)}"
    stage_name = _STAGE.get()
    if stage_name:
        flag = flags.get(stage_name, {}).get(name)
        if flag is None:
            return f"[{stage_name}] {name}" + ("" if value is _NO_VALUE else f" = {_toml(value)}")
    else:
        flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return flag if value else flag.replace("--", "--no-", 1)
    return flag if value is _NO_VALUE else f"{flag} {_word(value)}"


def _plain(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _word(value: Any) -> str:
    """A flag's value as typed into a shell: a path with a space quoted (`--data-dir '/my data'`)."""
    return shell(value) if isinstance(value, (str, Path)) and value not in PLACEHOLDERS else _plain(value)


# values that stand for the reader's own choice, written as they are: `--epochs N`, `epochs=N`
PLACEHOLDERS = ("N", "DIR")


def _python(value: Any) -> str:
    if isinstance(value, str) and value in PLACEHOLDERS:
        return value
    return _plain(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else repr(value)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _python(value) if not isinstance(value, str) or value in PLACEHOLDERS else f'"{value}"'
