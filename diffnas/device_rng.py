"""The random state a computation on a device draws from: the CPU generator's, and the device's own on
an accelerator (CUDA and XPU: one per device; MPS: one), read by `torch.<type>.get_rng_state`.

Put back so that two computations draw the same numbers: the finite-difference Hessian-vector
product's two losses (`bilevel.replayed`), and each batch-norm group of `distributed.GroupedForward`.
"""

from __future__ import annotations

from typing import Optional

import torch

RngState = tuple[torch.Tensor, Optional[torch.Tensor]]

ONE_GENERATOR = ("mps",)   # accelerators whose module's get/set_rng_state take no device (torch 2.2)


def get_state(device: torch.device) -> RngState:
    """The CPU generator's state, and `device`'s own generator's (None on the CPU, or a device whose
    torch module has none)."""
    module = getattr(torch, device.type, None) if device.type != "cpu" else None
    if module is None or not hasattr(module, "get_rng_state"):
        return torch.get_rng_state(), None
    own = module.get_rng_state() if device.type in ONE_GENERATOR else module.get_rng_state(device)
    return torch.get_rng_state(), own


def set_state(state: RngState, device: torch.device) -> None:
    """Put back what `get_state(device)` read."""
    torch.set_rng_state(state[0])
    if state[1] is not None and device.type in ONE_GENERATOR:
        getattr(torch, device.type).set_rng_state(state[1])
    elif state[1] is not None:
        getattr(torch, device.type).set_rng_state(state[1], device)
