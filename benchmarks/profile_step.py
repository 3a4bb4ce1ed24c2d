"""Where one search step spends its time: operator calls and time per operator family, plain vs fused.

    python benchmarks/profile_step.py                       # CPU, --small sizes of bench.py
    python benchmarks/profile_step.py --device cuda --paper # H100: GPU kernels and GPU time too

Counts come from torch.profiler over --steps steps after one warm-up step (aten operators; on
CUDA also the GPU kernels, which is what the issue's "~19,000 kernels" counts).
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

FAMILIES = (("conv backward", ("convolution_backward",)), ("conv", ("conv", "convolution")),
            ("batch norm", ("batch_norm",)), ("pool", ("pool",)), ("cat/copy", ("cat", "copy_", "clone")),
            ("elementwise", ("mul", "add", "relu", "threshold", "sum", "div", "sub", "where", "fill", "zero")))


def family(name: str) -> str:
    for fam, keys in FAMILIES:
        if any(k in name for k in keys):
            return fam
    return "other"


class CountOps(TorchDispatchMode):
    """Operators that reach a kernel (views excluded): on CUDA each launches one kernel or a few,
    so this is a device-independent stand-in for the issue's kernel count."""

    def __init__(self):
        super().__init__()
        self.counts = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not func.is_view and func.__name__ not in ("detach", "t", "view", "_unsafe_view", "alias"):
            self.counts[family(func.__name__)] += 1
        return func(*args, **(kwargs or {}))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--paper", action="store_true")
    p.add_argument("--workload", default="search-first", choices=[w for w in bench.WORKLOADS if w.startswith("search")])
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cpu" and args.threads:
        torch.set_num_threads(args.threads)
    _, preset, paper, small = bench.WORKLOADS[args.workload]
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    for path in ("plain", "fused"):
        torch.manual_seed(0)
        run, _, _ = bench.search_runner(preset, paper if args.paper else small, path, device, "fp32", args.steps + 2)
        run(0)
        with CountOps() as counter:
            run(1)
        ops = counter.counts
        print(f"\n{args.workload} / {path}: {sum(ops.values())} operators reach a kernel per step: "
              + ", ".join(f"{k} {v}" for k, v in ops.most_common()))
        with profile(activities=activities) as prof:
            for s in range(args.steps):
                run(s + 2)
            if device.type == "cuda":
                torch.cuda.synchronize()
        calls, cpu_us, gpu_us = collections.Counter(), collections.Counter(), collections.Counter()
        kernels, by_kernel = 0, collections.Counter()
        for e in prof.key_averages():
            gpu = getattr(e, "self_device_time_total", getattr(e, "self_cuda_time_total", 0))
            if e.key.startswith("aten::"):
                fam = family(e.key)
                calls[fam] += e.count
                cpu_us[fam] += e.self_cpu_time_total
                # GPU time by the aten operator that launched it: cuDNN / cutlass / functor kernel names
                # say little about the operator
                gpu_us[fam] += gpu
            elif gpu:
                kernels += e.count
                by_kernel[e.key] += gpu
        n = args.steps
        total = sum(cpu_us.values())
        print(f"{args.workload} / {path}: per step {sum(calls.values()) / n:.0f} aten calls (nested counted), "
              f"{total / n / 1000:.0f} ms self CPU" + (f", {kernels / n:.0f} GPU kernels, "
                                                        f"{sum(by_kernel.values()) / n / 1000:.1f} ms GPU"
                                                        if kernels else ""))
        for fam in sorted(cpu_us, key=lambda f: -cpu_us[f]):
            line = f"  {fam:14s} {calls[fam] / n:7.0f} calls  {cpu_us[fam] / n / 1000:8.1f} ms CPU ({cpu_us[fam] / total:4.0%})"
            print(line)
        if kernels:
            for fam in sorted(gpu_us, key=lambda f: -gpu_us[f]):
                print(f"  GPU {fam:14s} {gpu_us[fam] / n / 1000:8.1f} ms (launched by aten operators of this family)")
            print("  kernels with the most GPU time:")
            for name, us in by_kernel.most_common(12):
                print(f"    {us / n / 1000:8.2f} ms  {name[:110]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
