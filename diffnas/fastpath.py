"""The fast path of the search step: torch.compile of the supernet on CUDA, bf16 autocast.

The batched edges (diffnas.fused) are chosen per device by diffnas.tuning (on CUDA by default);
this module adds what only pays on a GPU. `step_function(step, cfg, device)` returns the eager step
unchanged when `cfg.compile` is off or the device is not CUDA (compile is on by default and means
"on CUDA": nothing falls back on a CPU, so nothing is said), and otherwise either a `CompiledStep`
or, for a CUDA configuration it cannot handle, the eager step with a one-line notice on stderr.
Nothing here changes what is computed:

- `CompiledStep` compiles `Supernet.body` (used by training-mode forwards with grad, i.e. both
  the architecture and the weight step; evaluation stays eager). Before the first step it runs the
  forward+backward of every graph the step will use (psi with and without grad; for second order
  also the unrolled weights w' and the finite differences' w+-, which are not the parameters and
  compile separately) eagerly and compiled on the first batch, BN statistics and RNG state
  restored after each, and compares logits, gradients and the BN statistics the forward leaves.
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
import math
import os
import time
from typing import Any, Callable, Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F

from . import distributed
from .config import SearchConfig
from .errors import ConfigError
from .notices import option, say

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def notice(message: str) -> None:
    """One line on stderr, from rank 0 only: every rank takes the same fast-path decisions. They are
    taken after distributed.setup(), so torch.distributed's own rank decides (distributed.is_main
    goes through distributed.is_distributed, which tests fake to reach the distributed refusal in one
    process)."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_rank() != 0):
        say(f"diffnas: {message}", above_bars=True)   # above a progress bar, not into it


def autocast_factory(device: torch.device, precision: str) -> Optional[Callable[[], Any]]:
    """A context factory for bf16 autocast, or None for fp32 (search and training alike). Alpha and
    master weights stay fp32. bf16 runs on the CPU and on CUDA devices that support it; elsewhere a
    warning, and fp32."""
    if precision != "bf16":
        return None
    if device.type == "cpu" or (device.type == "cuda" and torch.cuda.is_bf16_supported()):
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    notice(f"warning: bf16 is not supported on {device}; running in fp32")
    return None


def _torch_version() -> tuple[int, int]:
    major, minor = torch.__version__.split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def unsupported(cfg: SearchConfig, device: torch.device) -> Optional[str]:
    """Why the compiled step cannot run for this configuration, or None."""
    if device.type != "cuda":
        return f"compiled steps run on CUDA only; {device} runs the eager step (batched edges still on)"
    if distributed.is_distributed():
        return "compiled steps are not used with torch.distributed; running the eager step"
    if cfg.bn_groups > 1:
        return "batch norm over groups of the batch (bn_groups > 1) runs the eager step"
    if cfg.deterministic:
        return "deterministic runs use the eager step (compiled kernels may reorder reductions)"
    second = cfg.order == "second"
    if second and cfg.hessian == "exact":
        return "the exact Hessian needs double backward, which torch.compile does not support; running eager"
    if _torch_version() < (2, 3):
        return ("torch.compile of the supernet needs torch >= 2.3 (torch 2.2 took minutes to trace even a small "
                "one); running the eager step")
    if second and _torch_version() < (2, 5):
        return "second order with torch.compile needs torch >= 2.5 (swapped weights recompile); running eager"
    return None


def compile_mode(mode: Optional[str] = None) -> str:
    """`mode`, else $DIFFNAS_COMPILE_MODE, else "default" (inductor without CUDA graphs)."""
    mode = mode or os.environ.get("DIFFNAS_COMPILE_MODE", "default")
    if mode not in COMPILE_MODES:
        raise ConfigError(f"DIFFNAS_COMPILE_MODE: {mode!r} is not one of {', '.join(COMPILE_MODES)}")
    return mode


def compile_fn(fn: Callable, mode: Optional[str] = None, backend: str = "inductor") -> Callable:
    """torch.compile that draws random numbers as eager does. Inductor otherwise generates its own
    random kernels: the same seed then gives other dropout / drop-path masks (DNAS's skip dropout, the
    trained network's drop-path) than the eager path, and the compiled-vs-eager check before the
    first step would always reject DNAS. Inductor's `fallback_random` makes the random ops eager
    calls; torch.compile takes `mode` or `options`, not both, so the mode's own options (what
    torch.compile would apply for it) are passed with it, for this function only."""
    mode = compile_mode(mode)
    if backend != "inductor":
        return torch.compile(fn, backend=backend)
    from torch._inductor import list_mode_options

    options = {**list_mode_options(mode), "fallback_random": True}
    return torch.compile(fn, backend=backend, options=options)


