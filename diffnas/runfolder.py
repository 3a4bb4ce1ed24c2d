"""Run folders before and around a run: the checks a new run or a resume makes of its folder (a file in
the way, a folder this process cannot write, a run or other files already there, a folder another
process is writing), the lock a writing run holds on its folder (`lock_run_dir`: a second writer is
refused at the start instead of interleaving rows with the first), and what a folder's config.json
says (`run_config`, `run_command`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

from .errors import CheckpointError, ConfigError
from .notices import option, resume_call


def lock_run_dir(run_dir: Path) -> int | None:
    """An exclusive lock on the folder `run_dir` (flock on the folder itself, no lock file), held by
    the returned descriptor until it is closed or the process ends (a kill -9 leaves no stale lock); a
    ConfigError when another process holds it. None where the system has no flock (Windows)."""
    return _flock(run_dir, exclusive=True)


def _flock(run_dir: Path, exclusive: bool) -> int | None:
    """`lock_run_dir`'s lock, or a shared one (a probe: probes of the torchrun ranks do not block each
    other, the lock of a run writing the folder blocks them all)."""
    try:
        import fcntl
    except ImportError:
        return None
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise _in_use(run_dir) from None
    except OSError:   # a file system without locks: the run goes on unlocked
        os.close(fd)
        return None
    return fd


def _in_use(run_dir: Path) -> ConfigError:
    return ConfigError(f"{run_dir}: in use by another diffnas process (a search or training writing to it now); "
                       f"wait for it to end, or give another folder")


def refuse_in_use(run_dir: Path) -> None:
    """The "in use by another diffnas process" ConfigError when another process writes the run in
    `run_dir` (holds its lock, or a pipeline's: its search/ or train/): said before "holds a run
    already; continue it with --resume", which that process would refuse."""
    for folder in (run_dir, run_dir / "search", run_dir / "train"):
        if folder.is_dir():
            try:
                fd = _flock(folder, exclusive=False)
            except ConfigError:   # said of the folder given, a pipeline's too
                raise _in_use(run_dir) from None
            if fd is not None:
                os.close(fd)


def check_writable(folder: Path, target: Path, name: str) -> None:
    """ConfigError when this process cannot make or write `target` in `folder` (`target` or its nearest
    existing parent: a read-only mount, another user's folder), named as `name` (a config field or
    flag); said of the folder, where the first write would name its hidden temporary file. Rank 0
    alone writes under torchrun, and alone checks."""
    from .distributed import is_main

    if os.access(folder, os.W_OK | os.X_OK) or not is_main():
        return
    read_only = hasattr(os, "statvfs") and os.statvfs(folder).f_flag & os.ST_RDONLY
    why = "a read-only file system" if read_only else "no permission to write"
    where = "there" if folder == target else f"into {folder}, where it is to be made"
    # what to do about it: a resume goes on in a copy; plot and report write elsewhere (--out)
    instead = ("a run to resume: a copy of its folder" if name == "resume" else
               "--out DIR writes elsewhere" if name == "RUN_DIR" else "")
    raise ConfigError(f"{name}: {target}: cannot write {where} ({why}); a run or its output needs a folder "
                      f"this process can write to" + (f" ({instead})" if instead else ""))


def check_run_dir(run_dir: Path, name: str = "run_dir") -> None:
    """ConfigError when `run_dir`, or the nearest of its parents that exists, is a file or a folder this
    process cannot write into: said on one line before anything is created (and before a resume's
    notes), instead of the OS's "File exists" or a write's error later. `name`: what the message calls
    the folder (the config field or flag)."""
    for folder in (Path(run_dir), *Path(run_dir).parents):
        if folder.exists():
            if not folder.is_dir():
                raise ConfigError(f"{name}: {folder} is a file, not a folder")
            check_writable(folder, Path(run_dir), name)
            return


def refuse_existing_run(run_dir: Path, command: str, markers: Iterable[str] = ("checkpoint.pt", "config.json")) -> None:
    """ConfigError before a new run is made in `run_dir` when the folder holds a run already (one of
    `markers` is there), with how to continue it: the command that made it (`train --run-dir` given a
    search's folder is told `search --resume`), `command`'s when it does not say; or when it holds other
    files (refuse_other_files). One another process is writing is said to be in use (refuse_in_use)."""
    if not any((run_dir / name).exists() for name in markers):
        refuse_other_files(run_dir)
        return
    refuse_in_use(run_dir)
    made_by = run_command(run_dir) or command
    owner = "run" if made_by == "pipeline" else made_by
    go_on = resume_call(owner, run_dir)
    if owner != "run" and not (run_dir / "checkpoint.pt").exists():   # it failed or stopped in its first epoch
        raise ConfigError(f"run_dir: {run_dir} holds a run that saved no checkpoint (it ended in its first "
                          f"epoch, or the checkpoint was removed); continue it with `{go_on}`, or remove the "
                          f"folder to start anew with other values, or choose another {option('run_dir')}")
    raise ConfigError(f"run_dir: {run_dir} holds a run already; continue it with `{go_on}` or choose another "
                      f"{option('run_dir')}")


def refuse_other_files(run_dir: Path, name: str = "run_dir") -> None:
    """ConfigError when `run_dir` is a folder holding files that are not a run's (a project folder, a
    data folder named by mistake): a new run writes config.json, metrics.jsonl, figures/, report.html
    and more there, and would mix with or replace them. Hidden entries (.DS_Store, .git) do not count;
    a missing or empty folder passes. Call it after the holds-a-run check, which says how to resume."""
    try:
        entries = sorted(e.name + ("/" if e.is_dir() else "") for e in os.scandir(run_dir)
                         if not e.name.startswith("."))
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as e:
        raise ConfigError(f"{name}: {run_dir}: cannot read ({e.strerror or e})") from None
    if entries:
        shown = ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
        raise ConfigError(f"{name}: {run_dir} holds other files ({shown}) and no run; a run writes its "
                          f"config.json, checkpoint.pt, metrics.jsonl, figures/ and report into its folder: "
                          f"name a new or empty folder (hidden files such as .DS_Store do not count)")


def check_resumed_dir(run_dir: Path) -> None:
    """A CheckpointError when the folder to resume is not there (a Ctrl-C while the data decoded leaves
    none), rather than the loops' "no config.json, not a ... run folder"."""
    if not Path(run_dir).exists():
        raise CheckpointError(f"{run_dir}: no such folder (nothing to resume)")


def run_config(run_dir: Path) -> dict[str, Any] | None:
    """A run folder's config.json, or None when there is no such file or it cannot be read as one."""
    try:
        value = json.loads((Path(run_dir) / "config.json").read_text())
    except (OSError, ValueError):   # missing, unreadable, not JSON
        return None
    return value if isinstance(value, dict) else None


def run_command(run_dir: Path) -> str | None:
    """The "command" a run folder's config.json names (search, train, pipeline), or None when there is
    no such file or it cannot be read as one."""
    value = (run_config(run_dir) or {}).get("command")
    return value if isinstance(value, str) else None


def missing_folders(path: Path) -> list[Path]:
    """`path` and its parents up to the first that exists, deepest first."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    return missing


def remove_empty_folders(folders: Iterable[Path]) -> None:
    """Remove `folders` (`missing_folders` made them: deepest first) while they are empty; the first
    that holds something stays, with every folder above it."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            break
