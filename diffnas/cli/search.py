"""`diffnas search`: run a differentiable architecture search."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from .. import distributed
from ..notices import say
from ..config import PRESETS, SearchConfig
from ..errors import ConfigError
from .options import (DRY_RUN, add_run_flags, default_help, elapsed, fill_dry_run, flag_values, ops_list,
                      read_config, refuse_changes_on_resume, refuse_run_dir_on_resume, search_config_from_args,
                      start_notices)

FIELDS = ("preset", "order", "dataset", "data_dir", "epochs", "batch_size", "layers", "channels", "nodes",
          "seed", "device", "run_dir", "arch", "hessian", "xi", "ops", "partial_channels", "zero_one_weight",
          "threshold", "skip_dropout", "max_skips", "max_steps", "train_portion", "w_lr", "w_lr_min",
          "alpha_lr", "warmup_epochs", "precision", "compile", "plots", "deterministic", "nan_rollback", "bn_groups",
          "image_size", "memory_format", "edges", "flip")

if TYPE_CHECKING:   # the search imports torch; the CLI loads it only when the command runs
    from ..search import SearchResult


# the paper's 8 cells x 16 channels x 50 epochs take hours on a laptop CPU even for 8x8 digits (a
# second-order step is 3 forward/backward passes, ~1 s each for 5 cells x 8 channels on one core), so
# with no dataset named the command runs a quick real search instead (each value still overridable):
# 5 cells, 8 channels, batch 128 (5 steps an epoch), 5 epochs
EMBEDDED_QUICK = dict(layers=5, channels=8, epochs=5, batch_size=128)


def quick_default(default: object, quick: object) -> str:
    """A flag's help: its default, and the value a run with no dataset named takes instead."""
    return f"default {default}; {quick} when no dataset is named"


def preset_default(field: str) -> str:
    """A flag's help: SearchConfig's default and the presets' own values (`default_help`)."""
    return default_help(field, SearchConfig, PRESETS)


DATA_DIR_HELP = "folder with the dataset files (default: ./data; digits and synthetic read none)"
IMAGE_SIZE_HELP = ("imagefolder, tiny-imagenet: decode every image as N x N, its shorter side resized to N "
                   "(bilinear, antialiased) then centre-cropped, for folders of mixed sizes (0, default: "
                   "the files' own size, which must then be one)")


