"""Files replaced whole: a reader (a resume, a browser refreshing a report) sees the old file or the
new one, never half of one.

`atomic_write(path, write)` has `write` fill a temporary file beside `path` (`.NAME.tmp-PID`), then
renames it over `path`. A write that fails removes its temporary file and leaves `path` as it was; a
temporary file left by a writer that was killed is removed by the next write of the same file, once
its process is gone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None], *, durable: bool = False) -> None:
    """`write(tmp)` writes the new contents to `tmp`; then they replace `path`. durable: the folder is
    fsynced after the rename, so the new file survives a power cut (checkpoints; `write` fsyncs the
    file itself)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:   # disk full, Ctrl-C: the old file stays, and no temporary file is left
        tmp.unlink(missing_ok=True)
        raise
    for stale in path.parent.glob(f".{path.name}.tmp-*"):
        if _writer_gone(stale):
            stale.unlink(missing_ok=True)
    if durable:
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _writer_gone(tmp: Path) -> bool:
    """Whether the process that named `tmp` (its PID suffix) no longer runs: its file is a leftover.
    Another process writing the same file now keeps its own."""
    pid = tmp.name.rpartition("-")[2]
    if not pid.isdigit():
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
