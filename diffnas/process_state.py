"""What a run sets process-wide: the seeds and cuDNN / determinism flags (`seed_everything`), and
the caller's own values given back at its end (`caller_state_kept`)."""

from __future__ import annotations

import contextlib
import os
import random
import threading
import warnings
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch

from .errors import ConfigError


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


# held by the thread whose run is going on: a run in another thread would share its process-wide state
_RUNNING = threading.RLock()


def _new_lock_after_fork() -> None:
    """A child forked while a thread ran a run has no such thread: its lock starts free."""
    global _RUNNING
    _RUNNING = threading.RLock()


if hasattr(os, "register_at_fork"):   # POSIX
    os.register_at_fork(after_in_child=_new_lock_after_fork)


@contextmanager
def caller_state_kept() -> Iterator[None]:
    """What `seed_everything` and a run change process-wide, given back to the caller at the end: the
    Python, NumPy and torch (CUDA) random states, `cudnn.benchmark`, deterministic algorithms,
    CUBLAS_WORKSPACE_CONFIG and the warning filters. A script that calls `search` gets its own random sequence back, not the
    run's seed, and its cuDNN settings as it set them. Inside, the run has what it needs whatever the
    caller set: float32 as the default dtype, the CPU as the default device (the run moves what it
    runs to its own), and gradients on (inside torch.no_grad() or torch.inference_mode() too).

    One run at a time in a process: a run from another thread while one goes on is a ConfigError (they
    would share the random state, default dtype and flags, and neither would be reproducible)."""
    if not _RUNNING.acquire(blocking=False):
        raise ConfigError("another diffnas run is going on in this process (in another thread): a run sets the "
                          "random state, default dtype and cuDNN flags process-wide, so runs in one process go "
                          "one after another; run them in parallel as separate processes")
    try:
        with _caller_state_kept():
            yield
    finally:
        _RUNNING.release()


@contextmanager
def _caller_state_kept() -> Iterator[None]:
    py, npy, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    benchmark = torch.backends.cudnn.benchmark
    deterministic, warn_only = (torch.are_deterministic_algorithms_enabled(),
                                torch.is_deterministic_algorithms_warn_only_enabled())
    workspace = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)   # a caller's float64 default made the weights float64
    # a caller's default device (torch.set_default_device("meta"), `with torch.device("cuda")`: a mode
    # on torch's stack, read by making a tensor before torch 2.3) made every tensor of the run there
    # ("Cannot copy out of meta tensor"): the run's own go to the CPU unless it moves them (`device`).
    # Pushed only then: the mode is a Python call on every torch function
    default_device = torch.empty(()).device
    device = torch.device("cpu") if default_device.type != "cpu" else contextlib.nullcontext()

    def give_back() -> None:
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

    try:
        # the filters come back too (distributed.wrap quiets a DDP warning for the run's backward passes)
        # a call inside torch.no_grad() or torch.inference_mode() could not step
        with torch.inference_mode(False), torch.enable_grad(), warnings.catch_warnings(), device:
            yield
    except BaseException:
        try:
            give_back()
        except Exception:   # the error in flight is the one to report: a Ctrl-C inside one of torch's lazy
            pass            # imports (the first optimiser's) leaves a half-made module that giving back re-imports
        raise
    give_back()