def add_search_flags(p: argparse.ArgumentParser, command: str = "search") -> None:
    """The search's flags, for `diffnas search` and `diffnas run` (`command`: its default run folder)."""
    a = p.add_argument
    a("--config", help="JSON, TOML or YAML file of config values (flags override it)")
    a("--preset", help="darts | darts-1st | pc-darts | fair-darts | global | dnas (default darts)")
    a("--order", help="first | second | one-level (default: the preset's; darts second, the others first)")
    a("--hessian", help="second order Hessian-vector product: fd (finite differences) | exact (autograd)")
    a("--xi", type=float, help="second order: unrolled step size (default: the current weight learning rate)")
    a("--arch", help="parametrisation: softmax | sigmoid | pc | global | dnas (presets set it)")
    a("--dataset", help="digits (embedded, default) | cifar10 | cifar100 | mnist | fashion-mnist | svhn | "
                        "tiny-imagenet | imagefolder | synthetic")
    a("--data-dir", dest="data_dir", help=DATA_DIR_HELP)
    a("--image-size", dest="image_size", type=int, metavar="N", help=IMAGE_SIZE_HELP)
    a("--epochs", type=int, help=f"search epochs ({quick_default(SearchConfig.epochs, EMBEDDED_QUICK['epochs'])})")
    batch = ", ".join([str(SearchConfig.batch_size)] + [f"{name} {values['batch_size']}"
                                                        for name, values in PRESETS.items() if "batch_size" in values])
    a("--batch-size", dest="batch_size", type=int, help="global batch, split over the torchrun processes "
                                                         f"({quick_default(batch, EMBEDDED_QUICK['batch_size'])})")
    a("--bn-groups", dest="bn_groups", type=int, metavar="G",
      help="batch-norm statistics over batch_size/G images (0, default: 1, or the number of processes "
           "where they cannot share statistics: CPU, --hessian exact)")
    a("--layers", type=int,
      help=f"cells in the search network ({quick_default(SearchConfig.layers, EMBEDDED_QUICK['layers'])})")
    a("--channels", type=int,
      help=f"initial channels ({quick_default(SearchConfig.channels, EMBEDDED_QUICK['channels'])})")
    a("--nodes", type=int, help="intermediate nodes per cell (default 4)")
    a("--ops", type=ops_list, help="comma-separated candidate ops")
    a("--partial-channels", dest="partial_channels", type=int,
      help=f"PC-DARTS K: each edge computes 1/K of the channels (1: all; {preset_default('partial_channels')})")
    a("--zero-one-weight", dest="zero_one_weight", type=float,
      help=f"FairDARTS zero-one loss weight ({preset_default('zero_one_weight')})")
    a("--threshold", type=float,
      help=f"FairDARTS discretisation threshold (--arch sigmoid only; {preset_default('threshold')})")
    a("--skip-dropout", dest="skip_dropout", type=float,
      help=f"dropout on skip_connect during search ({preset_default('skip_dropout')})")
    a("--max-skips", dest="max_skips", type=int,
      help="stop early when a normal cell has more skips (0, default: never)")
    a("--train-portion", dest="train_portion", type=float,
      help="share of the training images the weights learn from; alpha learns from the rest, the validation "
           f"split (one-level: unused; {preset_default('train_portion')})")
    a("--w-lr", dest="w_lr", type=float,
      help=f"SGD learning rate of the weights, cosine-annealed to --w-lr-min ({preset_default('w_lr')})")
    a("--w-lr-min", dest="w_lr_min", type=float,
      help=f"the weights' learning rate at the end of the cosine schedule ({preset_default('w_lr_min')})")
    a("--alpha-lr", dest="alpha_lr", type=float,
      help=f"Adam learning rate of the architecture weights ({preset_default('alpha_lr')})")
    a("--warmup-epochs", dest="warmup_epochs", type=int,
      help=f"first epochs step the weights only, alpha fixed ({preset_default('warmup_epochs')})")
    a("--max-steps", dest="max_steps", type=int,
      help=("cap the search's steps per epoch and validation batches (--train-max-steps: the training's)"
            if command == "run" else "cap steps per epoch and validation batches")
      + ", the latter a seeded sample (quick runs; 0: no cap)")
    add_run_flags(p, seed=SearchConfig.seed, what="the search's " if command == "run" else "")
    a("--edges", help="mixed edges: auto (plain on CPU, fused elsewhere) | fused (batched ops, one BN "
                      "per stage) | plain (one call per op); the same function either way")
    a("--run-dir", dest="run_dir", help=f"folder for the run's files (default runs/{command}-DATE-TIME)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search an architecture", description=__doc__)
    add_search_flags(p)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run exactly")
    p.add_argument("--dry-run", action="store_true", help="tiny synthetic search in seconds (checks the set-up)")
    p.set_defaults(func=run)


