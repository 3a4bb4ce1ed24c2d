"""The run folder: resolved config, per-epoch metrics (JSON lines and TensorBoard), progress bar.

Only the writing rank (rank 0 under torchrun) touches files; other ranks get a RunLog that
does nothing, so the loops call it unconditionally. A run that fails to start calls `discard()`:
the folders this RunLog created are removed, a folder that was there before is left as it was.
While a RunLog is open it holds a lock on its folder (`runfolder.lock_run_dir`): a second process that
would write the same run (a resume started twice, two runs given one --run-dir) is refused at the start
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
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Optional, Protocol

from .atomic import atomic_write_bytes
from .errors import ConfigError
from .notices import bar_settings, option, progress_shown, say, shell
from .runfolder import lock_run_dir, missing_folders, remove_empty_folders
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
        run resumed rewrites nothing: its files keep their times)."""
        path = self.run_dir / name
        if self.enabled and not (path.is_file() and path.read_bytes() == data):
            atomic_write_bytes(path, data)

    def append_jsonl(self, name: str, obj: dict[str, Any]) -> None:
        if self.enabled:
            with open(self.run_dir / name, "a") as f:
                f.write(_json_line(obj) + "\n")

    def metrics(self, row: dict[str, Any], step: int) -> None:
        """One epoch's metrics: a line in metrics.jsonl and scalars in TensorBoard, on disk when this
        returns: each epoch's events are a file of their own, closed (tensorboardX's flush leaves the
        events queued for its thread, and a kill lost the epoch's scalars though its checkpoint was saved);
        the files' names sort in step order, as TensorBoard reads them."""
        self.append_jsonl("metrics.jsonl", row)
        if self._tb_writer is None:
            return
        writer = self._tb_writer(str(self.run_dir / "tb"), filename_suffix=f".{step:07d}")
        try:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k != "epoch":
                    writer.add_scalar(k, v, step)
        finally:
            writer.close()

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
                    assert saved_rows is not None   # `restored` says so
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

    def progress(self, iterable: Iterable, total: int, desc: str, initial: int = 0) -> ProgressBar:
        """A tqdm bar on stderr (epoch/step, loss, accuracy, images/s via set_postfix). The bar counts
        an item done when the next one is asked for, so the loops set the postfix after each step with
        refresh=False: the bar's next redraw shows it beside the count of steps it covers."""
        if not self.progress_enabled:
            return _Quiet(iterable)
        return progress_bar(iterable, total, desc, initial)

    def close(self) -> None:
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


class ProgressBar(Protocol):
    """What RunLog.progress gives: a tqdm bar, or _Quiet."""

    def __iter__(self) -> Iterator: ...

    def set_postfix(self, *args: Any, **kwargs: Any) -> None: ...

    def close(self) -> None: ...


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