def step_function(step: Callable, cfg: SearchConfig, device: torch.device, mode: Optional[str] = None) -> Callable:
    """The step to call in the search loop: `step` itself, or a compiled version of it."""
    if not cfg.compile or device.type != "cuda":
        return step   # the default off CUDA: eager, nothing fell back, so no notice
    why = unsupported(cfg, device)
    if why is not None:
        notice(f"fast path: {why}")
        return step
    mode = compile_mode(mode)
    if mode in ("reduce-overhead", "max-autotune") and cfg.order == "second":
        # CUDA graphs keep the addresses of module tensors; the unrolled weights w' and w+- are new
        # tensors every step, so the graphs would be recorded again at every step
        plain = "default" if mode == "reduce-overhead" else "max-autotune-no-cudagraphs"
        notice(f"fast path: CUDA graphs ({mode}) would be recorded again at every second-order step "
               f"(the unrolled weights are new tensors each time); compiling with mode {plain}")
        mode = plain
    return CompiledStep(step, mode)


@contextlib.contextmanager
def _preserved(net: torch.nn.Module, device: torch.device):
    """Run a trial forward/backward without a trace: BN statistics and RNG state come back."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), distributed.buffers_restored(net):
        yield


def _trial(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, psi: torch.Tensor, edge: Optional[torch.Tensor],
           autocast: Optional[Callable[[], Any]],
           weights: Optional[dict[str, torch.Tensor]] = None) -> list[torch.Tensor]:
    """Logits and gradients of one training forward/backward: w.r.t. psi (and the edge weights)
    when psi requires grad (the architecture step's graph), else w.r.t. the weights (the weight
    step's graph). `weights`: tensors standing in for the parameters through functional_call, as
    second order's unrolled w' (requiring grad: their gradients are compared too) and its finite
    differences w+- (not requiring grad) do."""
    params: list[torch.Tensor] = [p for p in net.parameters() if p.requires_grad]
    with autocast() if autocast else contextlib.nullcontext():
        logits = net(x, psi, edge) if weights is None else torch.func.functional_call(net, weights, (x, psi, edge))
        loss = F.cross_entropy(logits.float(), y)
    if weights is not None:
        wrt = [psi] + ([edge] if edge is not None else []) + [w for w in weights.values() if w.requires_grad]
    else:
        wrt = ([psi] + ([edge] if edge is not None else [])) if psi.requires_grad else params
    grads = torch.autograd.grad(loss, wrt, allow_unused=True)
    flat = torch.cat([g.detach().float().flatten() for g in grads if g is not None])
    return [logits.detach().float().clone(), flat.clone(), _statistics(net)]


def _statistics(net: torch.nn.Module) -> torch.Tensor:
    """The BN running statistics after a trial's forward (restored by `_preserved` afterwards): a
    compiled graph must write them as eager does, which logits and gradients do not show."""
    found = [b.detach().float().flatten() for b in net.buffers() if b.is_floating_point()]
    return torch.cat(found).clone() if found else torch.zeros(0)


def _tolerance(device: torch.device, bf16: bool) -> float:
    """Relative tolerance of a compiled-vs-eager trial: bf16 3e-2; fp32 on CUDA convolves in TF32 by
    default (10-bit mantissa), where eager and compiled kernels may round differently, 1e-2; else
    1e-3. A wrong graph differs at O(1)."""
    return 3e-2 if bf16 else 1e-2 if device.type == "cuda" and torch.backends.cudnn.allow_tf32 else 1e-3


def _first_line(e: Exception) -> str:
    return f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:160]}"


def _mismatch(a: torch.Tensor, b: torch.Tensor, tol: float) -> Optional[float]:
    if a.shape != b.shape:
        return math.inf
    if a.numel() == 0:
        return None
    err = (a - b).abs().max().item()
    scale = a.abs().max().item()
    if not err <= tol * scale + 1e-6:   # also catches NaN
        return err / max(scale, 1e-12)
    return None


class CompiledStep:
    """The search step with the supernet's training forward compiled; checked against eager once."""

    def __init__(self, step: Callable, mode: Optional[str] = None, backend: Optional[str] = None):
        self.step = step
        self.mode = compile_mode(mode)
        # "aot_eager" traces and differentiates like inductor but runs eager kernels: checks the
        # tracing of the supernet without code generation (benchmarks/check_compiled.py --backend)
        self.backend = backend or os.environ.get("DIFFNAS_COMPILE_BACKEND", "inductor")
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
        tol = _tolerance(x.device, ctx.autocast is not None)
        # the graphs the step will use: psi requiring grad (architecture step), and not (weight step)
        grad_psi = psi.clone().requires_grad_(True)
        grad_edge = None if edge is None else edge.clone().requires_grad_(True)
        trials: list[tuple[str, torch.Tensor, Optional[torch.Tensor], Optional[dict[str, torch.Tensor]]]] = [
            ("architecture", grad_psi, grad_edge, None), ("weight", psi, edge, None)]
        if ctx.order == "second":   # two more graphs: weights that are not the parameters themselves
            own = dict(net.named_parameters())
            unrolled = {n: p.detach().clone().requires_grad_(True) for n, p in own.items()}
            trials += [("unrolled", grad_psi, grad_edge, unrolled),
                       ("finite-difference", grad_psi, grad_edge, {n: p.detach().clone() for n, p in own.items()})]
        notice("fast path: compiling the search step and checking it against eager on the first batch "
               f"(minutes for the paper's supernet; {option('compile', False)} runs eager)")
        start = time.perf_counter()
        refs = []   # eager, outside the `try`: an error here is the run's own, not the compiler's
        for _, p, e, w in trials:
            with _preserved(net, x.device):
                refs.append(_trial(net, x, y, p, e, ctx.autocast, w))
        try:
            net.compiled = compile_fn(net.body, self.mode, self.backend)
            for (step, p, e, w), ref in zip(trials, refs):
                with _preserved(net, x.device):
                    got = _trial(net, x, y, p, e, ctx.autocast, w)
                for what, a, b in zip((f"{step}-step logits", f"{step}-step gradient",
                                       f"{step}-step BN statistics"), ref, got):
                    rel = _mismatch(a, b, tol)
                    if rel is not None:
                        net.compiled = None
                        notice(f"fast path: compiled {what} differ from eager by {rel:.2g} (relative); "
                               f"running the eager step")
                        return False
        except Exception as e:  # compiler errors come in many types; the eager step is always right
            net.compiled = None
            notice(f"fast path: torch.compile failed ({_first_line(e)}); running the eager step")
            return False
        self.path = "compiled" + ("" if self.mode == "default" else f"-{self.mode}") + \
            ("" if self.backend == "inductor" else f"-{self.backend}")
        notice(f"fast path: compiled and checked ({len(trials)} graphs) in {time.perf_counter() - start:.0f} s")
        return True


class CheckedForward:
    """A network's forward compiled (`compile_fn`), checked against eager on its first call: the
    forward, the gradients of its outputs w.r.t. the weights and the BN statistics it leaves, both
    ways on the first batch (BN statistics and RNG state restored, under the caller's autocast),
    compared. A compile error or a mismatch: the eager forward from then on, with a notice saying why.
    What `diffnas train` runs on CUDA; `path` says which one ran ("compiled" or "eager")."""

    def __init__(self, forward: torch.nn.Module, bf16: bool = False, mode: Optional[str] = None):
        self.forward = forward
        self.bf16 = bf16
        self.mode = compile_mode(mode)
        self.compiled: Optional[Callable] = None
        self.checked = False
        self.path = "eager"

    # what scoring.score_network asks of the module it is given
    @property
    def training(self) -> bool:
        return self.forward.training

    def train(self, mode: bool = True) -> "CheckedForward":
        self.forward.train(mode)
        return self

    def eval(self) -> "CheckedForward":
        return self.train(False)

    def __call__(self, *args: Any) -> Any:
        if not self.checked:
            if not (torch.is_grad_enabled() and self.forward.training):
                return self.forward(*args)   # a test pass before any step (a resume): checked at the first step
            self.checked = True
            self.compiled = self._prepare(args)
            self.path = "compiled" if self.compiled is not None else "eager"
        return (self.compiled or self.forward)(*args)

    def _trial(self, fn: Callable, args: tuple) -> list[torch.Tensor]:
        net = self.forward
        params = [p for p in net.parameters() if p.requires_grad]
        x = args[0]
        # DDP: no gradient synchronisation is prepared for a backward that never comes (autograd.grad)
        # (ignore: no_sync is DDP's, found by hasattr; an nn.Module's attributes are typed Tensor | Module)
        quiet = net.no_sync() if hasattr(net, "no_sync") else contextlib.nullcontext()  # type: ignore[operator]
        with _preserved(net, x.device), quiet:
            out = fn(*args)
            outs = [o for o in (out if isinstance(out, (tuple, list)) else (out,)) if o is not None]
            loss = sum(o.float().square().mean() for o in outs)
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            statistics = _statistics(net)
        return [torch.cat([o.detach().float().flatten() for o in outs]),
                torch.cat([g.detach().float().flatten() for g in grads if g is not None]), statistics]

    def _prepare(self, args: tuple) -> Optional[Callable]:
        notice("fast path: compiling the network and checking it against eager on the first batch "
               f"(a minute or more; {option('compile', False)} runs eager)")
        start = time.perf_counter()
        tol = _tolerance(args[0].device, self.bf16)
        ref = self._trial(self.forward, args)   # eager, outside the `try`: its errors are the run's own
        try:
            compiled = compile_fn(self.forward, self.mode)
            got = self._trial(compiled, args)
            for what, a, b in zip(("outputs", "gradients", "BN statistics"), ref, got):
                rel = _mismatch(a, b, tol)
                if rel is not None:
                    notice(f"fast path: the compiled network's {what} differ from eager by {rel:.2g} (relative); "
                           f"running eager")
                    return None
        except Exception as e:  # compiler errors come in many types; the eager forward is always right
            notice(f"fast path: torch.compile of the network failed ({_first_line(e)}); running eager")
            return None
        notice(f"fast path: network compiled and checked in {time.perf_counter() - start:.0f} s")
        return compiled