def embedded_quick_overrides(args: argparse.Namespace, from_file: dict) -> str | None:
    """Apply EMBEDDED_QUICK when the run uses the embedded digits because no dataset was named, by
    flag or in the config file (`from_file`: its search values); a value the file sets wins. Return
    the note to print once the config is known to be valid (an error stays one line)."""
    if args.dataset is not None or "dataset" in from_file or args.resume:
        return None
    applied = {k: v for k, v in EMBEDDED_QUICK.items() if getattr(args, k) is None and k not in from_file}
    # a preset's warm-up (PC-DARTS: 15 of 50 epochs) scaled to the quick search's epochs, as a share of
    # them, the quick ones or typed (`--preset pc-darts --epochs 5` kept 15 and was refused)
    preset = args.preset or from_file.get("preset") or "darts"
    paper = PRESETS.get(preset, {}) if isinstance(preset, str) else {}   # the preset's values over the defaults
    warmup = paper.get("warmup_epochs", 0)
    epochs = applied.get("epochs", args.epochs if args.epochs is not None else from_file.get("epochs"))
    if warmup and args.warmup_epochs is None and "warmup_epochs" not in from_file and \
            isinstance(epochs, int) and not isinstance(epochs, bool) and epochs > 0:
        applied["warmup_epochs"] = round(warmup * epochs / SearchConfig.epochs)
    for k, v in applied.items():
        setattr(args, k, v)
    if not applied:
        return None
    # the paper's values this run does not have yet (one typed as the paper has it is not repeated)
    sizes = {"layers": SearchConfig.layers, "channels": SearchConfig.channels, "epochs": SearchConfig.epochs,
             "batch_size": paper.get("batch_size", SearchConfig.batch_size)}
    if "warmup_epochs" in applied:
        sizes["warmup_epochs"] = warmup
    flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in sizes.items()
                     if k in applied or (from_file.get(k) if getattr(args, k) is None else getattr(args, k)) != v)
    return ("diffnas: embedded digits dataset, quick search (" + ", ".join(f"{k} {v}" for k, v in applied.items())
            + f"); pass {flags} for the paper's size")


def dry_run_overrides(args: argparse.Namespace, from_file: dict[str, Any]) -> list[str]:
    """--dry-run's tiny sizes, for the values not typed (a --config file's replaced, and said: the note
    returned); no warm-up (a preset's, PC-DARTS's 15 epochs, would leave the architecture step of the one
    epoch unchecked)."""
    return fill_dry_run(args, {**DRY_RUN, "warmup_epochs": 0}, from_file)


def run(args: argparse.Namespace) -> int:
    from ..search import search

    if args.dry_run and args.resume:   # its synthetic data and sizes were refused as the run's changes
        raise ConfigError("--dry-run starts a new search; it does not go with --resume")
    from_file = read_config(args.config, "search") if args.config else {}
    replaced = dry_run_overrides(args, from_file) if args.dry_run else []
    note = embedded_quick_overrides(args, from_file)
    cfg = search_config_from_args(args, FIELDS, from_file)
    notices, given = [], None
    refuse_run_dir_on_resume(args)
    if args.resume:   # the run's saved config counts, with the resumable values typed now
        from ..search import RESUMABLE

        given = {**from_file, **flag_values(args, FIELDS)}
        refuse_changes_on_resume(args.resume, given, RESUMABLE, args.field_flags)
    else:   # printed once the search has started: a refused one says only why
        notices = replaced + start_notices(cfg, note=note, typed=args.typed)
    result = search(cfg, resume=args.resume, notices=notices, given=given, raise_on_stop=False)
    if result.interrupted or not distributed.is_main():   # under torchrun rank 0 reports
        return result.exit_code or result.late_stop   # a late stop: the same status on every rank
    print(f"genotype: {result.genotype}")
    if result.metrics:
        print(held_out_line(result))
    print(f"run folder: {result.run_dir}  ({elapsed(args)})")
    if result.late_stop:   # the stop came while the last epoch was saved: the search is complete, but a
        # script's next command (`diffnas search ... && diffnas train ...`) must not run, as for any stop
        say(f"diffnas: stopped after the search finished (it is complete and saved: {result.run_dir})")
    return result.late_stop


def held_out_line(result: SearchResult) -> str:
    """The last epoch's accuracy and loss on the search-validation split (one-level: the test split)."""
    from ..runlog import coverage

    split, acc = result.val_split, result.val_acc
    assert acc is not None   # called for a result with metrics, whose rows hold it
    # a metrics.jsonl whose last rows were damaged (said when resumed): the figures are of an earlier epoch
    done, last = result.history.shape[0] - 1, result.metrics[-1].get("epoch")
    of = (f" (epoch {last}'s, the last row of metrics.jsonl; the search ran {done} epochs)"
          if isinstance(last, int) and last != done else "")
    return (f"{split} accuracy {100 * acc:.2f}%, {split} loss {result.val_loss:.4f}"
            f"{coverage(result.val_images, result.val_images_total, split)}{of}")
