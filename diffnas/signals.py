"""Stopping a long loop well: SIGINT / SIGTERM set a flag; the loop finishes its current step, saves,
and exits with the command to resume (a second Ctrl-C stops at once)."""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Iterator


# what the first Ctrl-C says, by where the loop is (StopRequested.when)
AFTER_STEP = "stopping after this step to save a checkpoint"
IN_PASS = "stopping this {split} pass now; the epoch's steps are saved for the resume"
ENDING = "stopping once this epoch is saved"
SAVED = "stopping: the epoch is saved"


class StopRequested:
    """Set by SIGINT/SIGTERM while installed; `signum` tells which. `when`: what a stop does where the
    loop is now (AFTER_STEP, IN_PASS, ENDING, SAVED), said at the first Ctrl-C."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.when = AFTER_STEP

    def __bool__(self) -> bool:
        return self.signum is not None

    def exit_code(self) -> int:
        return 128 + (self.signum or 0)


@contextmanager
def stop_on_signals() -> Iterator[StopRequested]:
    """Within the block, SIGINT/SIGTERM only request a stop; a second SIGINT interrupts at once. The
    first Ctrl-C says so at once (a step can take seconds), from torchrun's rank 0 only. A signal the
    process was started ignoring stays ignored."""
    stop = StopRequested()
    previous = {}

    def handler(signum: int, frame: object) -> None:
        if stop and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if signum == signal.SIGINT and not stop and os.environ.get("RANK", "0") == "0":
            # os.write: print() from a handler can re-enter a stderr write the loop was in the middle of
            again = "stop at once" if stop.when == SAVED else "stop at once, without saving"
            os.write(2, f"\ndiffnas: {stop.when} (Ctrl-C again: {again})\n".encode())
        stop.signum = signum

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            if signal.getsignal(sig) is signal.SIG_IGN:   # ignored by who started us (`cmd &` in a script,
                continue                                   # whose Ctrl-C is not for background jobs): still so
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: signals stay as they are
            pass
    try:
        yield stop
    finally:   # None: a handler not set from Python (an embedding program's); the default is what it can be
        for sig, h in previous.items():   # put back as
            signal.signal(sig, signal.SIG_DFL if h is None else h)


class Terminated(BaseException):
    """SIGTERM, raised inside `terminate_raises` (a BaseException, as KeyboardInterrupt: no `except
    Exception` swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


@contextmanager
def terminate_raises() -> Iterator[None]:
    """Within the block SIGTERM raises `Terminated` where the code is, as Ctrl-C raises
    KeyboardInterrupt: for work after a run's loop (its figures) that a stop may cut short but that
    must not end the process before the run's result is said. A SIGTERM whose exception Python
    dropped (raised inside a __del__ or a weakref callback, as matplotlib's run during garbage
    collection: printed and dropped) is raised again as the block ends. Off the main thread, or
    where SIGTERM is ignored (by who started the process): unchanged."""
    seen = StopRequested()

    def handler(signum: int, frame: object) -> None:
        seen.signum = signum
        raise Terminated(signum)

    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is signal.SIG_IGN):
        yield
        return
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:   # None: a handler not set from Python; the default is what it can be put back as
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
    if seen.signum is not None:   # the block ended without the Terminated its handler raised
        raise Terminated(seen.signum)
