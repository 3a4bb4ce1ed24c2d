"""Steps per second of the library's own search and training steps, on CIFAR-shaped random data.

    python benchmarks/bench.py                    # CPU: --small sizes, paths plain and fused
    python benchmarks/bench.py --device cuda      # paper sizes, paths plain, fused, compiled

Each (workload, path) runs in a fresh process (clean peak memory, no shared compile caches):
`diffnas.step.search_step` with a StepContext built as diffnas.search builds it, or
`diffnas.train.train_step`, fed by `diffnas.data.Batches` (uint8 images resident on the device,
augmented per batch as in the real loops), one `float(loss)` per step as the loops do. The first
--warmup steps (compilation, allocator warm-up) are not timed; the median of the rest is reported.

Paths: plain = eager per-op supernet (the library's choice on CPU); fused = eager with batched edges
(diffnas.fused, the library's choice elsewhere); compiled = batched edges + diffnas.fastpath.CompiledStep
(torch.compile of the supernet; train: fastpath.CheckedForward, the network compiled and checked against
eager, as diffnas.train does). The training network has no mixed edges, so its "fused" row is the
plain one and is not repeated.

--memory-format (default auto: contiguous, as diffnas.tuning decides)
applies to every path; each record says which it ran.

Records (a list) are appended to benchmarks/results/<device>.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diffnas import fastpath, tuning  # noqa: E402
from diffnas.atomic import atomic_write_bytes  # noqa: E402
from diffnas import genotype as genotype_lib  # noqa: E402
from diffnas.config import search_config, train_config  # noqa: E402
from diffnas.data import Augment, Batches, Split  # noqa: E402
from diffnas.process_state import seed_everything  # noqa: E402
from diffnas.network import build_network  # noqa: E402
from diffnas.search import build, step_context  # noqa: E402
from diffnas.step import search_step  # noqa: E402
from diffnas.train import autocast_for, train_step  # noqa: E402

# CIFAR-10: 50,000 training images; the search splits them in halves (search-train / -validation)
SEARCH_IMAGES, TRAIN_IMAGES = 25_000, 50_000
SEARCH_EPOCHS, TRAIN_EPOCHS = 50, 600
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)

# workload -> (kind, preset or genotype, paper overrides, --small overrides)
WORKLOADS: dict[str, tuple[str, str, dict[str, Any], dict[str, Any]]] = {
    "search-first": ("search", "darts-1st", {}, {"layers": 5, "channels": 4, "batch_size": 8}),
    "search-second": ("search", "darts", {}, {"layers": 5, "channels": 4, "batch_size": 8}),
    "search-pc-darts": ("search", "pc-darts", {}, {"layers": 5, "channels": 8, "batch_size": 16}),
    "search-dnas": ("search", "dnas", {}, {"layers": 5, "channels": 8, "batch_size": 8}),
    "train-darts-v2": ("train", "DARTS_V2", {}, {"layers": 5, "channels": 8, "batch_size": 16}),
}
PATHS = ("plain", "fused", "compiled")


def random_split(n: int, device: torch.device, seed: int) -> Split:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (n,), generator=g)
    return Split(images, labels)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def search_runner(preset: str, sizes: dict[str, Any], path: str, device: torch.device, precision: str,
                  steps: int, memory_format: str = "auto") -> tuple[Any, int, dict[str, Any]]:
    """A closure running one search step (architecture + weight step), built as diffnas.search does."""
    cfg = search_config(preset, dataset="synthetic", device=str(device), precision=precision,
                        compile=path == "compiled", detect_anomaly=True, **sizes)
    supernet, arch = build(cfg, 3, 10)
    supernet.set_fused(path != "plain")
    supernet.to(device)
    tuning.apply_memory_format(supernet, memory_format, device)
    arch.to(device)
    ctx = step_context(cfg, supernet, arch, device)
    # the compiled path is forced here (also on CPU, where diffnas.search would run eager)
    step_fn = fastpath.CompiledStep(search_step) if path == "compiled" else search_step
    n = cfg.batch_size * (steps + 1)
    aug = Augment(crop_padding=4, flip=True)
    train_b = Batches(random_split(n, device, 0), cfg.batch_size, MEAN, STD, device, augment=aug, seed=0)
    val_b = Batches(random_split(n, device, 1), cfg.batch_size, MEAN, STD, device, augment=aug, seed=1)
    pairs = zip(train_b.epoch(0), val_b.epoch(0))
    xi = cfg.w_lr

    def run(step: int) -> None:
        (xt, yt), (xv, yv) = next(pairs)
        loss, correct = step_fn(ctx, xt, yt, xv, yv, xi, True, f"at step {step + 1}")
        float(loss), float(correct)   # the loop's per-step read-out

    info = {"preset": preset, "order": cfg.order, "layers": cfg.layers, "channels": cfg.channels,
            "nodes": cfg.nodes, "partial_channels": cfg.partial_channels, "arch": cfg.arch,
            "compiled": getattr(step_fn, "path", "eager")}
    return run, cfg.batch_size, {**info, "_step_fn": step_fn}


def train_runner(genotype: str, sizes: dict[str, Any], path: str, device: torch.device, precision: str,
                 steps: int, memory_format: str = "auto") -> tuple[Any, int, dict[str, Any]]:
    """A closure running one training step of diffnas.train (auxiliary head, drop-path, cutout)."""
    cfg = train_config("cifar", genotype=genotype, dataset="synthetic", device=str(device), precision=precision,
                       **sizes)
    model = build_network(genotype_lib.load(genotype), "cifar", cfg.channels, cfg.layers, 10, 3,
                          auxiliary=cfg.auxiliary > 0).to(device)
    tuning.apply_memory_format(model, memory_format, device)
    model.train()
    # as diffnas.train: checked against eager on the first batch, $DIFFNAS_COMPILE_MODE
    forward = fastpath.CheckedForward(model, bf16=precision == "bf16") if path == "compiled" else model
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.wd)
    autocast = autocast_for(device, cfg.precision)
    aug = Augment(crop_padding=4, flip=True, cutout=cfg.cutout)
    batches = Batches(random_split(cfg.batch_size * (steps + 1), device, 0), cfg.batch_size, MEAN, STD, device,
                      augment=aug, seed=0)
    it = batches.epoch(0)
    drop_prob = cfg.drop_path / 2   # mid-training

    def run(step: int) -> None:
        x, y = next(it)
        loss, correct = train_step(forward, model, opt, x, y, drop_prob, cfg, autocast, f"at step {step + 1}")
        float(loss), float(correct)

    return run, cfg.batch_size, {"genotype": genotype, "layers": cfg.layers, "channels": cfg.channels,
                                 "auxiliary": cfg.auxiliary, "compiled": "eager",
                                 "_step_fn": forward if path == "compiled" else None}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu"


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "diffnas", "benchmarks/bench.py"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def measure(workload: str, path: str, device: torch.device, small: bool, steps: int, warmup: int,
            precision: str, memory_format: str = "auto", overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    kind, name, paper, small_sizes = WORKLOADS[workload]
    sizes = {**(small_sizes if small else paper), **(overrides or {})}
    make = search_runner if kind == "search" else train_runner
    seed_everything(0)   # as the loops: also cuDNN's algorithm timing (benchmark mode) on CUDA
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    run, batch, info = make(name, sizes, path, device, precision, warmup + steps, memory_format)
    channels_last = tuning.memory_format(memory_format, device) == torch.channels_last
    info["memory_format"] = "channels_last" if channels_last else "contiguous"
    step_fn = info.pop("_step_fn", None)
    times = []
    for s in range(warmup + steps):
        _sync(device)
        start = time.perf_counter()
        run(s)
        _sync(device)
        if s >= warmup:
            times.append(time.perf_counter() - start)
    if step_fn is not None:
        info["compiled"] = getattr(step_fn, "path", "eager")
    ms = 1000 * statistics.median(times)
    per_epoch = (SEARCH_IMAGES if kind == "search" else TRAIN_IMAGES) // batch
    epochs = SEARCH_EPOCHS if kind == "search" else TRAIN_EPOCHS
    if device.type == "cuda":
        peak, memory_kind = torch.cuda.max_memory_allocated(device) / 2**20, "torch.cuda.max_memory_allocated"
    else:
        # ru_maxrss: KiB on Linux, bytes on macOS; the whole process (torch itself included)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak, memory_kind = rss / (2**20 if platform.system() == "Darwin" else 2**10), "ru_maxrss (process)"
    return {
        "workload": workload, "path": path, "ms_per_step": round(ms, 2), "ms_min": round(1000 * min(times), 2),
        "images_per_s": round(batch / ms * 1000, 1), "steps_per_epoch": per_epoch,
        "epoch_seconds": round(ms * per_epoch / 1000, 1),
        "run_hours": round(ms * per_epoch * epochs / 3.6e6, 2), "run_epochs": epochs,
        "peak_memory_mb": round(peak, 1), "memory": memory_kind, "batch_size": batch, "small": small,
        "precision": precision, "steps": steps, "warmup": warmup, **info,
        "device": device_name(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "commit": git_commit(), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def table(records: list[dict[str, Any]]) -> str:
    head = ("workload", "path", "format", "ms/step", "images/s", "epoch s", "run h", "peak MB")
    rows = [(r["workload"], r["path"], r.get("memory_format", "contiguous"), f"{r['ms_per_step']:.1f}",
             f"{r['images_per_s']:.0f}", f"{r['epoch_seconds']:.0f}", f"{r['run_hours']:.2f}", f"{r['peak_memory_mb']:.0f}") for r in records]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "  ".join(str(c).rjust(w) if i > 2 else str(c).ljust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, rows)])


def append_records(out: Path, records: list[dict[str, Any]]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(out.read_text()) if out.is_file() else []
    atomic_write_bytes(out, (json.dumps(old + records, indent=1) + "\n").encode())


def run_child(args: argparse.Namespace, workload: str, path: str, device: torch.device, small: bool, steps: int,
              warmup: int) -> dict[str, Any] | None:
    """One record measured in a fresh process; None (and the reason on stderr) when it failed or ran past
    --record-timeout."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--device", str(device), "--steps", str(steps),
           "--warmup", str(warmup), "--precision", args.precision, "--threads", str(args.threads),
           "--memory-format", args.memory_format, "--child", workload, path] + \
        (["--small"] if small else ["--paper"]) + (["--sizes", json.dumps(args.sizes)] if args.sizes else [])
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.record_timeout)
    except subprocess.TimeoutExpired as e:   # what it said so far (a compile's notices): where the time went
        said = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        sys.stderr.write(said[-2000:])
        print(f"bench: {workload} / {path} ran past --record-timeout {args.record_timeout:g} s", file=sys.stderr)
        return None
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("BENCH-RECORD ")]
    if done.returncode or not lines:
        sys.stderr.write(done.stderr[-4000:])
        print(f"bench: {workload} / {path} failed (exit {done.returncode})", file=sys.stderr)
        return None
    record = json.loads(lines[-1][len("BENCH-RECORD "):])
    notices = [ln for ln in done.stderr.splitlines() if ln.startswith("diffnas: ")]
    if notices:
        record["notices"] = notices
    return record


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--small", action="store_true", help="small sizes (the default on CPU)")
    p.add_argument("--paper", action="store_true", help="paper sizes even on CPU (slow)")
    p.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    p.add_argument("--paths", nargs="+", choices=PATHS, help="default: plain fused (+ compiled on CUDA)")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 20 on CUDA, 3 on CPU)")
    p.add_argument("--warmup", type=int, default=None, help="untimed first steps (default 5 on CUDA, 1 on CPU)")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    p.add_argument("--memory-format", dest="memory_format", default="auto", choices=tuning.MEMORY_FORMATS,
                   help="weights' and activations' format (auto: contiguous)")
    p.add_argument("--sizes", type=json.loads, default=None,
                   help='JSON overrides of the workloads\' sizes, e.g. \'{"batch_size": 32, "channels": 8}\'')
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default 1 on CPU: on a shared machine OpenMP waiting swamps tiny "
                        "kernels; 0: torch's default)")
    p.add_argument("--out", default=None, help="JSON file (default benchmarks/results/<device>.json)")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--in-process", action="store_true", help="run every record in this process")
    p.add_argument("--record-timeout", type=float, default=None, metavar="S",
                   help="give up a record's process after S seconds and go on with the next (a compile that "
                        "takes too long on a short GPU lease)")
    p.add_argument("--child", nargs=2, metavar=("WORKLOAD", "PATH"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    name = args.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if args.threads is None:
        args.threads = 1 if device.type == "cpu" else 0
    if args.threads:
        torch.set_num_threads(args.threads)
    small = args.small or (device.type == "cpu" and not args.paper)
    steps = args.steps if args.steps is not None else (20 if device.type == "cuda" else 3)
    warmup = args.warmup if args.warmup is not None else (5 if device.type == "cuda" else 1)
    if args.child:
        record = measure(args.child[0], args.child[1], device, small, steps, warmup, args.precision,
                         args.memory_format, args.sizes)
        print("BENCH-RECORD " + json.dumps(record))
        return 0

    paths = args.paths or (["plain", "fused", "compiled"] if device.type == "cuda" else ["plain", "fused"])
    out = None if args.no_write else Path(args.out) if args.out else \
        ROOT / "benchmarks" / "results" / f"{slug(device_name(device))}.json"
    records, failed = [], []
    for workload in args.workloads:
        for path in paths:
            if WORKLOADS[workload][0] == "train" and path == "fused":
                continue   # no mixed edges in the training network: the same as plain
            if args.in_process:
                record = measure(workload, path, device, small, steps, warmup, args.precision,
                                 args.memory_format, args.sizes)
            else:
                record = run_child(args, workload, path, device, small, steps, warmup)
                if record is None:   # said why; the other records are still measured (a short GPU lease)
                    failed.append(f"{workload} / {path}")
                    continue
            records.append(record)
            if out is not None:   # each record as soon as it is measured: a run cut short keeps what it had
                append_records(out, [record])
            print(f"{workload:16s} {path:8s} {record['memory_format']:13s} {record['ms_per_step']:9.1f} ms/step",
                  file=sys.stderr, flush=True)
    if records:
        sizes = "small sizes (--small)" if small else "paper sizes"
        sizes += f", sizes {json.dumps(args.sizes)}" if args.sizes else ""
        print(f"\n{records[0]['device']}, torch {torch.__version__}, {sizes}, {args.precision}, "
              f"median of {steps} steps after {warmup} warm-up\n")
        print(table(records))
        if out is not None:
            print(f"\n{len(records)} records appended to {out}")
    if failed:
        print(f"bench: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
