"""What the search and training loops do when a run goes wrong, written once for both.

- NaN/Inf in a step (numerics.FiniteChecks raises NumericalError): roll back to the last good checkpoint with half the
  learning rates, up to `nan_rollback` times; then stop, naming the last good checkpoint.
- A resumed run killed before its first checkpoint: nothing to continue, so start it over.
- A resumed run with its checkpoint loaded: check --epochs, say what happens next, note new epochs.
- Which values of the config a resume was called with replace the run's saved ones (`overrides`), and which may not
  change (`refuse_changes`).
- A run stopped by a signal, called from Python: the signal's exception once it is saved (`raise_stop`).

`state` is the loop's dict of position and bookkeeping; the keys used here are `epoch` (epochs done),
`step` (steps done in the current epoch), `rollbacks` and `lr_scale` (the factor on every learning rate).
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any, Callable, Collection, Iterable, Mapping, Optional

from . import config as config_lib
from . import config_file
from .config import C
from .errors import CheckpointError, ConfigError, NumericalError, suggest
from .notices import on_command_line, option, say, shell
from .runfolder import run_command
from .runlog import RunLog, read_rows


def refuse_changes(saved: dict[str, Any], given: dict[str, Any], resumable: Iterable[str], where: str,
                   prefix: str = "", defaults: dict[str, Any] | None = None, hint: str = "",
                   names: Mapping[str, str] | None = None) -> None:
    """ConfigError naming the first key of `given` whose value differs from `saved` and is not in
    `resumable`; `where` names the saved run in the message, `prefix` goes before the key. A key the
    saved config lacks (a field added after the run was made) counts as `defaults[key]`, the value the
    run was made with, as the checkpoint's check counts it. `hint` ends the message's parenthesis.
    `names`: how the message lists a resumable field (the command line's flags: "--no-plots"); one
    not in it is `prefix` + its key. The command line's check of typed values on resume, and the
    Python API's (refuse_resume_changes)."""
    resumable = tuple(resumable)
    saved = {**(defaults or {}), **saved}
    for key, value in given.items():
        if key in resumable or key == "command" or key not in saved:
            continue
        paths = key == "genotype" and isinstance(value, str) and isinstance(saved[key], str)
        if not config_lib.same_value(*((config_lib.genotype_path(value), config_lib.genotype_path(saved[key]))
                                       if paths else (value, saved[key]))):
            # a resumed run goes on in its own folder
            shown = [(names or {}).get(k, prefix + k) for k in resumable if k != "run_dir"]
            raise ConfigError(f"{prefix}{key}: {value!r} given, but {where} has {saved[key]!r}; a resumed "
                              f"run keeps its configuration (only {', '.join(shown)} may change{hint})")


def overrides(cfg: C, defaults: C, resumable: Collection[str], given: Optional[Collection[str]]) -> dict[str, Any]:
    """The values of `cfg` that replace a resumed run's saved ones: its `resumable` fields named in
    `given` (those the caller set: flags, a config file), whatever their value, so that `--device
    auto` or `--memory-format auto` after a run started with another value takes effect. Without
    `given` (the Python API), the resumable fields whose values differ from `defaults`."""
    if given is not None:
        return {k: getattr(cfg, k) for k in resumable if k in given}
    return {k: getattr(cfg, k) for k in resumable if getattr(cfg, k) != getattr(defaults, k)}


def refuse_resume_changes(cfg: C, defaults: C, saved: dict[str, Any], resumable: Collection[str],
                          given: Optional[Collection[str]], run_dir: Path) -> None:
    """A resume's values that may not change: one that differs from the run's saved value is a
    ConfigError (refuse_changes, the command line's check), not silently replaced by the saved
    one. `given` (the fields of `cfg` the caller set): those are checked, and a name that is no field
    is a ConfigError with the one meant (given={"epochs", "w_lr"} kept the run's w_lr once). None (the
    Python API without it): the values of `cfg` set away from `defaults` count as typed."""
    now, base = config_lib.to_dict(cfg), config_lib.to_dict(defaults)
    # a Python caller's run_dir that is neither where the run goes on nor where it was made (the command
    # line refuses --run-dir with --resume itself; a config file's run_dir is not typed)
    named_dir = now.get("run_dir") if not on_command_line() and (given is None or "run_dir" in given) else None
    places = [Path(d).resolve() for d in (run_dir, saved.get("run_dir")) if isinstance(d, (str, Path)) and d]
    if named_dir and Path(named_dir).resolve() not in places:
        raise ConfigError(f"run_dir: {named_dir!r} does not go with resume={str(run_dir)!r}: the run goes on in its "
                          f"own folder (copy that folder to go on elsewhere)")
    if given is None:
        named = {k: v for k, v in now.items() if k != "run_dir" and v != base.get(k)}
        hint = "; leave the others at their defaults or the run's values"
    else:
        if isinstance(given, str):   # given="epochs" named e, p, o, ...
            raise ConfigError(f"given: expected a collection of field names, got the string {given!r} "
                              f"(given={{{given!r}}})")
        for name in given:
            if name not in now:
                raise ConfigError(f"given: {name!r} is no {type(cfg).__name__} field{suggest(name, now)}")
        named, hint = {k: now[k] for k in given if k != "run_dir"}, ""
    if not (run_dir / "checkpoint.pt").exists():   # nothing is kept but its config: a new run may differ
        hint += f"; it saved no checkpoint: remove {run_dir} to start it anew with other values"
    refuse_changes(saved, named, resumable, f"the run in {run_dir}", defaults=base, hint=hint)


def roll_back(error: NumericalError, state: dict[str, Any], limit: int, ckpt_path: Path,
              reload: Callable[[], None], announce: bool = True) -> None:
    """Called on `error` from a step: reload the last checkpoint (`reload` restores `state` with it),
    count the rollback and halve `lr_scale`, when fewer than `limit` rollbacks were made and a
    checkpoint exists; else raise NumericalError saying where the last good state is."""
    if state["rollbacks"] < limit and ckpt_path.is_file():
        # the checkpoint holds the count and scale before this rollback, and before any earlier one of
        # this epoch: read them first, so that each rollback halves the learning rate again
        rollbacks, scale = state["rollbacks"] + 1, state["lr_scale"] / 2
        reload()
        state["rollbacks"], state["lr_scale"] = rollbacks, scale
        if announce:
            say(f"diffnas: {error}; rolled back to the start of epoch {state['epoch'] + 1} "
                f"with lr x{state['lr_scale']}")
        return
    last = (f"last good checkpoint: {ckpt_path} (after epoch {state['epoch']})" if ckpt_path.is_file()
            else "no checkpoint was written yet")
    if limit and not ckpt_path.is_file():   # the first epoch: nothing to roll back to
        last += (f" (checkpoints are written at the end of each epoch, so {option('nan_rollback')} had none to go "
                 f"back to)")
    elif limit:
        last += f" ({state['rollbacks']} of {option('nan_rollback', limit)} rollbacks used)"
    if not ckpt_path.is_file():   # a resume would repeat it, and its learning rate is not a resumable value
        last += f"; nothing is saved to resume, so {_start_anew(ckpt_path.parent)}"
    raise NumericalError(f"{error}; run stopped, {last}") from None


def _start_anew(run_dir: Path) -> str:
    """How to retry a run that failed before its first checkpoint with a lower learning rate: in a new
    folder; a pipeline's search only as a new pipeline (its resume refuses another --w-lr), its training
    by resuming the pipeline with another --train-lr once the train/ folder is gone."""
    owner = run_dir.parent
    if run_dir.name == "search" and run_command(owner) == "pipeline":
        return f"start a new pipeline with a lower learning rate: remove {owner} or name another {option('run_dir')}"
    if run_dir.name == "train" and run_command(owner) == "pipeline":
        return (f"remove {run_dir} and resume the pipeline with a lower {option('lr')} "
                f"(`{shell('diffnas', 'run', '--resume', owner)} ...`)")
    return f"start it anew with a lower learning rate: remove {run_dir} or name another {option('run_dir')}"


# the file a finished run writes last, after its last checkpoint
FINISHED = {"search": "genotype.json", "train": "result.json"}


def start_over(log: RunLog, announce: bool = True, command: str = "") -> None:
    """A resumed run folder with a config but no checkpoint (killed during its first epoch): the run
    starts from the beginning, and the rows the killed epoch appended are dropped. A folder whose
    files say it got further (a metrics row past epoch 1: written after the first checkpoint; the
    finished run's last file) lost its checkpoint instead: a CheckpointError, and nothing is touched."""
    run_dir = log.run_dir
    done = max((row.get("epoch", 0) for row in read_rows(run_dir / "metrics.jsonl")
                if isinstance(row.get("epoch"), int)), default=0)
    # a session that resumed past the start (sessions.jsonl counts epochs from 1) resumed from a checkpoint:
    # one deleted after exactly one epoch was taken for a first epoch never saved, and that epoch dropped
    resumed_at = max(((row["epoch"], row.get("step", 0)) for row in read_rows(run_dir / "sessions.jsonl")
                      if isinstance(row.get("epoch"), int) and isinstance(row.get("step", 0), int)
                      and (row["epoch"], row.get("step", 0)) > (1, 0)), default=None)
    finished = FINISHED.get(command)
    if done >= 2 or resumed_at is not None or (finished is not None and (run_dir / finished).is_file()):
        raise CheckpointError(f"{run_dir / 'checkpoint.pt'}: missing, but the run "
                              + (f"recorded {done} epochs" if done >= 2 else
                                 f"was resumed from it at epoch {resumed_at[0]} step {resumed_at[1]} (sessions.jsonl)"
                                 if resumed_at is not None else f"finished ({finished})")
                              + " (deleted or moved?): it cannot be resumed without it, and its results are left "
                                "as they are; put the checkpoint back, or start a new run in another folder")
    log.truncate_metrics(0)
    if announce:
        say(f"diffnas: {log.run_dir} has no checkpoint yet (stopped during its first epoch); starting it over")


def continue_run(state: dict[str, Any], log: RunLog, epochs: int, saved_epochs: Optional[int], steps: int, *,
                 recomputed: str, last_pass: str, ended_early: str = "", announce: bool = True,
                 extend: Optional[str] = "") -> bool:
    """After a resumed run's checkpoint is loaded into `state`: True when nothing is left to run.

    `epochs` is the run's total now, `saved_epochs` the one in its config.json (None: not resumed
    with a config). Fewer epochs than already run (or started) is a ConfigError; metric rows past the
    checkpoint are dropped; one line says whether the run is complete, `ended_early` (the reason), or
    where it goes on (`last_pass`, e.g. "validation", when its steps are done), after a notice that
    `recomputed` ("the cosine lr schedule is") follows a changed total. A changed total is written to
    config.json so a later resume goes on to it. `extend` says how to run a complete run longer (None:
    the run is a stage of a pipeline, which goes on with its next stage).
    """
    run_dir = log.run_dir
    begun = state["epoch"] + (state["step"] > 0)   # epochs run, and one started
    if saved_epochs is not None and epochs < min(saved_epochs, begun):
        raise ConfigError(f"epochs: {epochs} given, but {run_dir} has run {state['epoch']} of its "
                          f"{saved_epochs} epochs"
                          + (f" and started epoch {state['epoch'] + 1}" if state["step"] else "")
                          + f"; a resume can change the total, but not to fewer than the {begun} "
                            f"epoch{'s' if begun != 1 else ''} {'begun' if state['step'] else 'run'}")
    complete = state["epoch"] >= epochs or bool(ended_early)
    # a total lowered to the epochs run: the run ends there, and its config.json says so (a later
    # resume went on to the old total)
    shortened = saved_epochs is not None and epochs < saved_epochs and complete and not ended_early
    # a training's checkpoint holds its rows (state["metrics"]); a complete run's resume writes nothing
    log.truncate_metrics(state["epoch"], write=not complete or shortened, saved_rows=state.get("metrics"))
    changed = saved_epochs is not None and saved_epochs != epochs and (not complete or shortened)
    if announce and ended_early:
        say(f"diffnas: {run_dir} ended early ({ended_early}); nothing more to search")
    elif announce and shortened:
        say(f"diffnas: epochs changed from {saved_epochs} to {epochs}: {run_dir} ends with the {state['epoch']} "
            f"epoch{'s' if state['epoch'] != 1 else ''} it has run")
    elif announce and complete:
        say(f"diffnas: {run_dir} is complete ({state['epoch']}/{epochs} epochs)"
            + (f"; nothing to do — {extend}" if extend else ""))
    elif announce:
        if changed:
            say(f"diffnas: epochs changed from {saved_epochs} to {epochs}: {recomputed} recomputed for "
                f"{epochs} epochs from epoch {state['epoch'] + 1} on (the epochs run so far followed the "
                f"{saved_epochs}-epoch schedule)")
        where = last_pass if state["step"] >= steps else f"step {state['step']}"
        say(f"diffnas: resuming {run_dir} at epoch {state['epoch'] + 1} {where}")
    if changed:
        log.write_json("config.json", {**config_file.read_file(run_dir / "config.json"), "epochs": epochs})
    return complete


def raise_stop(exit_code: int) -> None:
    """After a run stopped by a signal has saved its checkpoint and said how to resume: what Python
    does for a script on that signal, so the caller's next line (training a half-searched genotype)
    does not run: KeyboardInterrupt for Ctrl-C (SIGINT), SystemExit(128 + signum) for another."""
    if exit_code == 128 + signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(exit_code)
