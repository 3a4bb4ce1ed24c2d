"""What ran a run: one record per session (a start or a resume) in the run folder's sessions.jsonl,
so a result can be traced to the versions, device and command that produced it.

A record holds the time, the diffnas, torch, CUDA and Python versions, the device (and its name on
CUDA), the number of processes, the position the session started from, the command line, and the
environment variables that steer diffnas or torch's threads (DIFFNAS_*, OMP_NUM_THREADS,
CUDA_VISIBLE_DEVICES). Nothing here changes a result; it only says what was used.
"""

from __future__ import annotations

import datetime
import os
import platform
import socket
import sys
from pathlib import Path
from typing import Any

import torch

from .notices import invocation, shell

# environment variables worth recording besides DIFFNAS_*: they change speed or which GPU runs
_ENV = ("OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES")


def session_record(device: torch.device, processes: int, epoch: int, step: int) -> dict[str, Any]:
    """The record of a session that starts (or resumes) at `epoch` / `step` (epochs done, steps done in
    the next) on `device` with `processes` processes (torchrun's world size). The record counts the
    epoch from 1, as every message does ("interrupted at epoch 2 step 1" resumes as epoch 2, step 1)."""
    from . import __version__

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    env = {k: v for k, v in sorted(os.environ.items()) if k.startswith("DIFFNAS_") or k in _ENV}
    return {"started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "epoch": epoch + 1, "step": step, "diffnas": __version__, "torch": torch.__version__,
            "cuda": torch.version.cuda, "python": platform.python_version(), "device": str(device),
            "device_name": name, "processes": processes, "host": socket.gethostname(),
            "command": shell(*typed_command()), "env": env}


def typed_command() -> list[str]:
    """`diffnas` and the arguments cli.main runs with (the console script, python -m diffnas, torchrun
    -m diffnas, or main(argv) called from a script); else sys.argv (a Python script calling the
    library), with a `diffnas` entry point written as `diffnas`."""
    argv = invocation()
    if argv is not None:
        return ["diffnas", *argv]
    head = Path(sys.argv[0])
    entry = head.name == "diffnas" or (head.name == "__main__.py" and head.parent.name == "diffnas")
    return ["diffnas", *sys.argv[1:]] if entry else list(sys.argv)
