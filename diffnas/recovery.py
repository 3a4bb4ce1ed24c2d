"""What the search and training loops do when a run goes wrong, written once for both.

- NaN/Inf in a step (guard.NumericalError): roll back to the last good checkpoint with half the
  learning rates, up to `nan_rollback` times; then stop, naming the last good checkpoint.
- A resumed run killed before its first checkpoint: nothing to continue, so start it over.

`state` is the loop's dict of position and bookkeeping; the keys used here are `epoch` (epochs done),
`rollbacks` and `lr_scale` (the factor on every learning rate).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

from .errors import NumericalError
from .runlog import RunLog


def roll_back(error: NumericalError, state: dict[str, Any], limit: int, ckpt_path: Path,
              reload: Callable[[], None], announce: bool = True) -> None:
    """Called on `error` from a step: reload the last checkpoint (`reload` restores `state` with it),
    count the rollback and halve `lr_scale`, when fewer than `limit` rollbacks were made and a
    checkpoint exists; else raise NumericalError saying where the last good state is."""
    if state["rollbacks"] < limit and ckpt_path.is_file():
        rollbacks = state["rollbacks"] + 1     # the checkpoint holds the count before this one
        reload()
        state["rollbacks"], state["lr_scale"] = rollbacks, state["lr_scale"] / 2
        if announce:
            print(f"diffnas: {error}; rolled back to the start of epoch {state['epoch'] + 1} "
                  f"with lr x{state['lr_scale']}", file=sys.stderr)
        return
    last = (f"last good checkpoint: {ckpt_path} (after epoch {state['epoch']})" if ckpt_path.is_file()
            else "no checkpoint was written yet")
    raise NumericalError(f"{error}; run stopped, {last}") from None


def start_over(log: RunLog, announce: bool = True) -> None:
    """A resumed run folder with a config but no checkpoint (killed during its first epoch): the run
    starts from the beginning, and the rows the killed epoch appended are dropped."""
    log.truncate_metrics(0)
    if announce:
        print(f"diffnas: {log.run_dir} has no checkpoint yet (stopped during its first epoch); starting it over",
              file=sys.stderr)
