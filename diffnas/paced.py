"""Work done between epochs for the user's eyes only, kept to a share of the run's time.

A search redraws its learning curves after each epoch (`figures/curves.png|svg`): about half a second of
matplotlib on a CPU, while an epoch of a fast GPU search lasts seconds, and the GPU idles as rank 0 draws.
`Paced` skips a call while the calls so far cost more than `share` of the time since the first one; the
run's end draws every figure anyway, and a stop `flush`es what was skipped.
"""
from __future__ import annotations

import time
from typing import Callable


CLOCK: Callable[[], float] = time.monotonic   # Paced's clock where none is given


class Paced:
    """`paced()` calls `fn` unless that would take the time spent in `fn` above `share` of the time
    since this object was made (the first call always runs); returns whether it ran."""

    def __init__(self, fn: Callable[[], object], share: float = 0.05,
                 clock: Callable[[], float] | None = None) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"share: {share} is not in (0, 1]")
        self.fn, self.share = fn, share
        self.clock = clock or CLOCK
        self.start = self.clock()
        self.spent = 0.0   # seconds inside fn
        self.calls = 0
        self.skipped = False   # the last call did not run fn

    def __call__(self) -> bool:
        now = self.clock()
        # the next call is expected to cost what the calls so far cost on average
        expected = self.spent / self.calls if self.calls else 0.0
        if self.calls and self.spent + expected > self.share * (now - self.start + expected):
            self.skipped = True
            return False
        self._run(now)
        return True

    def flush(self) -> bool:
        """Call `fn` if the last call skipped it (a run that stops: its files as they are now); returns
        whether it ran."""
        if not self.skipped:
            return False
        self._run(self.clock())
        return True

    def _run(self, now: float) -> None:
        self.skipped = False
        try:
            self.fn()
        finally:
            self.spent += self.clock() - now
            self.calls += 1
