"""Scoring a network on held-out batches: mean cross-entropy and accuracy, in eval mode (BatchNorm's
running statistics), what the search's validation pass, the training's test pass and `diffnas
evaluate` all report."""

from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Iterable, Optional, Protocol

import torch
import torch.nn.functional as F

from . import distributed

if TYPE_CHECKING:
    from .supernet import Supernet


class Scorable(Protocol):
    """What `score` asks of the module it is given: an nn.Module, or a wrapper of one (fastpath.CheckedForward)."""

    @property
    def training(self) -> bool: ...

    def train(self, mode: bool = True) -> Any: ...

    def eval(self) -> Any: ...

    def __call__(self, *args: Any) -> Any: ...


@torch.no_grad()
def score(module: Scorable, logits_of: Callable[[torch.Tensor], torch.Tensor], batches: Any, *,
          autocast: Callable[[], ContextManager] = nullcontext, reduce_sum: Optional[Callable] = None,
          bar: Optional[Iterable] = None, stop: Optional[Callable[[], bool]] = None) -> Optional[tuple[float, float]]:
    """(mean loss, accuracy) of `logits_of(x)` over `batches` (a `Batches`: `len`, `epoch(0)`, `device`), with
    `module` in eval mode and put back in its mode after. Sums are float64 over every image, the short
    last batch included; `reduce_sum` adds the ranks' sums (distributed.sum_tensor).

    bar: iterates over the batch indices to score (a RunLog.progress bar over range(n): the first n
    batches; default all). stop: asked after each batch; True abandons the pass and returns None
    (every rank must ask it the same number of times: distributed.stop_together).
    """
    was_training = module.training
    module.eval()
    totals: Optional[torch.Tensor] = None
    try:
        for _, (x, y) in zip(range(len(batches)) if bar is None else bar, batches.epoch(0)):
            with autocast():
                logits = logits_of(x)
            if totals is None:
                totals = torch.zeros(3, dtype=torch.float64, device=logits.device)
            totals[0] += F.cross_entropy(logits.float(), y, reduction="sum").double()
            totals[1] += (logits.argmax(1) == y).sum().double()
            totals[2] += len(y)   # a Python number: no host-to-device copy per batch
            if stop is not None and stop():
                return None
    finally:
        module.train(was_training)
    if totals is None:   # no batch: zero sums, still added over the ranks
        totals = torch.zeros(3, dtype=torch.float64, device=batches.device)
    if reduce_sum is not None:
        reduce_sum(totals)
    loss, correct, n = totals.tolist()
    return loss / max(n, 1), correct / max(n, 1)


def score_network(model: Scorable, batches: Any, autocast: Callable[[], ContextManager] = nullcontext, *,
                  bar: Optional[Iterable] = None, stop: Optional[Callable[[], bool]] = None,
                  ) -> Optional[tuple[float, float]]:
    """A trained network's (`network.Network`, or its DDP / compiled wrapper) main head, summed over
    the ranks: the training's test pass and `diffnas evaluate` (bar, stop and None as `score`'s)."""
    return score(model, lambda x: model(x)[0], batches, autocast=autocast, reduce_sum=distributed.sum_tensor,
                 bar=bar, stop=stop)


def score_supernet(supernet: Supernet, psi: torch.Tensor, batches: Any,
                   reduce_sum: Optional[Callable[[torch.Tensor], None]] = None, *, bar: Optional[Iterable] = None,
                   stop: Optional[Callable[[], bool]] = None,
                   edge: Optional[torch.Tensor] = None) -> Optional[tuple[float, float]]:
    """The supernet with fixed psi and edge weights (Arch.edge_weights), in fp32: the search's
    validation pass (bar, stop and None as `score`'s)."""
    return score(supernet, lambda x: supernet(x, psi, edge), batches, reduce_sum=reduce_sum, bar=bar, stop=stop)
