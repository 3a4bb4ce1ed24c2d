"""The fast path of the search step: torch.compile of the supernet on CUDA, bf16 autocast.

The batched edges (diffnas.fused) are chosen per device by diffnas.tuning (on CUDA by default);
this module adds what only pays on a GPU. `step_function(step, cfg, device)` returns the eager step
unchanged when `cfg.compile` is off or the device is not CUDA (compile is on by default and means
"on CUDA": nothing falls back on a CPU, so nothing is said), and otherwise either a `CompiledStep`
or, for a CUDA configuration it cannot handle, the eager step with a one-line notice on stderr.
Nothing here changes what is computed:

- `CompiledStep` compiles `Supernet.body` (used by training-mode forwards with grad, i.e. both
  the architecture and the weight step; evaluation stays eager). Before the first step it runs the
  forward+backward of both steps' graphs (psi with and without grad) eagerly and compiled on the
  first batch, BN statistics and RNG state restored after each, and compares logits and gradients.
  A compile error or a mismatch means: eager from then on, with a notice saying why. What it cannot
  catch is a native crash inside compiled code (torch 2.13's CPU inductor aborted the process in
  the backward of a stride-2 1x1 conv, which FactorizedReduce no longer uses; benchmarks/NOTES.md);
  the trial runs before the first step, so such a failure shows at once, and `--no-compile` avoids it.
- The mode defaults to inductor without CUDA graphs; `DIFFNAS_COMPILE_MODE=reduce-overhead` (or
  the `mode` argument) adds CUDA graphs (torch.compile's cudagraph trees).
- bf16: `autocast_factory` gives a bf16 autocast context for forward passes; alpha, the master
  weights, their gradients and the optimiser states stay fp32 (autocast casts copies).
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Callable, Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F

from . import distributed

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def notice(message: str) -> None:
    """One line on stderr, from rank 0 only: every rank takes the same fast-path decisions. They are
    taken after distributed.setup(), so torch.distributed's own rank decides (distributed.is_main
    goes through distributed.is_distributed, which tests fake to reach the distributed refusal in one
    process)."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_rank() != 0):
        print(f"diffnas: {message}", file=sys.stderr)


def autocast_factory(device: torch.device, precision: str) -> Optional[Callable[[], Any]]:
    """A context factory for bf16 autocast, or None for fp32. Alpha and master weights stay fp32."""
    if precision != "bf16":
        return None
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        notice(f"bf16 is not supported on {device}; running in fp32")
        return None
    return lambda: torch.autocast(device.type, dtype=torch.bfloat16)


def _torch_version() -> tuple[int, int]:
    major, minor = torch.__version__.split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def unsupported(cfg: Any, device: torch.device) -> Optional[str]:
    """Why the compiled step cannot run for this configuration, or None."""
    if device.type != "cuda":
        return f"compiled steps run on CUDA only; {device} runs the eager step (batched edges still on)"
    if distributed.is_distributed():
        return "compiled steps are not used with torch.distributed; running the eager step"
    if getattr(cfg, "bn_groups", 1) > 1:
        return "batch norm over groups of the batch (bn_groups > 1) runs the eager step"
    if getattr(cfg, "deterministic", False):
        return "deterministic runs use the eager step (compiled kernels may reorder reductions)"
    if getattr(cfg, "order", "first") == "second":
        if getattr(cfg, "hessian", "fd") == "exact":
            return "the exact Hessian needs double backward, which torch.compile does not support; running eager"
        if _torch_version() < (2, 5):
            return "second order with torch.compile needs torch >= 2.5 (swapped weights recompile); running eager"
    return None


def step_function(step: Callable, cfg: Any, device: torch.device, mode: Optional[str] = None) -> Callable:
    """The step to call in the search loop: `step` itself, or a compiled version of it."""
    if not getattr(cfg, "compile", False) or device.type != "cuda":
        return step   # the default off CUDA: eager, nothing fell back, so no notice
    why = unsupported(cfg, device)
    if why is not None:
        notice(f"fast path: {why}")
        return step
    return CompiledStep(step, mode)


@contextlib.contextmanager
def _preserved(net: torch.nn.Module, device: torch.device):
    """Run a trial forward/backward without a trace: BN statistics and RNG state come back."""
    saved = [(b, b.clone()) for b in net.buffers()]
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            with torch.no_grad():
                for b, value in saved:
                    b.copy_(value)


