"""Interleaved A/B timing of the layout choices (edges plain/fused x memory format) for one workload.

    python benchmarks/layout_ab.py --workload search-first --sizes '{"layers": 5, "channels": 8, "batch_size": 64}'

bench.py runs each variant in its own process, one after the other; on a machine shared with other
work the load moves between them. Here every variant is built in one process and their steps
alternate (A B C D A B C D ...), so each variant sees the same load; the median per variant and its
ratio to the first are printed. This is how diffnas.tuning's CPU defaults were chosen
(benchmarks/NOTES.md, "Memory format on CPU").
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

VARIANTS = (("plain", "contiguous"), ("fused", "contiguous"), ("plain", "channels_last"), ("fused", "channels_last"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", default="search-first", choices=list(bench.WORKLOADS))
    p.add_argument("--sizes", type=json.loads, default={}, help="JSON overrides of the --small sizes")
    p.add_argument("--rounds", type=int, default=5, help="timed steps per variant (after one warm-up round)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    kind, name, _, small = bench.WORKLOADS[args.workload]
    sizes = {**small, **args.sizes}
    variants = [v for v in VARIANTS if kind == "search" or v[0] == "plain"]   # no mixed edges in training
    make = bench.search_runner if kind == "search" else bench.train_runner
    runners = []
    for path, fmt in variants:
        torch.manual_seed(0)
        run, _, _ = make(name, sizes, path, device, "fp32", args.rounds + 1, fmt)
        runners.append(run)
    times: list[list[float]] = [[] for _ in variants]
    for r in range(args.rounds + 1):
        for i, run in enumerate(runners):
            start = time.perf_counter()
            run(r)
            if r:
                times[i].append(time.perf_counter() - start)
    base = statistics.median(times[0])
    print(f"{args.workload}, sizes {json.dumps(sizes)}, {args.threads} thread(s), torch {torch.__version__}, "
          f"median of {args.rounds} interleaved steps")
    for (path, fmt), ts in zip(variants, times):
        ms = 1000 * statistics.median(ts)
        print(f"  {path:5s} {fmt:13s} {ms:9.1f} ms/step  x{statistics.median(ts) / base:.2f}  "
              f"(min {1000 * min(ts):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
