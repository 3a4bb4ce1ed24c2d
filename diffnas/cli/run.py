"""`diffnas run`: search, discretise, train the discovered network and evaluate it, in one folder."""

from __future__ import annotations

import argparse
import sys

from .. import config as config_lib
from .. import distributed
from .options import search_config_from_args
from .search import FIELDS, add_search_flags, dry_run_overrides, embedded_quick_overrides

TRAIN_FLAGS = {"train_epochs": "epochs", "train_layers": "layers", "train_channels": "channels",
               "train_batch_size": "batch_size", "train_max_steps": "max_steps", "train_seed": "seed",
               "train_lr": "lr", "auxiliary": "auxiliary", "drop_path": "drop_path", "cutout": "cutout"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="search + train + evaluate in one run folder", description=__doc__)
    add_search_flags(p)
    a = p.add_argument
    a("--train-epochs", dest="train_epochs", type=int, help="training epochs (default 600)")
    a("--train-layers", dest="train_layers", type=int, help="cells of the trained network (default 20)")
    a("--train-channels", dest="train_channels", type=int, help="initial channels (default 36)")
    a("--train-batch-size", dest="train_batch_size", type=int, help="default 96")
    a("--train-lr", dest="train_lr", type=float)
    a("--train-max-steps", dest="train_max_steps", type=int)
    a("--train-seed", dest="train_seed", type=int)
    a("--auxiliary", type=float, help="auxiliary loss weight in training (default 0.4)")
    a("--drop-path", dest="drop_path", type=float, help="final drop-path probability (default 0.2)")
    a("--cutout", type=int, help="cutout size in training (default 16)")
    a("--resume", metavar="RUN_DIR", help="continue an interrupted pipeline")
    a("--dry-run", action="store_true", help="tiny synthetic pipeline in seconds")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..config import TrainConfig
    from ..pipeline import run_pipeline, summary_table

    if args.dry_run:
        dry_run_overrides(args)
        for name, value in dict(train_epochs=1, train_layers=3, train_channels=4, train_max_steps=2,
                                train_batch_size=8).items():
            if getattr(args, name) is None:
                setattr(args, name, value)
    if args.dataset is None and not args.resume and not args.config:
        # the embedded digits: train the found cell at a matching quick size too
        for name, value in dict(train_epochs=20, train_layers=8, train_channels=16).items():
            if getattr(args, name) is None:
                setattr(args, name, value)
    note = embedded_quick_overrides(args)
    run_dir = args.resume or args.run_dir
    args.run_dir = None
    search_cfg = search_config_from_args(args, FIELDS)
    if note:
        print(note, file=sys.stderr)
    if args.resume:
        saved = config_lib.read_file(f"{args.resume}/search/config.json")
        saved.pop("command", None)
        search_cfg = config_lib.from_dict(type(search_cfg), saved)
    train_values = {field: getattr(args, flag) for flag, field in TRAIN_FLAGS.items() if getattr(args, flag) is not None}
    train_cfg = config_lib.from_dict(TrainConfig, {"device": search_cfg.device, "plots": search_cfg.plots,
                                                   "precision": search_cfg.precision, **train_values})
    result = run_pipeline(search_cfg, train_cfg, run_dir)
    if result.exit_code or not distributed.is_main():   # under torchrun rank 0 reports
        return result.exit_code
    print(f"genotype: {result.search.genotype}")
    print(summary_table(result.summary))
    print(f"run folder: {result.run_dir}")
    return 0
