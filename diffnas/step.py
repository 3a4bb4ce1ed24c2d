"""One search step: the architecture update, then the weight update (DARTS Algorithm 1).

The optimisation mode is `ctx.order`, a string fixed for the whole search, which the step branches
on (one-level: both updates on the training batch; first / second order: `arch_gradient`), as DARTS's
architect.py branches on `unrolled`. The fast path (fastpath.py) compiles the supernet's body, not
this step: the branch is one Python test a step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from . import bilevel, distributed
from .arch import Arch
from .errors import ConfigError, check_choice
from .numerics import FiniteChecks


@dataclass
class StepContext:
    """What a step needs besides the batches; built once per search."""

    supernet: nn.Module            # the plain module (w); hypergradients call it functionally
    model: nn.Module               # what the weight step calls: the supernet, or its DDP wrapper
    arch: Arch
    w_opt: torch.optim.Optimizer
    a_opt: torch.optim.Optimizer
    order: str                     # first | second | one-level
    hessian: str = "fd"            # second order: fd | exact
    fd_eps: float = 0.01           # finite-difference step: r = fd_eps / ||v|| (the original's 0.01)
    grad_clip: float = 5.0         # the weight step's gradient-norm clip (DARTS's --grad_clip)
    # the unrolled step's w' = w - xi * (momentum * buf + grad + weight_decay * w) (quark0/darts
    # architect.py); None: w_opt's own (its first parameter group), so the step unrolls what w_opt does
    momentum: Optional[float] = None
    weight_decay: Optional[float] = None
    reduce: bilevel.Reduce = bilevel.no_reduce   # averages architecture gradients across ranks
    check: bool = True             # NaN/Inf checks (read with one device sync per step)
    autocast: Optional[Callable[[], ContextManager[Any]]] = None  # bf16 context for forward passes, or None

    def __post_init__(self) -> None:
        check_choice("order", self.order, ORDERS)
        check_choice("hessian", self.hessian, HESSIANS)
        _check_pair(self.supernet, self.arch)
        _check_optimisers(self)
        if self.order == "second" and (self.momentum is None or self.weight_decay is None):
            _check_unrollable(self.w_opt)
        group = self.w_opt.param_groups[0]
        if self.momentum is None:
            self.momentum = float(group.get("momentum", 0.0))
        if self.weight_decay is None:
            self.weight_decay = float(group.get("weight_decay", 0.0))


ORDERS = ("first", "second", "one-level")
HESSIANS = ("fd", "exact")


def _check_pair(supernet: nn.Module, arch: Arch) -> None:
    """A ConfigError when the architecture parameters are another space's than the supernet's: shapes
    that happen to agree (the same ops in another order, reductions elsewhere) would run and name the
    wrong ops in the genotype."""
    for name in ("ops", "nodes", "layers", "reductions"):
        mine, theirs = getattr(arch, name, None), getattr(supernet, name, None)
        if theirs is not None and mine is not None and tuple(_as_list(mine)) != tuple(_as_list(theirs)):
            raise ConfigError(f"arch: its {name} {tuple(_as_list(mine))!r} are not the supernet's "
                              f"{tuple(_as_list(theirs))!r}; build it with arch.build(name, supernet.layers, "
                              f"supernet.nodes, supernet.ops, supernet.reductions)")


def _as_list(value: object) -> list:
    """A count as a one-item list, a sequence as a list: the fields _check_pair compares."""
    return [value] if isinstance(value, int) else list(value)   # type: ignore[call-overload]


def _check_optimisers(ctx: StepContext) -> None:
    """A ConfigError when the weight optimiser holds architecture parameters or the architecture
    optimiser holds weights (swapped, or alpha in both: one-level would step it twice)."""
    weights = {id(p) for p in ctx.supernet.parameters()}
    alphas = {id(p) for p in ctx.arch.parameters()}
    for opt, name, own, other, what in ((ctx.w_opt, "w_opt", weights, alphas, "the supernet's weights"),
                                         (ctx.a_opt, "a_opt", alphas, weights, "the architecture parameters")):
        held = {id(p) for group in opt.param_groups for p in group["params"]}
        if held & other or not held & own:
            wrong = "also holds" if held & own else "holds"
            kind = "architecture parameters" if other is alphas else "supernet weights"
            raise ConfigError(f"{name}: {wrong} {kind}; it must step {what} alone (w_opt: "
                              f"supernet.parameters(), a_opt: arch.parameters())")


def _check_unrollable(opt: torch.optim.Optimizer) -> None:
    """Second order unrolls the weight step as SGD's (DARTS architect.py), reading momentum and weight
    decay off `opt`: a ConfigError where that would unroll another step than `opt` takes."""
    if not isinstance(opt, torch.optim.SGD):
        raise ConfigError(f"w_opt: second order unrolls an SGD step (DARTS architect.py), and reads its momentum and "
                          f"weight decay off w_opt, a {type(opt).__name__}; give StepContext momentum= and "
                          f"weight_decay= to unroll it as SGD with those")
    groups = opt.param_groups
    if any(g.get("nesterov") or g.get("dampening") for g in groups):
        raise ConfigError("w_opt: second order unrolls plain SGD momentum (DARTS architect.py), not Nesterov's or "
                          "one with dampening")
    settings = {(g.get("momentum", 0.0), g.get("weight_decay", 0.0)) for g in groups}
    if len(settings) > 1:
        raise ConfigError(f"w_opt: its parameter groups differ in momentum or weight decay {sorted(settings)}; the "
                          f"unrolled step takes one of each: give StepContext momentum= and weight_decay=")


def _losses(ctx: StepContext, x: torch.Tensor, y: torch.Tensor) -> bilevel.LossFn:
    """loss(w, alpha) = CE(supernet_w(x, psi(alpha), edge(alpha)), y), as a closure over one batch."""

    def loss(w: bilevel.Params, alpha: bilevel.Params) -> torch.Tensor:
        psi, edge = functional_call(ctx.arch, alpha, ())
        return F.cross_entropy(functional_call(ctx.supernet, w, (x, psi, edge)), y)

    return loss


def _momentum_buffers(opt: torch.optim.Optimizer, w: bilevel.Params) -> bilevel.Params:
    by_id = {id(p): n for n, p in w.items()}
    out = {}
    for p, state in opt.state.items():
        if id(p) in by_id and "momentum_buffer" in state and state["momentum_buffer"] is not None:
            out[by_id[id(p)]] = state["momentum_buffer"]
    return out


def arch_gradient(ctx: StepContext, xt: torch.Tensor, yt: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor,
                  xi: float) -> bilevel.Params:
    """grad_alpha of L_val (first order) or of L_val(w', alpha) (second order), plus the
    parametrisation's regulariser (FairDARTS zero-one loss)."""
    w: bilevel.Params = dict(ctx.supernet.named_parameters())
    alpha: bilevel.Params = dict(ctx.arch.named_parameters())
    if ctx.order == "first" or xi == 0:
        g = bilevel.first_order(_losses(ctx, xv, yv), w, alpha, ctx.reduce)
    else:
        assert ctx.momentum is not None and ctx.weight_decay is not None  # __post_init__ sets them
        g = bilevel.second_order(_losses(ctx, xt, yt), _losses(ctx, xv, yv), w, alpha, xi, ctx.hessian,
                                 _momentum_buffers(ctx.w_opt, w), ctx.momentum, ctx.weight_decay,
                                 ctx.fd_eps, reduce=ctx.reduce,
                                 # DARTS evaluates L_val(w') in a copy of the network whose BN statistics
                                 # are thrown away (quark0/darts architect.py `_construct_model_from_theta`);
                                 # the forwards at w (unrolled gradient, finite differences, weight step)
                                 # move the network's own, as there. Restored after its backward, in eager
                                 # code: a compiled forward writes them where eager does.
                                 unrolled_scope=lambda: distributed.buffers_restored(ctx.supernet))
    reg = ctx.arch.regularizer()
    if reg.requires_grad:
        # the regulariser depends on alpha only, so its gradient is the same on every rank
        for n, r in bilevel.grad(reg, alpha).items():
            g[n] = g[n] + r
    return g


def _weight_update(ctx: StepContext, total: torch.Tensor, checks: Optional[FiniteChecks],
                   loss: torch.Tensor) -> torch.Tensor:
    total.backward()   # under DDP the weight gradients arrive averaged over the ranks
    params = [p for p in ctx.supernet.parameters() if p.grad is not None]
    norm = nn.utils.clip_grad_norm_(params, ctx.grad_clip if ctx.grad_clip > 0 else math.inf)
    if checks is not None:
        # `loss` is this rank's; the gradient norm comes after the backward, whose all-reduce carries a
        # NaN into every rank's gradient norm, so that all ranks stop at the same step
        checks.add("training loss", [loss])
        checks.add("weight gradient", [norm])
    ctx.w_opt.step()
    return norm


def search_step(ctx: StepContext, xt: torch.Tensor, yt: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor,
                xi: float, update_arch: bool, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns (training loss, number correct) of the weight step, as device tensors. With ctx.check,
    a NaN or Inf in the losses, gradients or alphas raises NumericalError at the end of the step
    (one device sync for all the checks)."""
    checks = FiniteChecks() if ctx.check else None
    loss, correct = _search_step(ctx, xt, yt, xv, yv, xi, update_arch, checks)
    if checks is not None:
        checks.check(where)
    return loss, correct


def _search_step(ctx: StepContext, xt: torch.Tensor, yt: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor,
                 xi: float, update_arch: bool, checks: Optional[FiniteChecks]) -> tuple[torch.Tensor, torch.Tensor]:
    autocast = ctx.autocast() if ctx.autocast else torch.autocast("cpu", enabled=False)
    if ctx.order == "one-level":
        # w and alpha together on the training batch (DARTS section 3.3, "single-level")
        ctx.a_opt.zero_grad(set_to_none=True)
        loss, logits = _weight_phase(ctx, xt, yt, autocast, checks, with_arch=update_arch)
        if update_arch:
            grads = [p.grad for p in ctx.arch.parameters() if p.grad is not None]
            ctx.reduce(grads)
            ctx.a_opt.step()
            if checks is not None:   # as the bilevel step checks them (a NaN alpha showed one step late)
                checks.add("architecture gradient", grads)
                checks.add("architecture parameter", ctx.arch.parameters())
        return loss.detach(), (logits.argmax(1) == yt).sum()

    # Phase 1: architecture step on a validation batch
    if update_arch:
        ctx.a_opt.zero_grad(set_to_none=True)
        with autocast:
            g = arch_gradient(ctx, xt, yt, xv, yv, xi)
        if checks is not None:
            checks.add("architecture gradient", g.values())
        for n, p in ctx.arch.named_parameters():
            p.grad = g[n].to(p.dtype)
        ctx.a_opt.step()

    # Phase 2: weight step on a training batch, alpha fixed
    loss, logits = _weight_phase(ctx, xt, yt, autocast, checks, with_arch=False)
    if checks is not None and update_arch:
        checks.add("architecture parameter", ctx.arch.parameters())
    return loss.detach(), (logits.argmax(1) == yt).sum()


def _weight_phase(ctx: StepContext, xt: torch.Tensor, yt: torch.Tensor, autocast: ContextManager[object],
                  checks: Optional[FiniteChecks], with_arch: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight step on a training batch: (loss, logits). `with_arch` (one-level): the same backward
    gives alpha its gradient, the parametrisation's regulariser added; otherwise alpha is fixed."""
    ctx.w_opt.zero_grad(set_to_none=True)
    with torch.enable_grad() if with_arch else torch.no_grad():
        psi, edge = ctx.arch()
    with autocast:
        logits = ctx.model(xt, psi, edge)
        # bf16 logits: the loss in fp32; float64 ones (a loop of one's own, a check) kept as they are
        loss = F.cross_entropy(logits if logits.dtype == torch.float64 else logits.float(), yt)
    _weight_update(ctx, loss + ctx.arch.regularizer() if with_arch else loss, checks, loss)
    return loss, logits
