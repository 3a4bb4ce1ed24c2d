"""Hypergradients of the bilevel problem (DARTS, Liu et al. 2019, section 2.3, Algorithm 1):

    min_alpha L_val(w*(alpha), alpha)   s.t.   w*(alpha) = argmin_w L_train(w, alpha)

Written on dicts of tensors and two loss closures `loss(w, alpha) -> scalar`, so the neural search
and the two-parameter toy problem (diffnas.toy) run exactly the same code.

`reduce` averages a list of gradient tensors across data-parallel ranks in place (identity on one
process): every quantity that later code reads from all ranks (the unrolled step's gradient, the
vector of the Hessian-vector product, the result) is reduced, so every rank holds the same numbers.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, ContextManager, Iterator, Optional, cast

import torch

from . import device_rng
from .device_rng import RngState

Params = dict[str, torch.Tensor]
LossFn = Callable[[Params, Params], torch.Tensor]
Reduce = Callable[[list[torch.Tensor]], None]


def no_reduce(tensors: list[torch.Tensor]) -> None:
    """The `reduce` of a single process: the gradients are already the whole batch's."""


def grad(loss: torch.Tensor, params: Params, create_graph: bool = False) -> Params:
    """d loss / d params as a dict; parameters the loss does not reach get zeros. A loss that reaches
    none of them is a ConfigError: a closure that calls a module with its own parameters instead of
    the dict it is given would otherwise give zeros, and second order would silently be first order."""
    names = list(params)
    gs = (torch.autograd.grad(loss, [params[n] for n in names], create_graph=create_graph, allow_unused=True)
          if loss.requires_grad else [None] * len(names))
    if names and all(g is None for g in gs):
        from .errors import ConfigError

        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        raise ConfigError(f"loss: reaches none of the parameters it is differentiated by ({shown}); a loss "
                          f"closure loss(w, alpha) must compute with the dicts it is given (a module through "
                          f"torch.func.functional_call(module, w, args)), not the module's own parameters")
    return {n: torch.zeros_like(params[n]) if g is None else g for n, g in zip(names, gs)}


def _merge(alpha: Params, w: Params) -> Params:
    """One dict of both sets, for a single backward pass; names must not collide."""
    shared = set(alpha) & set(w)
    if shared:
        raise ValueError(f"weight and architecture parameters share names: {sorted(shared)}")
    return {**alpha, **w}


def unrolled(w: Params, g: Params, xi: float, momentum_buffer: Optional[Params] = None,
             momentum: float = 0.0, weight_decay: float = 0.0) -> Params:
    """One virtual SGD step, as the original (architect.py `_compute_unrolled_model`):

        w' = w - xi * (momentum * buf + grad_w L_train(w, alpha) + weight_decay * w)
    """
    out = {}
    for n, p in w.items():
        step = g[n] + weight_decay * p if weight_decay else g[n]
        if momentum_buffer is not None and n in momentum_buffer and momentum:
            step = step + momentum * momentum_buffer[n]
        out[n] = p - xi * step
    return out


def first_order(val_loss: LossFn, w: Params, alpha: Params, reduce: Reduce = no_reduce) -> Params:
    """xi = 0: grad_alpha L_val(w, alpha). Only alpha's gradient is computed."""
    d = grad(val_loss(w, alpha), alpha)
    reduce(list(d.values()))
    return d


def rng_state(device: torch.device) -> RngState:
    """The random state a loss on `device` draws from (`device_rng.get_state`: the CPU generator's, and
    the accelerator's own, from which dropout there draws)."""
    return device_rng.get_state(device)


@contextlib.contextmanager
def replayed(state: RngState, device: torch.device) -> Iterator[None]:
    """Within the block the random draws start from `state` again; after it they go on as before it."""
    now = rng_state(device)
    device_rng.set_state(state, device)
    try:
        yield
    finally:
        device_rng.set_state(now, device)


def hessian_vector(train_loss: LossFn, w: Params, alpha: Params, v: Params, method: str = "fd",
                   eps: float = 0.01, graph_grad: Optional[Params] = None,
                   randomness: Optional[RngState] = None) -> Params:
    """(grad^2_{alpha, w} L_train(w, alpha)) v.

    fd: central finite differences, (grad_alpha L_train(w+, alpha) - grad_alpha L_train(w-, alpha)) / (2 r)
        with w+- = w +- r v and r = eps / ||v|| (architect.py `_hessian_vector_product`; note the
        parentheses: the `/ 2.*r` slip of some re-implementations silently drops the term).
        `randomness`: the random state both losses draw from (`rng_state`), so that a loss with
        dropout (--skip-dropout) differences one function, not two masks: a mask's change divided
        by 2r swamped the product. None: each draws on.
    exact: grad_alpha (grad_w L_train(w, alpha) . v) by double backward; `graph_grad` may pass a
        grad_w computed with create_graph=True to save one forward.
    """
    if method == "fd":
        # cast: sum() of tensors is typed Tensor | Literal[0] (0 only for no parameters at all)
        norm = torch.sqrt(cast(torch.Tensor, sum((t.detach() ** 2).sum() for t in v.values())))
        r = eps / norm.clamp_min(1e-12)
        plus = {n: p.detach() + r * v[n] for n, p in w.items()}
        minus = {n: p.detach() - r * v[n] for n, p in w.items()}
        device = next(iter(w.values())).device
        same = (lambda: replayed(randomness, device)) if randomness is not None else contextlib.nullcontext
        with same():
            gp = grad(train_loss(plus, alpha), alpha)
        with same():
            gm = grad(train_loss(minus, alpha), alpha)
        return {n: (gp[n] - gm[n]) / (2 * r) for n in alpha}
    if method == "exact":
        g = graph_grad if graph_grad is not None else grad(train_loss(w, alpha), w, create_graph=True)
        dot = cast(torch.Tensor, sum((g[n] * v[n].detach()).sum() for n in w))
        return grad(dot, alpha)
    raise ValueError(f"unknown Hessian-vector method {method!r} (fd or exact)")


