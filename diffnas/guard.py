"""What long loops need to stop well: signal handling, NaN/Inf detection, device and seeding.

SIGINT / SIGTERM set a flag; the loop finishes its current step, saves, and exits with the command
to resume. NaN / Inf in a loss, gradient or parameter raises NumericalError saying what and when.
"""

from __future__ import annotations

import os
import random
import signal
import warnings
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Optional, Sequence

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
    """Within the block, SIGINT/SIGTERM only request a stop; a second SIGINT interrupts at once. The
    first Ctrl-C says so at once (a step can take seconds), from torchrun's rank 0 only."""
    stop = StopRequested()
    previous = {}

    def handler(signum: int, frame: object) -> None:
        if stop and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if signum == signal.SIGINT and not stop and os.environ.get("RANK", "0") == "0":
            # os.write: print() from a handler can re-enter a stderr write the loop was in the middle of
            os.write(2, b"\ndiffnas: stopping after this step (a validation or test pass: at once) to save a "
                        b"checkpoint (Ctrl-C again: stop at once, without saving)\n")
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


class FiniteChecks:
    """The non-finite checks of one step with a single device sync: `add` keeps a device flag per
    quantity, `check(where)` reads them all at once and raises NumericalError naming the first
    quantity added that held NaN or Inf. A step that runs on past a non-finite value only wastes
    work: the error rolls the run back to its last checkpoint (recovery.py) or stops it, and what
    the step made is never saved."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.flags: list[torch.Tensor] = []

    def add(self, what: str, tensors: Iterable[torch.Tensor | None]) -> None:
        ts = [t.detach() for t in tensors if t is not None]
        if ts:
            self.names.append(what)
            self.flags.append(torch.stack([(~torch.isfinite(t)).any() for t in ts]).any())

    def check(self, where: str) -> None:
        if not self.flags:
            return
        for name, bad in zip(self.names, torch.stack(self.flags).tolist()):   # one step: one device
            if bad:
                raise NumericalError(f"non-finite {name} {where}")


def _accelerator(kind: str) -> tuple[bool, int] | None:
    """(usable here, how many) for a torch device type with an availability probe: CUDA, Apple's
    MPS, or another backend with its own `torch.<type>` module (xpu, ...); None for the rest (meta,
    lazy, ...), which hold no data to train on."""
    if kind == "cuda":
        return (True, torch.cuda.device_count()) if torch.cuda.is_available() else (False, 0)
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        return (True, 1) if mps is not None and mps.is_available() else (False, 0)
    module = getattr(torch, kind, None)
    if kind == "cpu" or not callable(getattr(module, "is_available", None)):
        return None
    try:
        if module.is_available():
            return True, int(module.device_count())
    except (RuntimeError, AttributeError):  # a backend compiled in but unusable here
        pass
    return False, 0


def available_devices() -> list[str]:
    """The --device values that work on this machine, besides auto."""
    names = ["cpu"]
    for kind in ("cuda", "mps", "xpu"):
        usable, count = _accelerator(kind) or (False, 0)
        if usable:
            names += [kind] + ([f"{kind}:{i}" for i in range(count)] if kind != "mps" else [])
    return names


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda if available, else cpu; a named device must exist on this machine (else a
    one-line ConfigError naming the devices that do)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    here = f"available here: {', '.join(['auto', *available_devices()])}"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"device: {name!r} is not a device ({here})") from None
    if device.type == "cpu":
        return device
    probe = _accelerator(device.type)
    if probe is None:
        raise ConfigError(f"device: {name!r} is not a device diffnas can run on ({here})")
    usable, count = probe
    if not usable:
        what = {"cuda": "CUDA GPU", "mps": "MPS device (Apple GPU)"}.get(device.type, f"{device.type} device")
        raise ConfigError(f"device: {name!r} asked for, but this machine has no {what} ({here})")
    if device.index is not None and device.index >= count:
        raise ConfigError(f"device: {name!r} asked for, but this machine has {count} {device.type} "
                          f"device{'s' if count != 1 else ''}, numbered from 0 ({here})")
    return device


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    else:   # as DARTS's train_search.py and train.py: the image size is fixed, cuDNN times its algorithms once
        torch.backends.cudnn.benchmark = True


@contextmanager
def caller_state_kept() -> Iterator[None]:
    """What `seed_everything` and a run change process-wide, given back to the caller at the end: the
    Python, NumPy and torch (CUDA) random states, `cudnn.benchmark`, deterministic algorithms and
    CUBLAS_WORKSPACE_CONFIG. A script that calls `search` gets its own random sequence back, not the
    run's seed, and its cuDNN settings as it set them. Inside, the run has what it needs whatever the
    caller set: float32 as the default dtype, and gradients on."""
    py, npy, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    benchmark = torch.backends.cudnn.benchmark
    deterministic, warn_only = (torch.are_deterministic_algorithms_enabled(),
                                torch.is_deterministic_algorithms_warn_only_enabled())
    workspace = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)   # a caller's float64 default made the weights float64
    try:
        with torch.enable_grad():   # a call inside torch.no_grad() could not step
            yield
    finally:
        torch.set_default_dtype(dtype)
        random.setstate(py)
        np.random.set_state(npy)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        torch.backends.cudnn.benchmark = benchmark
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        if workspace is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        else:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = workspace


def entry_notices(cfg: Any, kind: type, maker: str, notices: Optional[Sequence[str]], resume: object) -> Sequence[str]:
    """The start of `search` and `train`: `cfg` must be a `kind` (a dict or the other loop's config is
    one ConfigError, not an AttributeError deep inside); the notices are the command line's lines, or,
    for a call from Python (None), () with a new run's values that change nothing `warnings.warn`ed,
    as the command line prints them (rank 0 only)."""
    from . import config as config_lib
    from . import distributed

    if not isinstance(cfg, kind):
        raise ConfigError(f"expected a {kind.__name__} (diffnas.{maker}(...)), got {type(cfg).__name__}")
    if notices is not None:
        return notices
    if resume is None and distributed.is_main():
        for line in config_lib.ineffective(cfg):
            warnings.warn(f"diffnas: {line}", stacklevel=3)
    return ()
