"""The run folder: resolved config, per-epoch metrics (JSON lines and TensorBoard), progress bar.

Only the writing rank (rank 0 under torchrun) touches files; other ranks get a RunLog that
does nothing, so the loops call it unconditionally. A run that fails to start calls `discard()`:
the folders this RunLog created are removed, a folder that was there before is left as it was.
While a RunLog is open it holds a lock on its folder (`lock_run_dir`): a second process that would
write the same run (a resume started twice, two runs given one --run-dir) is refused at the start
instead of interleaving rows with the first.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import math
import os
import shutil
import signal
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Optional

from .atomic import atomic_write_bytes
from .errors import CheckpointError, ConfigError
from .notices import bar_settings, on_command_line, option, progress_shown, say, shell
from .signals import Terminated, terminate_raises

if TYPE_CHECKING:
    from tqdm import tqdm


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


class RunLog:
    def __init__(self, run_dir: Path, enabled: bool = True, tensorboard: bool = True, progress: bool = True):
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.progress_enabled = progress and enabled
        self._tb = None
        self._tb_writer: Any = None
        # what this RunLog is about to create: run_dir and its missing parents (deepest first), tb/
        self.created: list[Path] = missing_folders(self.run_dir) if enabled else []
        self._tb_created = enabled and tensorboard and not (self.run_dir / "tb").exists()
        self._lock: int | None = None
        if enabled:
            try:
                self._open(tensorboard)
            except ConfigError:   # the lock refused: nothing removed, the folder is the other run's
                raise
            except BaseException:   # Ctrl-C or SIGTERM while it opens (tensorboardX imports for 0.5 s): the
                self.discard()      # folders it made go, as the loops' starting() removes them later on
                raise

    def _open(self, tensorboard: bool) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._lock = lock_run_dir(self.run_dir)
        held = _HOLDING.get()
        if held is not None:
            held.append(self)
        if tensorboard:
            try:
                from tensorboardX import SummaryWriter
            except ImportError:  # optional at run time; the package lists it as a dependency
                say("diffnas: tensorboardX not installed, no TensorBoard events")
            else:   # made with the first metrics: a resumed complete run adds no empty events file
                self._tb_writer = SummaryWriter

    def write_json(self, name: str, obj: Any) -> None:
        self._write(name, (json.dumps(obj, indent=1, default=str) + "\n").encode())

    def write_text(self, name: str, text: str) -> None:
        self._write(name, text.encode())

    def _write(self, name: str, data: bytes) -> None:
        """`data` as the file `name`, atomically; a file that holds it already is left alone (a complete
        run resumed rewrites nothing, and so works on read-only storage)."""
        path = self.run_dir / name
        if self.enabled and not (path.is_file() and path.read_bytes() == data):
            atomic_write_bytes(path, data)

    def append_jsonl(self, name: str, obj: dict[str, Any]) -> None:
        if self.enabled:
            with open(self.run_dir / name, "a") as f:
                f.write(_json_line(obj) + "\n")

    def metrics(self, row: dict[str, Any], step: int) -> None:
        """One epoch's metrics: a line in metrics.jsonl and scalars in TensorBoard."""
        self.append_jsonl("metrics.jsonl", row)
        if self._tb is None and self._tb_writer is not None:
            self._tb = self._tb_writer(str(self.run_dir / "tb"))
        if self._tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k != "epoch":
                    self._tb.add_scalar(k, v, step)
            self._tb.flush()

    def truncate_metrics(self, epochs_done: int, names: Iterable[str] = ("metrics.jsonl", "genotypes.jsonl"), *,
                         write: bool = True, saved_rows: Optional[list[dict[str, Any]]] = None) -> None:
        """On resume, drop rows of epochs after the checkpoint (they will be recomputed).
        Rows count epochs from 1, so `epochs_done` completed epochs keep rows 1..epochs_done. Rows lost
        or doubled (an edited or damaged file) are said; metrics.jsonl is then written again from
        `saved_rows` (a training's checkpoint holds its rows), else one row an epoch is kept.
        write=False (a complete run's resume, which writes nothing): only said."""
        if not self.enabled:
            return
        for name in names:
            path = self.run_dir / name
            if not path.exists():
                continue
            kept = [(e, line) for line in path.read_text().splitlines() if (e := _epoch(line)) <= epochs_done]
            keep = [line for _, line in kept]
            rows = dict(kept)   # by epoch, the last row of each
            expected = list(range(1, epochs_done + 1))
            lost, twice = epoch_gaps([e for e, _ in kept], epochs_done)
            if lost or twice or any(e < 1 for e in rows):   # rows lost, doubled or out of range
                held = [e for e in expected if e in rows]
                restored = name == "metrics.jsonl" and saved_rows is not None and len(saved_rows) >= epochs_done
                if restored:
                    keep = [_json_line(row) for row in saved_rows[:epochs_done]]
                else:
                    keep = [rows[e] for e in expected if e in rows]
                fate = ("written again from the checkpoint's rows" if restored
                        else "the last row of each is kept" if twice and len(held) == epochs_done
                        else "the missing rows cannot be recomputed, so the curves and the report lack them")
                say(f"diffnas: warning: {path} holds rows of {epochs_words(held)} of the {epochs_done} epochs the "
                    f"checkpoint has done (edited or damaged?)"
                    + (f"; {epochs_words(twice)} twice" if twice else "")
                    + (f"; {fate}" if write else "; left as it is (the run is complete)"))
            if write:
                self._write(name, "".join(line + "\n" for line in keep).encode())

    def say(self, line: str) -> None:
        """A line on stderr from the writing rank (a finished epoch: `epoch_line`), between bars."""
        if self.enabled:
            say(line)

    def progress(self, iterable: Iterable, total: int, desc: str, initial: int = 0) -> Iterator:
        """A tqdm bar on stderr (epoch/step, loss, accuracy, images/s via set_postfix). The bar counts
        an item done when the next one is asked for, so the loops set the postfix after each step with
        refresh=False: the bar's next redraw shows it beside the count of steps it covers."""
        if not self.progress_enabled:
            return _Quiet(iterable)
        return progress_bar(iterable, total, desc, initial)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        self._tb_writer = None
        if self._lock is not None:
            os.close(self._lock)   # the lock goes with the descriptor
            self._lock = None

    def discard(self) -> None:
        """Close, and remove the run folder if this RunLog created it, with the parent folders it
        created as long as they are empty (another run may have started beside them); in a folder
        that was there before, only the tb/ folder it created."""
        self.close()
        if self.created:
            shutil.rmtree(self.created[0], ignore_errors=True)
            remove_empty_folders(self.created[1:])
        elif self._tb_created:
            shutil.rmtree(self.run_dir / "tb", ignore_errors=True)
        self.created, self._tb_created = [], False