def _trial(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, psi: torch.Tensor, edge: Optional[torch.Tensor],
           autocast: Optional[Callable[[], Any]]) -> list[torch.Tensor]:
    """Logits and gradients of one training forward/backward: w.r.t. psi (and the edge weights)
    when psi requires grad (the architecture step's graph), else w.r.t. the weights (the weight
    step's graph)."""
    params = [p for p in net.parameters() if p.requires_grad]
    with autocast() if autocast else contextlib.nullcontext():
        logits = net(x, psi, edge)
        loss = F.cross_entropy(logits.float(), y)
    wrt = ([psi] + ([edge] if edge is not None else [])) if psi.requires_grad else params
    grads = torch.autograd.grad(loss, wrt, allow_unused=True)
    flat = torch.cat([g.detach().float().flatten() for g in grads if g is not None])
    return [logits.detach().float().clone(), flat.clone()]


def _mismatch(a: torch.Tensor, b: torch.Tensor, tol: float) -> Optional[float]:
    err = (a - b).abs().max().item()
    scale = a.abs().max().item()
    if not err <= tol * scale + 1e-6:   # also catches NaN
        return err / max(scale, 1e-12)
    return None


class CompiledStep:
    """The search step with the supernet's training forward compiled; checked against eager once."""

    def __init__(self, step: Callable, mode: Optional[str] = None, backend: Optional[str] = None):
        self.step = step
        self.mode = mode or os.environ.get("DIFFNAS_COMPILE_MODE", "default")
        # "aot_eager" traces and differentiates like inductor but runs eager kernels: checks the
        # tracing of the supernet without code generation (benchmarks/check_compiled.py --backend)
        self.backend = backend or os.environ.get("DIFFNAS_COMPILE_BACKEND", "inductor")
        if self.mode not in COMPILE_MODES:
            raise ValueError(f"compile mode {self.mode!r} is not one of {', '.join(COMPILE_MODES)}")
        self.active: Optional[bool] = None   # None: not tried yet
        self.path = "eager"

    def __call__(self, ctx: Any, xt: torch.Tensor, yt: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if self.active is None:
            self.active = self.prepare(ctx, xt, yt)
        if self.active and self.backend == "inductor" and self.mode in ("reduce-overhead", "max-autotune"):
            torch.compiler.cudagraph_mark_step_begin()
        return self.step(ctx, xt, yt, *args, **kwargs)

    def prepare(self, ctx: Any, x: torch.Tensor, y: torch.Tensor) -> bool:
        net = ctx.supernet
        if not hasattr(net, "compiled") or not hasattr(net, "body"):
            notice(f"fast path: {type(net).__name__} has no compilable body; running the eager step")
            return False
        with torch.no_grad():
            psi, edge = ctx.arch()
        tol = 3e-2 if ctx.autocast else 1e-3
        # both graphs the step will use: psi requiring grad (architecture step), and not (weight step)
        grad_edge = None if edge is None else edge.clone().requires_grad_(True)
        trials = [("architecture", psi.clone().requires_grad_(True), grad_edge), ("weight", psi, edge)]
        try:
            refs = []
            for _, p, e in trials:
                with _preserved(net, x.device):
                    refs.append(_trial(net, x, y, p, e, ctx.autocast))
            options = {"mode": self.mode} if self.backend == "inductor" else {}
            net.compiled = torch.compile(net.body, backend=self.backend, **options)
            for (step, p, e), ref in zip(trials, refs):
                with _preserved(net, x.device):
                    got = _trial(net, x, y, p, e, ctx.autocast)
                for what, a, b in zip(("logits", f"{step}-step gradient"), ref, got):
                    rel = _mismatch(a, b, tol)
                    if rel is not None:
                        net.compiled = None
                        notice(f"fast path: compiled {what} differ from eager by {rel:.2g} (relative); "
                               f"running the eager step")
                        return False
        except Exception as e:  # compiler errors come in many types; the eager step is always right
            net.compiled = None
            first = (str(e).strip().splitlines() or [""])[0][:160]
            notice(f"fast path: torch.compile failed ({type(e).__name__}: {first}); running the eager step")
            return False
        self.path = "compiled" + ("" if self.mode == "default" else f"-{self.mode}") + \
            ("" if self.backend == "inductor" else f"-{self.backend}")
        return True
