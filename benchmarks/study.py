"""The CIFAR-10 study: DARTS first vs second order, PC-DARTS and DNAS searches (several seeds), their
genotypes trained from scratch at one common reduced budget next to DARTS_V2 and random genotypes.

    python benchmarks/study.py --dataset imagefolder --data-dir DATA/cifar10 --out docs/study

DATA/cifar10 is the unpacked ../shared/data/cifar10-jpeg.tar.xz (train/<class>/*.jpg, test/...), a
lossy JPEG copy of CIFAR-10: numbers from it compare implementations run on it, not published ones.
Every run writes its own folder under OUT/runs and the whole study is resumable: a finished run is
read back, not redone. The table goes to OUT/RESULTS.md and OUT/results.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from diffnas import genotype as genotype_lib
from diffnas.search import search
from diffnas.config import search_config
from diffnas.config import train_config
from diffnas.train import train

PRESETS = ("darts-1st", "darts", "pc-darts", "dnas")


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="imagefolder")
    p.add_argument("--data-dir", default=None, help="the dataset's files (none for synthetic or digits)")
    p.add_argument("--image-size", type=int, default=0,
                   help="decode image files as N x N (shorter side N, centre crop); 0: their own size")
    p.add_argument("--out", default="docs/study")
    p.add_argument("--device", default="auto")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--presets", nargs="+", default=list(PRESETS))
    p.add_argument("--search-epochs", type=int, default=50, help="search budget (paper: 50)")
    p.add_argument("--search-max-steps", type=int, default=0, help="cap steps per search epoch (0: full)")
    p.add_argument("--train-epochs", type=int, default=30, help="common reduced training budget")
    p.add_argument("--train-layers", type=int, default=8)
    p.add_argument("--train-channels", type=int, default=16)
    p.add_argument("--train-max-steps", type=int, default=0, help="cap steps per training epoch (0: full)")
    p.add_argument("--search-batch-size", type=int, default=None, help="default: the preset's")
    p.add_argument("--train-batch-size", type=int, default=96)
    p.add_argument("--random", type=int, default=5, help="random genotypes in the baseline")
    return p.parse_args(argv)


def data_flags(args: argparse.Namespace) -> str:
    """--dataset, --data-dir where given, and --image-size where set, as the commands recorded type them."""
    return (f" --dataset {args.dataset}" + (f" --data-dir {args.data_dir}" if args.data_dir else "")
            + (f" --image-size {args.image_size}" if args.image_size else ""))


def run_search(args: argparse.Namespace, preset: str, seed: int, root: Path) -> dict:
    run_dir = root / f"search-{preset}-s{seed}"
    done = run_dir / "study.json"
    if done.is_file():
        return json.loads(done.read_text())
    overrides = dict(dataset=args.dataset, data_dir=args.data_dir, image_size=args.image_size,
                     epochs=args.search_epochs, seed=seed, device=args.device, max_steps=args.search_max_steps)
    if args.search_batch_size:
        overrides["batch_size"] = args.search_batch_size
    if preset == "pc-darts" and args.search_epochs <= 15:
        overrides["warmup_epochs"] = args.search_epochs // 3
    resume = run_dir if (run_dir / "checkpoint.pt").is_file() else None
    result = search(search_config(preset, **overrides, run_dir=str(run_dir)), resume=resume)
    record = {"preset": preset, "seed": seed, "run_dir": str(run_dir), "search_minutes": result.seconds / 60,
              "genotype": str(run_dir / "genotype.json"),
              "command": f"diffnas search --preset {preset} --seed {seed}{data_flags(args)} --epochs "
                         f"{args.search_epochs} --run-dir {run_dir}"}
    done.write_text(json.dumps(record, indent=1))
    return record


def run_train(args: argparse.Namespace, name: str, genotype_spec: str, root: Path) -> dict:
    run_dir = root / f"train-{name}"
    result_file = run_dir / "result.json"
    if not result_file.is_file():
        cfg = train_config("cifar", dataset=args.dataset, data_dir=args.data_dir, image_size=args.image_size,
                           epochs=args.train_epochs, layers=args.train_layers, channels=args.train_channels,
                           device=args.device,
                           genotype=genotype_spec, run_dir=str(run_dir), max_steps=args.train_max_steps,
                           batch_size=args.train_batch_size)
        resume = run_dir if (run_dir / "checkpoint.pt").is_file() else None
        train(cfg, genotype_lib.load(genotype_spec), resume=resume)
    r = json.loads(result_file.read_text())
    r.update(name=name, genotype_spec=genotype_spec, run_dir=str(run_dir),
             command=f"diffnas train --genotype {genotype_spec}{data_flags(args)} --epochs {args.train_epochs} "
                     f"--layers {args.train_layers} --channels {args.train_channels} --run-dir {run_dir}")
    return r


def table(rows: list[dict], searches: list[dict]) -> str:
    by_method: dict[str, list[dict]] = {}
    for r in rows:
        by_method.setdefault(r["method"], []).append(r)
    lines = ["| method | runs | test error % (mean ± std) | params M | search min | train min |",
             "| --- | --- | --- | --- | --- | --- |"]
    for method, rs in by_method.items():
        errs = [100 * (1 - r["test_acc"]) for r in rs]
        spread = f" ± {statistics.stdev(errs):.2f}" if len(errs) > 1 else ""
        s_min = [s["search_minutes"] for s in searches if s["preset"] == method]
        search_cell = f"{statistics.mean(s_min):.1f}" if s_min else "-"
        params = statistics.mean(r["params"] for r in rs) / 1e6
        train_min = statistics.mean(r["seconds"] for r in rs) / 60
        lines.append(f"| {method} | {len(rs)} | {statistics.mean(errs):.2f}{spread} | {params:.2f} | "
                     f"{search_cell} | {train_min:.1f} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = parse(argv)
    out = Path(args.out)
    root = out / "runs"
    root.mkdir(parents=True, exist_ok=True)
    start = time.time()
    searches = [run_search(args, p, s, root) for p in args.presets for s in args.seeds]
    rows = []
    for s in searches:
        rows.append({**run_train(args, f"{s['preset']}-s{s['seed']}", s["genotype"], root), "method": s["preset"]})
    rows.append({**run_train(args, "DARTS_V2", "DARTS_V2", root), "method": "DARTS_V2 (published)"})
    for k in range(args.random):
        rows.append({**run_train(args, f"random-{k}", f"random:{k}", root), "method": "random"})
    (out / "results.json").write_text(json.dumps({"searches": searches, "trainings": rows,
                                                  "args": vars(args)}, indent=1, default=str))
    text = [f"# Study results ({args.dataset}" + (f": {args.data_dir})" if args.data_dir else ")"), "",
            "Lossy JPEG copy of CIFAR-10 where the data is ../shared/data's: compare within this table only.", "",
            f"Search: {args.search_epochs} epochs; training: {args.train_epochs} epochs, {args.train_layers} "
            f"cells, {args.train_channels} channels, for every genotype alike.", "", table(rows, searches), "",
            "## Commands", ""] + [f"- `{r['command']}`" for r in searches + rows]
    (out / "RESULTS.md").write_text("\n".join(text) + "\n")
    print(f"study done in {(time.time() - start) / 60:.1f} min: {out / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