def progress_bar(iterable: Iterable, total: int, desc: str, initial: int = 0) -> tqdm:
    """The loops' tqdm bar on stderr, cleared when done (RunLog.progress; evaluate's scoring; the figures,
    which `update()` it as they are drawn). Off when the `diffnas` logger says no INFO lines
    (`setLevel(logging.WARNING)`): a caller who quiets the epoch lines does not want the bars either."""
    from tqdm import tqdm

    return tqdm(iterable, total=total, initial=initial, desc=desc, leave=False,
                dynamic_ncols=True, **bar_settings(),
                disable=not progress_shown())


# the RunLogs opened inside `run_folders_released()`, closed when it ends
_HOLDING: contextvars.ContextVar[list[RunLog] | None] = contextvars.ContextVar("diffnas_run_logs", default=None)


@contextlib.contextmanager
def run_folders_released() -> Iterator[None]:
    """Around a run (search(), train()): however it ends, even by an error or a Ctrl-C between its
    phases, the run folders it opened are closed and their locks let go, so that the same Python
    process can resume them at once."""
    held: list[RunLog] = []
    token = _HOLDING.set(held)
    try:
        yield
    finally:
        _HOLDING.reset(token)
        for log in held:
            log.close()


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
    raise ConfigError(f"{name}: {target}: cannot write {where} ({why}); a run or its output needs a folder "
                      f"this process can write to (a run to resume: a copy of its folder)")


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
    go_on = (shell("diffnas", owner, "--resume", run_dir) if on_command_line()
             else f"run_pipeline(search_cfg, train_cfg, {str(run_dir)!r}, resume=True)" if owner == "run"
             else f"{owner}(cfg, resume={str(run_dir)!r})")
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


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSON-lines file (metrics.jsonl), without torn or blank ones; [] if it is missing."""
    if not Path(path).is_file():
        return []
    return [json.loads(line) for line in Path(path).read_text().splitlines() if _epoch(line) != math.inf]


def progress_postfix(totals: list[float], seconds: float) -> dict[str, str]:
    """The progress bar's running loss, accuracy and images/s from the running sums of all ranks
    `totals` = [loss * images, correct, images] (distributed.sum_list) over `seconds`."""
    loss, correct, n = totals
    return {"loss": f"{loss / n:.3f}", "acc": f"{correct / n:.3f}", "img_s": f"{n / max(seconds, 1e-9):.0f}"}


def epoch_line(stage: str, epoch: int, epochs: int, train: tuple[float, float], held_out: tuple[str, float, float],
               lr: float, seconds: float) -> str:
    """One finished epoch for the terminal, e.g. `search epoch 3/5  train loss 1.234 acc 44.5%  val loss
    1.100 acc 54.7%  lr 0.0213  52.1 s`; `train` is (loss, accuracy), `held_out` (split, loss, accuracy)."""
    (loss, acc), (split, held_loss, held_acc) = train, held_out
    return (f"{stage} epoch {epoch}/{epochs}  train loss {loss:.3f} acc {100 * acc:.1f}%  {split} loss "
            f"{held_loss:.3f} acc {100 * held_acc:.1f}%  lr {lr:.4g}  {seconds:.1f} s")


def final_figures(run_dir: Path, late_stop: int) -> int:
    """A finished run's figures, drawn by rank 0 at its end; returns the run's late stop. After a stop
    that came as the last epoch was saved (`late_stop`, 128 + signum) none are drawn (seconds of
    drawing would not be welcome), with one line on how to draw them; else `draw_figures`, which a
    Ctrl-C turns into a late stop of 130."""
    if late_stop:
        say(f"diffnas: figures not drawn (stopped); draw them with `{shell('diffnas', 'plot', run_dir)}`")
        return late_stop
    return draw_figures(run_dir)


def draw_figures(run_dir: Path) -> int:
    """Every figure of a finished run (`run_figures.plot_run`), at its end. Ctrl-C or SIGTERM there stops
    the drawing: the run is complete and saved, so the results are still reported, with one line saying
    how to draw the figures later, and 128 + signum is returned for the run's late stop (a script's
    next command must not run); else 0."""
    say(f"diffnas: drawing the figures in {run_dir / 'figures'} ({option('plots', False)} skips them)")
    try:
        with terminate_raises():   # SIGTERM's default would end the process before the result is said
            from .run_figures import plot_run   # matplotlib is imported only when a run draws: a second or so

            plot_run(run_dir)
    except (KeyboardInterrupt, Terminated) as e:
        say(f"diffnas: {'interrupted' if isinstance(e, KeyboardInterrupt) else 'stopped'} while drawing the "
            f"figures; the run is complete; draw them with `{shell('diffnas', 'plot', run_dir)}`")
        return 128 + int(signal.SIGINT if isinstance(e, KeyboardInterrupt) else e.signum)
    return 0


def coverage(images: int, total: int, split: str) -> str:
    """" (on 288 of 300 test images)" when max_steps capped the batches a metric was taken on, else ""."""
    return f" (on {images:,} of {total:,} {split} images)" if 0 < images < total else ""


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


def _epoch(line: str) -> float:
    """The epoch of a JSON-lines row; a torn row (a kill during the append), a blank one, or one
    without a whole-number epoch counts as never written."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return math.inf
    epoch = row.get("epoch") if isinstance(row, dict) else None
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else math.inf


def _json_line(obj: dict[str, Any]) -> str:
    """A row of a JSON-lines file, as the runs append them."""
    return json.dumps({k: _plain(v) for k, v in obj.items()}, default=str)


def epoch_gaps(epochs: list[Any], done: int) -> tuple[list[int], list[int]]:
    """Of a file's rows' `epochs`: the epochs 1..done that no row has, and those more than one row has
    (an edited or damaged metrics.jsonl, on resume and in the report)."""
    counts = Counter(epochs)
    return [e for e in range(1, done + 1) if e not in counts], sorted(e for e, n in counts.items() if n > 1)


def epochs_words(numbers: list[int]) -> str:
    """"epochs 1, 3" / "epoch 2" / "no epoch"."""
    if not numbers:
        return "no epoch"
    return f"epoch{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}"


class _Quiet:
    """The bar's interface with no output."""

    def __init__(self, iterable: Iterable):
        self._it = iterable

    def __iter__(self) -> Iterator:
        return iter(self._it)

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass
