"""What long loops need to stop well: signal handling, NaN/Inf detection, device and seeding.

SIGINT / SIGTERM set a flag; the loop finishes its current step, saves, and exits with the command
to resume. NaN / Inf in a loss, gradient or parameter raises NumericalError saying what and when.
"""

from __future__ import annotations

import os
import random
import signal
from contextlib import contextmanager
from typing import Iterable, Iterator

import numpy as np
import torch

from .errors import ConfigError, NumericalError


class StopRequested:
    """Set by SIGINT/SIGTERM while installed; `signum` tells which."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __bool__(self) -> bool:
        return self.signum is not None

    def exit_code(self) -> int:
        return 128 + (self.signum or 0)


@contextmanager
def stop_on_signals() -> Iterator[StopRequested]:
    """Within the block, SIGINT/SIGTERM only request a stop; a second SIGINT interrupts at once."""
    stop = StopRequested()
    previous = {}

    def handler(signum: int, frame: object) -> None:
        if stop and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.signum = signum

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: signals stay as they are
            pass
    try:
        yield stop
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)


def check_finite(what: str, where: str, tensors: Iterable[torch.Tensor | None]) -> None:
    """Raise NumericalError if any tensor holds NaN or Inf. One device sync for all of them."""
    ts = [t.detach() for t in tensors if t is not None]
    if not ts:
        return
    bad = torch.stack([(~torch.isfinite(t)).any() for t in ts]).any()
    if bool(bad):
        raise NumericalError(f"non-finite {what} {where}")


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda if available, else cpu; a named device must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device: {name!r} is not a device (auto, cpu, cuda, cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} asked for, but this machine has no CUDA GPU")
    return device


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
