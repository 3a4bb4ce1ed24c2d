"""Files replaced whole: a reader (a resume, a browser refreshing a report) sees the old file or the
new one, never half of one.

`atomic_write(path, write)` has `write` fill a temporary file beside `path` (`.NAME.tmp-HOST-PID`), then
renames it over `path` (`atomic_write_bytes(path, data)`: bytes, fsynced). A write that fails removes its
temporary file and leaves `path` as it was; a temporary file left by a writer that was killed on this
machine is removed by the next write of the same file, once its process is gone.
"""

from __future__ import annotations

import contextlib
import glob
import os
import socket
from pathlib import Path
from typing import Callable

# in the temporary's name: a PID says whether its writer still runs only on the machine that wrote it
_HOST = socket.gethostname().replace("-", "_").replace("/", "_") or "host"


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object], *, durable: bool = False) -> None:
    """`write(tmp)` writes the new contents to `tmp`; then they replace `path`. durable: the folder is
    fsynced after the rename, so the new file survives a power cut (checkpoints; `write` fsyncs the
    file itself)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{_HOST}-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:   # disk full, a read-only folder: the old file stays, and no temporary file is left
        with contextlib.suppress(OSError):   # (a read-only folder may refuse even this): the write's error is said
            tmp.unlink(missing_ok=True)
        if e.filename == str(tmp):   # said of the file the user knows, not of the hidden temporary
            raise type(e)(e.errno, e.strerror, str(path)) from e   # --debug shows the temporary's too
        raise
    except BaseException:   # Ctrl-C
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    try:   # the write is done: sweeping leftovers must not fail it
        for stale in path.parent.glob(glob.escape(f".{path.name}.tmp-") + "*"):
            if _writer_gone(stale):
                stale.unlink(missing_ok=True)
    except (OSError, ValueError):
        pass


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """`data` as the whole of `path`, replaced atomically and durably (fsynced: checkpoints, configs)."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    atomic_write(path, write, durable=True)


def _writer_gone(tmp: Path) -> bool:
    """Whether the process that named `tmp` (HOST-PID suffix) no longer runs, so its file is a
    leftover. Another process writing the same file now keeps its own, and so does one on another
    machine (a shared folder: its PIDs mean nothing here)."""
    host, _, pid = tmp.name.rpartition(".tmp-")[2].rpartition("-")
    if host != _HOST or not (pid.isascii() and pid.isdecimal()):
        return False
    if int(pid) == os.getpid():
        return True   # this process wrote and renamed its own: one left here is from an earlier failure
    try:
        os.kill(int(pid), 0)   # signal 0: only asks whether the process exists
    except (ProcessLookupError, OverflowError):   # gone (or a number no process can have)
        return True
    except PermissionError:   # alive, under another user
        return False
    return False
