"""The epoch loop's scaffolding, written once for the search and the training.

Both loops run epochs of steps, each epoch ending with a held-out pass (search: validation; training:
the test split), a metrics row and a checkpoint. What they share lives here:

- the run folder of a new run (`new_run_dir`) and the saved config a resume continues (`resumed_config`);
- the checkpoint: rank 0 writes the loop's `state`, the modules' and optimisers' states, the RNGs and
  what `extra()` adds; the running sums in `state["totals"]` are all ranks' together, so a resume with
  any number of ranks continues them;
- the start (`open`): a resumed run's checkpoint loaded (or a run killed before its first checkpoint
  started over), a new run's config.json written;
- an epoch's steps (`run_steps`): running loss and accuracy, the progress bar, a stop by SIGINT /
  SIGTERM after the same step on every rank, a NaN rollback (recovery.roll_back);
- the held-out pass (`score_epoch`), the end of an epoch (`commit_epoch`), and the stopped exit
  (`stopped`), which saves the exact position and says how to go on.

`state` is the run's position and bookkeeping: at least epoch (epochs done), step (steps done in the
current epoch), totals ([loss sum, correct, images] of the current epoch), seconds (the run's
wall-clock time), device_seconds (that time times the processes that ran it, as the run's cost),
epoch_seconds (the current epoch's time before a stop), lr_scale and rollbacks (recovery.py).
"""

from __future__ import annotations

import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Collection, Iterable, Iterator, Optional, Protocol, Sequence

import torch
from torch import nn

from . import checkpoint, distributed, recovery
from . import config as config_lib
from . import config_file
from .config import C
from .errors import CheckpointError, ConfigError, DataError, NumericalError, warn_caller
from .notices import on_command_line, option, resume_call, say, shell, to_run, train_call
from .provenance import session_record
from .runfolder import check_resumed_dir, check_run_dir, refuse_existing_run
from .runlog import RunLog, progress_postfix
from .signals import AFTER_STEP, ENDING, IN_PASS, SAVED, StopRequested, stop_on_signals

# a command's run folder, in words: "not a training run folder"
_FOLDER_NAME = {"train": "training"}
def _folder_use(command: str, run: Path) -> str:
    """What a run folder of `command` is for, said when another command is pointed at it."""
    if command not in ("search", "train", "pipeline"):
        return ""
    go_on = resume_call(command, run)
    if command == "search":
        train = to_run(("diffnas", "train", "--genotype", run), train_call(run))
        return f"train the cell it found with `{train}`, or resume the search with `{go_on}`"
    if command == "train":
        score = to_run(("diffnas", "evaluate", run), f"evaluate({str(run)!r})")
        return f"score it with `{score}`, or resume the training with `{go_on}`"
    return f"resume the pipeline with `{go_on}`"


class Stateful(Protocol):
    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> Any: ...


def new_state(**extra: Any) -> dict[str, Any]:
    """A new run's loop state, saved in its checkpoint: the keys `Loop` keeps (epoch and step done, the
    running loss/correct/seen `totals` of the epoch, wall and device seconds, the lr scale and count of
    NaN rollbacks, the seconds of an epoch before a stop) and the loop's own `extra`."""
    return {"epoch": 0, "step": 0, "totals": [0.0, 0.0, 0.0], "seconds": 0.0, "device_seconds": 0.0,
            "lr_scale": 1.0, "rollbacks": 0, "epoch_seconds": 0.0, **extra}


def default_run_dir(prefix: str) -> Path:
    """runs/<prefix>-<date>-<time>, with -2, -3 ... after a name that is taken (a sweep's runs started
    within one second); rank 0's name on every rank."""
    base = Path("runs") / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return distributed.broadcast_object(path)


def new_run_dir(run_dir: str | Path | None, command: str, resumed: bool) -> Path:
    """The run's folder: `run_dir`, or runs/<command>-<time>; a file in the way, or a new run in a
    folder that holds one already or other files, is a ConfigError before anything is made."""
    path = Path(run_dir) if run_dir else default_run_dir(command)
    check_run_dir(path)
    if not resumed:
        refuse_existing_run(path, command)
    return path


def extend_hint(default_epochs: int) -> str:
    """How to run a complete run longer, as its reader sets the total: from Python an `epochs` at its
    default is not taken for a change (recovery.overrides) unless named in `given`."""
    if on_command_line():
        return f"pass {option('epochs', 'N')} to extend it"
    return (f"pass epochs=N to extend it (N = {default_epochs}, the default, is taken only when named in given, "
            f"the fields to take from cfg: given={{'epochs'}})")


