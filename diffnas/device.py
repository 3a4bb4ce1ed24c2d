"""Which torch device a run uses: "auto" and explicit names resolved and checked, one line for a
device this machine does not have."""

from __future__ import annotations

from typing import Any

import torch

from .errors import ConfigError


def _accelerator(kind: str) -> tuple[bool, int] | None:
    """(usable here, how many) for a torch device type with an availability probe: CUDA, Apple's
    MPS, or another backend with its own `torch.<type>` module (xpu, ...); None for the rest (meta,
    lazy, ...), which hold no data to train on."""
    if kind == "cuda":
        return (True, torch.cuda.device_count()) if torch.cuda.is_available() else (False, 0)
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        return (True, 1) if mps is not None and mps.is_available() else (False, 0)
    module: Any = getattr(torch, kind, None)  # torch.xpu, ...: probed below, not typed
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
        if device.index not in (None, 0):   # torch takes cpu:1 and runs on the one CPU device: said, not ignored
            raise ConfigError(f"device: {name!r}: the CPU is one device, 'cpu' ({here}); the threads it uses are "
                              f"OMP_NUM_THREADS's")
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
