"""The two-parameter bilevel problem of the DARTS paper (Liu et al. 2019, section 2.3, Figure 2):

    L_train(w, a) = w^2 - 2 a w + a^2        L_val(w, a) = a w - 2 a + 1

with w the lower-level (weight) and a the upper-level (architecture) variable. The lower level gives
w*(a) = a (the feasible line), so L_val(w*(a), a) = a^2 - 2a + 1 and the solution is (a*, w*) = (1, 1).

The two variables are run as two scalar "networks" through the same code as the neural search:
`diffnas.bilevel.first_order` for xi = 0, `second_order` (finite differences or exact autograd) for
xi > 0, `implicit` for the exact reference, and plain `torch.optim.SGD` for both steps: an
architecture step on the hypergradient, then a weight step on grad_w L_train at the new a.

For this problem the unrolled hypergradient has a closed form, which the tests hold the generic code
to: w' = w - xi (2w - 2a), dw'/da = 2 xi, so
grad_a L_val(w'(a), a) = w' + 2 xi a - 2. Its fixed point on w = a is a = 2 / (1 + 2 xi): first order
(xi = 0) ends near (2, 2), xi = 0.5 happens to hit (1, 1), and the implicit gradient (w + a - 2) is the
one whose fixed point is (1, 1) by construction. The figure (the paper's Figure 2) is `plots.toy_figure`.
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

import torch

from . import bilevel
from .errors import ConfigError

DEFAULT_XIS = (0.0, 0.3, 0.5, 0.7)
HESSIANS = ("fd", "exact")
OPTIMUM = (1.0, 1.0)  # (a*, w*)
DIVERGED = 1e6  # |a| or |w| beyond this (or not finite) ends a run as diverged
DTYPE = torch.float64


def train_loss(w: bilevel.Params, alpha: bilevel.Params) -> torch.Tensor:
    return w["w"] ** 2 - 2 * alpha["a"] * w["w"] + alpha["a"] ** 2


def val_loss(w: bilevel.Params, alpha: bilevel.Params) -> torch.Tensor:
    return alpha["a"] * w["w"] - 2 * alpha["a"] + 1


def method_name(xi: Optional[float], hessian: str = "fd") -> str:
    """Which bilevel path a row uses: xi None is the implicit (exact) reference."""
    if xi is None:
        return "implicit"
    if xi == 0:
        return "first_order"
    return f"second_order_{hessian}"


def _hypergrad(weights: bilevel.Params, alpha: bilevel.Params, xi: Optional[float], hessian: str) -> bilevel.Params:
    if xi is None:
        return bilevel.implicit(train_loss, val_loss, weights, alpha)
    if xi == 0:
        return bilevel.first_order(val_loss, weights, alpha)
    return bilevel.second_order(train_loss, val_loss, weights, alpha, xi, method=hessian)


def _leaf(x: float) -> torch.Tensor:
    return torch.tensor(float(x), dtype=DTYPE, requires_grad=True)


def hypergradient(a: float, w: float, xi: Optional[float], hessian: str = "fd") -> float:
    """The architecture gradient at (a, w) as the search computes it (see `method_name`)."""
    return float(_hypergrad({"w": _leaf(w)}, {"a": _leaf(a)}, xi, hessian)["a"])


@dataclass
class ToyRun:
    xi: Optional[float]  # None: the implicit (exact) reference row
    method: str  # first_order | second_order_fd | second_order_exact | implicit
    iterations: int
    alpha: float  # final a
    w: float
    distance: float  # to the optimum (1, 1)
    seconds_per_iteration: float
    status: str  # converged (the stopping rule fired) | max_iter | diverged
    trajectory: torch.Tensor = field(repr=False)  # (iterations + 1, 2) float64, columns (a, w), start first

    @property
    def label(self) -> str:
        return "exact (implicit)" if self.xi is None else f"xi = {self.xi:g}"

    def to_dict(self) -> dict:
        """One JSON/CSV row: everything but the trajectory."""
        def num(x: float) -> Optional[float]:  # a diverged run may end on inf/nan, which JSON cannot hold
            return x if math.isfinite(x) else None

        return {"xi": self.xi, "method": self.method, "iterations": self.iterations, "alpha": num(self.alpha),
                "w": num(self.w), "distance": num(self.distance),
                "seconds_per_iteration": self.seconds_per_iteration, "status": self.status}


def check_xis(xis: Iterable[float], what: str = "xi") -> None:
    if isinstance(xis, (str, bytes, numbers.Number)) or not isinstance(xis, Iterable):
        lone = f" (a list of one for one run: [{xis!r}])" if isinstance(xis, numbers.Number) else ""
        raise ConfigError(f"{what}: expected a sequence of numbers, got {xis!r}{lone}")
    for xi in xis:
        if isinstance(xi, bool) or not isinstance(xi, numbers.Real) or not math.isfinite(xi) or xi < 0:
            raise ConfigError(f"{what}: {xi!r} is not a finite number >= 0")


def _check_settings(hessian: str, lr: float, max_iter: int, tol: float,
                    start: tuple[float, float] = (2.0, -2.0)) -> None:
    """One-line ConfigErrors for the toy's settings (a string lr was a TypeError from a comparison, a
    start of one number an IndexError, True taken for 1)."""
    if hessian not in HESSIANS:
        raise ConfigError(f"hessian: {hessian!r} is not one of {', '.join(HESSIANS)}")
    real = lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool)  # noqa: E731
    if not real(lr) or not real(tol) or not isinstance(max_iter, numbers.Integral) or isinstance(max_iter, bool):
        raise ConfigError(f"toy: lr and tol must be numbers, max_iter an int (got {lr!r}, {tol!r}, {max_iter!r})")
    if not (lr > 0 and math.isfinite(lr)) or max_iter < 1 or not tol > 0:
        raise ConfigError(f"toy: need lr > 0, max_iter >= 1, tol > 0 (got {lr}, {max_iter}, {tol})")
    if not isinstance(start, (tuple, list)) or len(start) != 2 or not all(real(v) and math.isfinite(v) for v in start):
        raise ConfigError(f"start: expected (alpha, w), two finite numbers, got {start!r}")


def run_one(xi: Optional[float], hessian: str = "fd", lr: float = 1e-2, start: tuple[float, float] = (2.0, -2.0),
            max_iter: int = 10000, tol: float = 1e-4) -> ToyRun:
    """Alternate an architecture step and a weight step with plain SGD until both moves are < tol."""
    if xi is not None:
        check_xis([xi])
    _check_settings(hessian, lr, max_iter, tol, start)
    a, w = _leaf(start[0]), _leaf(start[1])
    alpha, weights = {"a": a}, {"w": w}
    a_opt = torch.optim.SGD([a], lr=lr, momentum=0.0)
    w_opt = torch.optim.SGD([w], lr=lr, momentum=0.0)
    path = [(a.item(), w.item())]
    status, seconds = "max_iter", 0.0
    for _ in range(max_iter):
        t0 = time.perf_counter()
        a.grad = _hypergrad(weights, alpha, xi, hessian)["a"].detach()
        a_opt.step()
        w.grad = bilevel.grad(train_loss(weights, alpha), weights)["w"].detach()
        w_opt.step()
        seconds += time.perf_counter() - t0
        path.append((a.item(), w.item()))
        (a0, w0), (a1, w1) = path[-2], path[-1]
        if not (abs(a1) < DIVERGED and abs(w1) < DIVERGED):  # also catches NaN
            status = "diverged"
            break
        if abs(a1 - a0) < tol and abs(w1 - w0) < tol:
            status = "converged"
            break
    n = len(path) - 1
    a1, w1 = path[-1]
    return ToyRun(xi=xi, method=method_name(xi, hessian), iterations=n, alpha=a1, w=w1,
                  distance=math.hypot(a1 - OPTIMUM[0], w1 - OPTIMUM[1]),
                  seconds_per_iteration=seconds / max(n, 1), status=status,
                  trajectory=torch.tensor(path, dtype=DTYPE))


def run_toy(xis: Iterable[float] = DEFAULT_XIS, hessian: str = "fd", lr: float = 1e-2,
            start: tuple[float, float] = (2.0, -2.0), max_iter: int = 10000, tol: float = 1e-4,
            reference: bool = True) -> list[ToyRun]:
    """One run per xi, then (if `reference`) the implicit-gradient reference row, in that order."""
    if isinstance(xis, Iterable) and not isinstance(xis, (str, bytes)):
        xis = list(xis)   # an iterator (a generator) is read once
    check_xis(xis)
    _check_settings(hessian, lr, max_iter, tol, start)
    rows: list[Optional[float]] = [float(x) for x in xis] + ([None] if reference else [])
    return [run_one(xi, hessian, lr, start, max_iter, tol) for xi in rows]


def _num(x: float) -> str:
    return f"{x:.4f}" if abs(x) < 1e4 else f"{x:.3e}"  # at most 10 characters; also nan / inf


def format_table(runs: Sequence[ToyRun]) -> str:
    head = (f"{'run':<17}{'method':<19}{'iters':>6}{'alpha':>12}{'w':>12}{'dist (1,1)':>12}{'us/iter':>9}"
            f"  status")
    lines = [head, "-" * (len(head) + 4)]
    for r in runs:
        lines.append(f"{r.label:<17}{r.method:<19}{r.iterations:>6}{_num(r.alpha):>12}{_num(r.w):>12}"
                     f"{_num(r.distance):>12}{r.seconds_per_iteration * 1e6:>9.0f}  {r.status}")
    return "\n".join(lines)