def resumed_config(cfg: C, defaults: C, run_dir: Path, command: str, resumable: Collection[str],
                   given: Optional[Collection[str]]) -> tuple[C, int]:
    """The config a resume of `run_dir` continues: its saved config.json with the `resumable` fields of
    `cfg` that replace it (recovery.overrides), and the epochs saved there. `defaults` is what a
    Python caller starts from; a folder of another command is a CheckpointError that says what to do
    with it."""
    check_run_dir(run_dir, "resume")
    check_resumed_dir(run_dir)
    name = _FOLDER_NAME.get(command, command)
    if not (run_dir / "config.json").is_file():
        if run_dir.is_dir() and not any(run_dir.iterdir()):   # a stop before the run wrote anything
            start = (shell("diffnas", command, "--run-dir", run_dir) if on_command_line()
                     else f"{command}(cfg) with run_dir={str(run_dir)!r}")
            raise CheckpointError(f"{run_dir}: an empty folder, nothing to resume (a run stopped before it wrote "
                                  f"its config?); start the run anew in it with `{start}` and its flags")
        raise CheckpointError(f"{run_dir}: no config.json, not a {name} run folder")
    saved = config_file.read_file(run_dir / "config.json")
    found = saved.pop("command", command)
    if found != command:
        use = _folder_use(found, run_dir)
        raise CheckpointError(f"{run_dir}: a {found} run folder, not a {name} run folder"
                              + (f"; {use}" if use else ""))
    # a changed value is refused, as the command line refuses its own (a Python caller's too)
    recovery.refuse_resume_changes(cfg, defaults, saved, resumable, given, run_dir)
    changed = recovery.overrides(cfg, defaults, resumable, given)
    resumed = config_lib.from_dict(type(cfg), {**saved, **changed, "run_dir": str(run_dir)})
    if resumed.data_dir is not None and resumed.data_dir == saved.get("data_dir"):
        check_saved_data_folder(resumed.dataset, Path(resumed.data_dir), run_dir)
    return resumed, saved.get("epochs", resumed.epochs)


def check_saved_data_folder(dataset: str, folder: Path, run_dir: Path) -> None:
    """A resumed run's own data folder (its config.json's) that is gone: a DataError that says so and
    how to name the new place, not one about a --data-dir the user never typed."""
    from .data.loaders import DATASETS

    entry = DATASETS.get(dataset)
    if entry is not None and entry.files and not folder.exists():
        raise DataError(f"{dataset}: {folder}, the folder the run in {run_dir} read its data from, is not there "
                        f"(moved or deleted?); resume with {option('data_dir', 'DIR')} naming where it is now")


def resume_line(command: str, run_dir: Path, pipeline: Optional[str | Path], from_python: bool) -> str:
    """How to go on with a stopped run: the pipeline's resume when it is a stage of one, else the
    command's, with the Python call (`search` / `train` are the functions' names too) for a caller
    from Python."""
    if pipeline:   # quoted for the shell where a folder name needs it (spaces)
        return f"resume the pipeline with: {shell('diffnas', 'run', '--resume', pipeline)}"
    return (f"resume with: {shell('diffnas', command, '--resume', run_dir)}"
            + (f" (Python: {command}(cfg, resume={str(run_dir)!r}))" if from_python else ""))


# steps an epoch below which BatchNorm's running statistics (momentum 0.1: about the last 10 updates)
# trail the weights enough to show in the held-out accuracy (digits' quick search: 5 steps an epoch;
# 17.8 % validation accuracy after 4 epochs, 75 % with statistics recomputed at the same weights)
FEW_STEPS = 50


def few_steps_note(steps: int, max_steps: int, split: str) -> str:
    """The note a run of fewer than FEW_STEPS steps an epoch says at its start ('' otherwise, and for a
    --max-steps run, a check whose metrics are a sample anyway): its `split` pass scores in eval mode,
    with the running statistics, as DARTS's code does, and these lag the weights."""
    if max_steps or steps >= FEW_STEPS:
        return ""
    return (f"diffnas: note: {steps} step{'s' if steps != 1 else ''} an epoch: the {split} pass uses BatchNorm's "
            f"running statistics (as DARTS's code does), which follow about the last 10 updates and so trail "
            f"the weights over few steps: the {split} accuracy can read far below the training accuracy "
            f"(a CIFAR-10 epoch at the paper's size has hundreds of steps)")


@dataclass
class EpochScores:
    train: tuple[float, float]      # the epoch's running (loss, accuracy), all ranks
    held_out: tuple[float, float]   # the held-out pass's (loss, accuracy)


