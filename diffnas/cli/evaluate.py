"""`diffnas evaluate`: test accuracy, parameters and multiply-adds of a trained network."""

from __future__ import annotations

import argparse

from .options import json_text


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a trained network", description=__doc__)
    p.add_argument("checkpoint", metavar="CHECKPOINT_OR_RUN_DIR",
                   help="checkpoint.pt, the training run folder, or a `diffnas run` folder (its train/)")
    p.add_argument("--data-dir", dest="data_dir", help="folder with the dataset files (default: the run's)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluate import evaluate

    r = evaluate(args.checkpoint, args.data_dir, args.device)
    if args.json:
        print(json_text(r))
        return 0
    print(f"{r['checkpoint']} (epoch {r['epoch']}, {r['dataset']}, {r['setting']} setting)")
    print(f"test accuracy {100 * r['test_acc']:.2f}%  error {100 * r['test_error']:.2f}%  loss {r['test_loss']:.4f}"
          f"  ({r['test_images']} test images)")
    print(f"params {r['params_m']:.6f}M (+{r['aux_params'] / 1e6:.6f}M auxiliary head)  "
          f"multiply-adds {r['madds']:,} ({r['madds'] / 1e6:.1f}M)")
    return 0
