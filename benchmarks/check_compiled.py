"""Does the compiled search step compute what the eager one computes, on this machine?

    python benchmarks/check_compiled.py --device cuda              # paper sizes, 5 steps per preset
    python benchmarks/check_compiled.py --device cpu --small --backend aot_eager   # tracing only, on CPU

Runs the same steps from the same seed three ways: plain eager, fused eager, fused +
fastpath.CompiledStep (forced, also on CPU), and prints the largest difference (relative to the
tensor's largest entry) of the alphas, the weights and the BN running statistics, fused against
plain and compiled against fused, plus first-step (compile) and steady-step times. Exit status 1
when fused differs from plain by more than 100x --tol, when compiled differs from fused by more
than --tol and by more than 4x what the two eager paths differ by (the rounding floor of this
preset, at most 10x --tol), or when the compiled step fell back to eager.
Rounding differences grow through the steps: Adam turns a tiny change of a near-zero alpha
gradient into a change of up to alpha_lr, and second order's finite differences divide rounding by
2r; 5e-3 after 5 steps is rounding, a bug shows as O(1). On CUDA the check runs without TF32 and
with cuDNN's deterministic kernels, which otherwise differ from run to run by more than that.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

from diffnas import fastpath  # noqa: E402
from diffnas.config import search_config  # noqa: E402
from diffnas.search import build, step_context  # noqa: E402
from diffnas.step import search_step  # noqa: E402


def run(preset: str, sizes: dict, path: str, device: torch.device, steps: int, precision: str,
        backend: str = "inductor"):
    cfg = search_config(preset, dataset="synthetic", precision=precision, **sizes)
    torch._dynamo.reset()   # each run compiles afresh (the recompile limit counts versions of Supernet.body)
    torch.manual_seed(0)
    supernet, arch = build(cfg, 3, 10)
    supernet.set_fused(path != "plain").to(device)
    arch.to(device)
    ctx = step_context(cfg, supernet, arch, device, precision=precision)
    step = fastpath.CompiledStep(search_step, backend=backend) if path == "compiled" else search_step
    g = torch.Generator().manual_seed(1)
    data = [[t.to(device) for t in (torch.randn(cfg.batch_size, 3, 32, 32, generator=g),
                                    torch.randint(0, 10, (cfg.batch_size,), generator=g),
                                    torch.randn(cfg.batch_size, 3, 32, 32, generator=g),
                                    torch.randint(0, 10, (cfg.batch_size,), generator=g))] for _ in range(steps)]
    torch.manual_seed(2)
    times = []
    for k, (xt, yt, xv, yv) in enumerate(data):
        bench._sync(device)
        start = time.perf_counter()
        loss, _ = step(ctx, xt, yt, xv, yv, cfg.w_lr, True, f"step {k + 1}")
        float(loss)
        times.append(time.perf_counter() - start)
    state = {**{f"arch.{k}": v for k, v in arch.state_dict().items()}, **supernet.state_dict()}
    return state, times, getattr(step, "path", "eager")


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return ((a - b).abs().max() / a.abs().max().clamp_min(1e-12)).item()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--small", action="store_true")
    p.add_argument("--presets", nargs="+", default=["darts-1st", "darts", "pc-darts", "dnas"])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    p.add_argument("--backend", default="inductor", help="aot_eager: trace and differentiate, no codegen")
    p.add_argument("--sizes", type=json.loads, default=None, help='e.g. \'{"layers": 3, "nodes": 1}\'')
    p.add_argument("--tol", type=float, default=None, help="default 5e-3 (fp32), 5e-2 (bf16)")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(1)
    else:   # rounding the same from run to run, and float32 arithmetic, for the comparison
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    tol = args.tol or (5e-2 if args.precision == "bf16" else 5e-3)
    by_preset = {w[1]: (w[3] if args.small else w[2]) for w in bench.WORKLOADS.values() if w[0] == "search"}
    failed = []
    for preset in args.presets:
        sizes = {**by_preset[preset], **(args.sizes or {})}
        ref, ref_t, _ = run(preset, sizes, "plain", device, args.steps, args.precision)
        states, worst = {"plain": ref}, {}
        for path, against in (("fused", "plain"), ("compiled", "fused")):
            state, t, used = run(preset, sizes, path, device, args.steps, args.precision, args.backend)
            states[path] = state
            base = states[against]
            diffs = {k: rel(base[k], state[k]) for k in base if base[k].is_floating_point()}
            groups = {"alpha": [v for k, v in diffs.items() if k.startswith("arch.")],
                      "weights": [v for k, v in diffs.items() if not k.startswith("arch.") and "running" not in k],
                      "bn stats": [v for k, v in diffs.items() if "running" in k]}
            summary = ", ".join(f"{g} {max(v):.1e}" for g, v in groups.items() if v)
            worst[path] = max(diffs.values())
            print(f"{preset:10s} {path:8s} ({used}): first step {t[0]:.1f} s, then {1000 * min(t[1:] or t):.0f} ms "
                  f"(plain {1000 * min(ref_t[1:] or ref_t):.0f} ms); largest relative difference vs {against}: "
                  f"{summary}", flush=True)
            if path == "compiled" and used == "eager":
                failed.append(f"{preset}: the compiled step fell back to eager")
        # the batched edges (the default on CUDA) against plain: Adam turns rounding in near-zero alpha
        # gradients into moves of up to alpha_lr (3.4e-2 relative after 2 steps of a 3-cell CPU supernet
        # at batch 4), so only a gross difference fails here; the suite checks their equality in float64
        if not worst["fused"] <= 100 * tol:
            failed.append(f"{preset}: fused vs plain {worst['fused']:.1e} > {100 * tol:.0e} (100x the tolerance)")
        # the eager paths' own difference, at most 10x the tolerance, widens the compiled path's bound
        limit = max(tol, min(4 * worst["fused"], 10 * tol))
        if not worst["compiled"] <= limit:
            failed.append(f"{preset}: compiled vs fused {worst['compiled']:.1e} > {limit:.1e} "
                          f"(tolerance {tol:.0e}, 4x fused vs plain {4 * worst['fused']:.1e})")
    print("\n".join(failed) if failed else f"all within tolerance {tol:.0e} (or 4x fused vs plain)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