def second_order(train_loss: LossFn, val_loss: LossFn, w: Params, alpha: Params, xi: float,
                 method: str = "fd", momentum_buffer: Optional[Params] = None, momentum: float = 0.0,
                 weight_decay: float = 0.0, eps: float = 0.01, reduce: Reduce = no_reduce,
                 unrolled_scope: Callable[[], ContextManager[Any]] = contextlib.nullcontext) -> Params:
    """The unrolled approximation (DARTS eq. 7-8):

        grad_alpha L_val(w', alpha) - xi * grad^2_{alpha, w} L_train(w, alpha) grad_{w'} L_val(w', alpha)
        with w' = w - xi * grad_w L_train(w, alpha) (with momentum and weight decay of the weight optimiser)

    unrolled_scope: a context for the evaluation of L_val(w') and its gradient (step.py keeps the BN
    statistics out of it, as DARTS's throwaway copy of the network does).

    With fd, L_train at w+- draws the random numbers (dropout masks) L_train at w drew, as the exact
    product differentiates that one evaluation; the random state afterwards is the exact method's.
    """
    exact = method == "exact"
    w_leaf = {n: p.detach().requires_grad_(True) for n, p in w.items()}   # w itself need not require grad
    randomness = None if exact else rng_state(next(iter(w.values())).device)
    g = grad(train_loss(w_leaf, alpha), w_leaf, create_graph=exact)
    g_data = {n: t.detach() for n, t in g.items()}
    reduce(list(g_data.values()))
    w_prime = {n: p.requires_grad_(True) for n, p in
               unrolled({n: p.detach() for n, p in w.items()}, g_data, xi, momentum_buffer, momentum,
                        weight_decay).items()}
    with unrolled_scope():
        d = grad(val_loss(w_prime, alpha), _merge(alpha, w_prime))
    d_alpha = {n: d[n] for n in alpha}
    v = {n: d[n] for n in w_prime}
    reduce(list(v.values()))
    hv = hessian_vector(train_loss, w_leaf, alpha, v, method, eps, graph_grad=g if exact else None,
                        randomness=randomness)
    out = {n: d_alpha[n] - xi * hv[n] for n in alpha}
    reduce(list(out.values()))
    return out


def implicit(train_loss: LossFn, val_loss: LossFn, w: Params, alpha: Params, iterations: int = 50,
             tol: float = 1e-10) -> Params:
    """The exact hypergradient by implicit differentiation, for a w at the lower-level optimum:

        grad_alpha L_val - grad^2_{alpha, w} L_train [grad^2_{w, w} L_train]^{-1} grad_w L_val

    The linear system is solved by conjugate gradients on exact Hessian-vector products, so it
    suits small problems and references (the toy), not the supernet.
    """
    w_leaf = {n: p.detach().requires_grad_(True) for n, p in w.items()}
    d = grad(val_loss(w_leaf, alpha), _merge(alpha, w_leaf))
    b = {n: d[n].detach() for n in w_leaf}
    g = grad(train_loss(w_leaf, alpha), w_leaf, create_graph=True)

    def h_ww(v: Params) -> Params:  # grad^2_{w, w} L_train v, keeping g's graph for the next product
        dot = cast(torch.Tensor, sum((g[n] * v[n]).sum() for n in w_leaf))
        hv = torch.autograd.grad(dot, list(w_leaf.values()), retain_graph=True)
        return {n: t.detach() for n, t in zip(w_leaf, hv)}

    def inner(a: Params, c: Params) -> torch.Tensor:
        return cast(torch.Tensor, sum((a[n] * c[n]).sum() for n in a))

    # conjugate gradients for H_ww x = grad_w L_val
    x = {n: torch.zeros_like(t) for n, t in b.items()}
    r = {n: t.clone() for n, t in b.items()}
    p = {n: t.clone() for n, t in r.items()}
    rs = inner(r, r)
    for _ in range(iterations):
        if rs <= tol:
            break
        hp = h_ww(p)
        step = rs / inner(p, hp)
        x = {n: x[n] + step * p[n] for n in x}
        r = {n: r[n] - step * hp[n] for n in r}
        rs_new = inner(r, r)
        p = {n: r[n] + (rs_new / rs) * p[n] for n in p}
        rs = rs_new
    hv = hessian_vector(train_loss, w_leaf, alpha, x, "exact", graph_grad=g)
    return {n: d[n] - hv[n] for n in alpha}