class Loop:
    """One run's loop scaffolding; made once the run has passed its start checks (it makes the folder)."""

    def __init__(self, run_dir: Path, state: dict[str, Any], parts: dict[str, Stateful], cfg_dict: dict[str, Any],
                 *, resumable: Collection[str], defaults: dict[str, Any], sync: nn.Module, go_on: str,
                 nan_rollback: int, extra: Callable[[], dict[str, Any]] = dict, stop_after: Optional[int] = None,
                 check_saved: Callable[[dict[str, Any]], None] = lambda saved: None):
        """parts: the modules and optimisers the checkpoint holds, by key; sync: the module whose
        buffers (BN running statistics) are averaged over the ranks before a held-out pass or a save;
        go_on: the line that says how to resume; stop_after: act as if SIGTERM arrived after this many
        steps of this call (tests, dry runs); check_saved(saved): raises when a resumed checkpoint does
        not fit what the run has now (its data's classes), before any weight is restored."""
        self.rank, self.world = distributed.rank_world()
        self.run_dir, self.state, self.parts, self.cfg_dict = run_dir, state, parts, cfg_dict
        self.resumable, self.defaults, self.sync, self.go_on = tuple(resumable), defaults, sync, go_on
        self.nan_rollback, self.extra, self.stop_after = nan_rollback, extra, stop_after
        self.check_saved = check_saved
        self.ckpt_path = run_dir / "checkpoint.pt"
        made: Optional[RunLog] = None
        try:   # a folder in use or not made: every rank stops, not rank 0 alone
            with distributed.together():
                made = RunLog(run_dir, enabled=self.rank == 0)   # makes the folder; starting() removes it on failure
        except BaseException:
            if made is not None:   # another rank failed or was stopped here: the new folder goes too
                made.discard()
            raise
        self.log = made
        self.stop = StopRequested()
        self.steps_run = 0
        self.start_time = self.epoch_start = time.time()   # set again by signals() and begin_epoch()

    # checkpoint

    def save(self) -> None:
        totals = distributed.sum_list(self.state["totals"])
        if self.rank == 0:
            parts = {key: part.state_dict() for key, part in self.parts.items()}
            checkpoint.save(self.ckpt_path, {**self.state, "totals": totals, **parts, "rng": checkpoint.rng_state(),
                                             **self.extra()}, self.cfg_dict)
        distributed.barrier()

    def load(self) -> None:
        saved = checkpoint.load(self.ckpt_path, self.cfg_dict, ignore=self.resumable, defaults=self.defaults)
        self.check_saved(saved)
        for key, part in self.parts.items():
            checkpoint.restore(part, saved.get(key), key, self.ckpt_path)
        checkpoint.set_rng_state(saved["rng"])   # the RNGs of all ranks move in lockstep
        self.state.update({k: saved[k] for k in self.state if k in saved})
        if "device_seconds" not in saved:   # saved before it existed: its time so far, with as many processes as now
            self.state["device_seconds"] = saved.get("seconds", 0.0) * self.world
        if self.rank != 0:
            self.state["totals"] = [0.0, 0.0, 0.0]   # the saved sums are the ranks' together: rank 0's

    def open(self, resumed: bool, write_new: Callable[[RunLog], None], **continue_run: Any) -> bool:
        """A resumed run's checkpoint loaded (recovery.continue_run, with `continue_run`'s words), or a new
        run's files written by `write_new`; True when the resumed run has nothing left to run. Call it
        inside `starting()`."""
        if resumed and self.ckpt_path.is_file():
            self.load()
            # a run stopped early (the search's --max-skips) says so instead of resuming
            complete = recovery.continue_run(self.state, self.log, ended_early=self.state.get("early_stop", ""),
                                             announce=self.rank == 0, **continue_run)
        else:
            if resumed:   # killed before the first checkpoint: start over, without stale rows
                recovery.start_over(self.log, self.rank == 0, self.cfg_dict.get("command", ""))
            write_new(self.log)
            complete = False
        if resumed and self.rank == 0:   # after the checkpoint was found to fit the data named
            self._record_resumed_values(complete)
        if not complete:   # what runs this session (a complete run's resume runs nothing, writes nothing)
            if isinstance(continue_run.get("steps"), int):   # saved for the report's few-steps caution
                self.state["steps_per_epoch"] = continue_run["steps"]   # this session's (its process count)
            device = next(self.sync.parameters()).device
            self.log.append_jsonl("sessions.jsonl", session_record(device, self.world, self.state["epoch"],
                                                                    self.state["step"]))
        return complete

    def _record_resumed_values(self, complete: bool) -> None:
        """A resume that names the data folder anew (the data moved) writes it to config.json, so the next
        resume, `evaluate` and `params` find the data where it is now; so too batch-norm groups that a
        resume with another number of processes had to change (distributed.bn_groups_for), so that
        config.json says what the run now computes and the next resume goes on with it (when it runs on:
        `complete` False); and, when it runs on (a complete run's resume writes nothing, read-only
        storage), the run's folder as the resume named it (a run copied or moved elsewhere still named
        its first place)."""
        path = self.run_dir / "config.json"
        saved = config_file.read_file(path)
        changed = {key: self.cfg_dict[key] for key in ("data_dir",) + (() if complete else ("bn_groups", "run_dir"))
                   if key in self.cfg_dict and saved.get(key) != self.cfg_dict[key]}
        if changed:
            self.log.write_json("config.json", {**saved, **changed})

    @contextmanager
    def starting(self) -> Iterator[None]:
        """Around the run's start: on any error the folders this run created are removed again (a
        resumed run's folder stays). An error or stop on any rank there stops every rank as it leaves
        (`distributed.together`): no rank goes on into the first step alone."""
        try:
            with distributed.together():
                yield
        except BaseException:
            self.log.discard()
            raise

    @contextmanager
    def signals(self) -> Iterator[StopRequested]:
        """Around the epochs: SIGINT / SIGTERM request a stop (signals.stop_on_signals); the run's clock
        goes on from the saved seconds."""
        with stop_on_signals() as stop:
            self.stop = stop
            now = time.time()
            self.start_time, self.session_start = now - self.state["seconds"], now
            self.device_base = self.state["device_seconds"]
            try:
                yield stop
            except KeyboardInterrupt:   # a second Ctrl-C: at once, nothing more saved; the last checkpoint stands
                if self.rank == 0:
                    kept = "its last checkpoint is kept" if self.ckpt_path.is_file() else "no epoch was saved yet"
                    say(f"diffnas: stopped at once, without saving; {kept}; {self.go_on}")
                raise
            except OSError:   # a write refused (a full disk, a folder turned read-only): the error follows this
                if self.rank == 0:   # before the first checkpoint too (the OS's "[Errno 27] File too large" alone)
                    kept = "its last checkpoint is kept" if self.ckpt_path.is_file() else "no epoch was saved yet"
                    say(f"diffnas: the run could not write its files in {self.ckpt_path.parent}; {kept}; once it "
                        f"can, {self.go_on}")
                raise
            except RuntimeError as e:   # a rank killed mid-run: the others' collectives fail, in gloo's 40 lines
                if not distributed.peer_lost(e):
                    raise
                kept = "its last checkpoint is kept" if self.ckpt_path.is_file() else "no epoch was saved yet"
                raise distributed.PeerLost(f"another process of the run ended (killed, or out of memory?); {kept}; "
                                           f"{self.go_on}") from None

    # an epoch

    def begin_epoch(self) -> None:
        self.epoch_start = time.time() - self.state["epoch_seconds"]   # a resumed epoch counts its first part
        self.stop.when = AFTER_STEP

    def run_steps(self, total: int, desc: str, batches: Iterable[Any],
                  step: Callable[[int, Any], tuple[torch.Tensor, torch.Tensor, int]]) -> str:
        """The epoch's steps from state["step"] to `total`; step(i, batch) returns (mean loss, number
        correct, images) of step i. Returns "done", "stopped" (every rank stopped after the same step)
        or "rolled back" (a NaN: the last checkpoint is loaded, so the caller runs the epoch again)."""
        state = self.state
        bar = self.log.progress(range(state["step"], total), total=total, initial=state["step"], desc=desc)
        try:
            for i, batch in zip(bar, batches):
                loss, correct, n = step(i, batch)
                step_loss, step_correct = torch.stack([loss.detach().float(), correct.float()]).tolist()  # one sync
                t = state["totals"]
                state["totals"] = [t[0] + step_loss * n, t[1] + step_correct, t[2] + n]
                state["step"] = i + 1
                self.steps_run += 1
                # shown at the bar's next redraw, beside the step count it belongs to (RunLog.progress);
                # all ranks' sums, as the epoch line has them (torchrun: one small gloo all-reduce per step)
                running = distributed.sum_list(state["totals"])
                bar.set_postfix(progress_postfix(running, time.time() - self.epoch_start), refresh=False)
                if self.stop_after is not None and self.steps_run >= self.stop_after:
                    self.stop.signum = signal.SIGTERM
                if distributed.stop_together(self.stop):   # every rank stops after the same step
                    break
        except NumericalError as e:
            bar.close()
            recovery.roll_back(e, state, self.nan_rollback, self.ckpt_path, self.load, self.rank == 0)  # or raises
            return "rolled back"
        bar.close()
        return "stopped" if distributed.stop_together(self.stop) else "done"

    def score_epoch(self, total: int, desc: str,
                    score: Callable[[Iterable, Callable[[], bool]], Optional[tuple[float, float]]],
                    split: str) -> Optional[EpochScores]:
        """The epoch's running means and its held-out pass, score(bar, stop) after the ranks' BN statistics
        are averaged; None when a stop came during the pass (the epoch's steps are kept)."""
        t = distributed.sum_list(self.state["totals"])
        distributed.sync_buffers(self.sync)
        self.stop.when = IN_PASS.format(split=split)
        bar = self.log.progress(range(total), total=total, desc=desc)
        scores = score(bar, lambda: distributed.stop_together(self.stop))
        bar.close()
        if scores is None:
            return None
        self.stop.when = ENDING
        return EpochScores((t[0] / max(t[2], 1), t[1] / max(t[2], 1)), scores)

    def epoch_seconds(self) -> float:
        return time.time() - self.epoch_start

    def commit_epoch(self) -> None:
        """The epoch is done: the position moves to the next one and the checkpoint is written."""
        self._clock()
        self.state.update(epoch=self.state["epoch"] + 1, step=0, totals=[0.0, 0.0, 0.0], epoch_seconds=0.0)
        self.save()
        self.stop.when = SAVED   # until the next epoch begins: the curves, the last epoch's figures

    def _clock(self) -> None:
        """state's seconds and device_seconds up to now: a torchrun run of 4 processes for an hour has
        cost 4 device-hours (GPU-hours, as papers count a search's cost)."""
        now = time.time()
        self.state["seconds"] = now - self.start_time
        self.state["device_seconds"] = self.device_base + (now - self.session_start) * self.world

    # stops

    def stopped(self, where: str) -> int:
        """Save the exact position, close the log and say how to go on; the exit code (128 + signum)."""
        self._clock()
        self.state["epoch_seconds"] = self.epoch_seconds()
        distributed.sync_buffers(self.sync)
        self.save()
        self.log.close()
        if self.rank == 0:
            say(f"diffnas: interrupted {where}; checkpoint saved; {self.go_on}")
        return self.stop.exit_code()

    def stopped_between_epochs(self, epochs: int) -> bool:
        """After a committed epoch that is not the last: whether a stop came meanwhile (then the log is
        closed and the resume line said; the checkpoint is already written)."""
        if self.state["epoch"] >= epochs or not distributed.stop_together(self.stop):
            return False
        self.log.close()
        if self.rank == 0:
            say(f"diffnas: interrupted after epoch {self.state['epoch']}; checkpoint saved; {self.go_on}")
        return True

    def late_stop(self) -> int:
        """After the last epoch, inside `signals()`: 128 + signum when a stop came after the last step
        (while the last epoch was saved), else 0; the same on every rank. The run is complete; a
        pipeline does not go on to its next stage."""
        return self.stop.exit_code() if distributed.stop_together(self.stop) else 0

    def finish(self) -> None:
        """The run's files are complete: rank 0's, before any rank reads them (diffnas run)."""
        self.log.close()
        distributed.barrier()


def entry_notices(cfg: Any, kind: type[C], maker: str, notices: Optional[Sequence[str]],
                  resume: object) -> Sequence[str]:
    """The start of `search` and `train`: `cfg` must be a valid `kind` (a dict or the other loop's config is
    one ConfigError, not an AttributeError deep inside); the notices are the command line's lines, or,
    for a call from Python (None), () with a new run's values that change nothing `warnings.warn`ed,
    as the command line prints them (rank 0 only)."""
    if not isinstance(cfg, kind):
        raise ConfigError(f"expected a {kind.__name__} (diffnas.{maker}(...)), got {type(cfg).__name__}")
    if isinstance(resume, str) and not resume.strip():   # Path('') would be the current folder
        raise ConfigError("resume: an empty value ('' where the run's folder belongs)")
    config_lib.validate(cfg)   # one changed past its own check: its ConfigError, not a TypeError in the checks below
    if notices is not None:
        return notices
    if resume is None and distributed.is_main():
        for line in config_lib.ineffective(cfg):
            warn_caller(f"diffnas: {line}")
    return ()
