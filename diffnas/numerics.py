"""NaN / Inf detection in a step: one device sync for all its checks, a NumericalError saying what
and when (recovery.py rolls the run back)."""

from __future__ import annotations

from typing import Iterable

import torch

from .errors import NumericalError


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
