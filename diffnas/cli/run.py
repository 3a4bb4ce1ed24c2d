"""`diffnas run`: search, discretise, train the discovered network and evaluate it, in one folder.

RUN/config.json keeps the whole configuration, written before the search starts: {"command":
"pipeline", "search": {...}, "train": {...}}. --config FILE takes the same layout, so a RUN/config.json
can start a new pipeline: search values at the top level or in a "search" table, training values in a
"train" table (JSON "train": {"epochs": 20}, TOML [train], YAML train:) under `diffnas train`'s config
names (epochs, layers, channels, batch_size, lr, setting, ...); the --train-* flags override them. With
no dataset named (flag or file) the embedded digits are searched and trained at quick sizes; values
the file sets win. --resume RUN continues with the saved configuration: flags may change only what a
resumed search or training may change (device, plots, ...; a stage's epochs while it is unfinished).
A complete pipeline (RUN/summary.json) is reported, not run again, unless --train-epochs asks for more
training: the training then goes on to that total and the summary is written again.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import config as config_lib
from .. import distributed, recovery
from ..config import PC_DARTS_DROP_PATH, TrainConfig
from ..errors import ConfigError
from ..notices import command_line, error_stage, option, say, stage
from .flags import flag_named, resumable_named
from .options import (DRY_RUN, elapsed, fill_dry_run, flag_values, refuse_run_dir_on_resume, search_config_from_args,
                      start_notices)
from .search import FIELDS, add_search_flags, dry_run_overrides, embedded_quick_overrides, quick_default
from .train import QUICK as TRAIN_QUICK_SIZES

if TYPE_CHECKING:   # the pipeline imports torch; the CLI loads it only when the command runs
    from ..pipeline import PipelineResult

TRAIN_FLAGS = {"train_epochs": "epochs", "train_layers": "layers", "train_channels": "channels",
               "train_batch_size": "batch_size", "train_max_steps": "max_steps", "train_seed": "seed",
               "train_lr": "lr", "auxiliary": "auxiliary", "drop_path": "drop_path", "drop_path_per": "drop_path_per",
               "cutout": "cutout"}
# with no dataset named (the embedded digits): train the found cell at the quick size of `diffnas train`
TRAIN_QUICK = {f"train_{k}": v for k, v in TRAIN_QUICK_SIZES.items()}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="search + train + evaluate in one run folder", description=__doc__)
    add_search_flags(p, command="run")
    a = p.add_argument
    q = {name: quick_default(getattr(TrainConfig, TRAIN_FLAGS[name]), value) for name, value in TRAIN_QUICK.items()}
    a("--train-epochs", dest="train_epochs", type=int, help=f"training epochs ({q['train_epochs']})")
    a("--train-layers", dest="train_layers", type=int, help=f"cells of the trained network ({q['train_layers']})")
    a("--train-channels", dest="train_channels", type=int, help=f"initial channels ({q['train_channels']})")
    a("--train-batch-size", dest="train_batch_size", type=int, help=f"default {TrainConfig.batch_size}")
    a("--train-lr", dest="train_lr", type=float,
      help=f"initial SGD learning rate of the training (default {TrainConfig.lr:g})")
    a("--train-max-steps", dest="train_max_steps", type=int,
      help="cap the training's steps per epoch and test batches (quick runs; 0: no cap)")
    a("--train-seed", dest="train_seed", type=int,
      help=f"the training's seed (default {TrainConfig.seed}; --seed is the search's)")
    a("--auxiliary", type=float, help="auxiliary loss weight in training (default 0.4)")
    a("--drop-path", dest="drop_path", type=float,
      help=f"final drop-path probability (default {TrainConfig.drop_path:g}; {PC_DARTS_DROP_PATH:g} after a "
           f"pc-darts search, as PC-DARTS trained its cells)")
    a("--drop-path-per", dest="drop_path_per", metavar="UNIT",
      help="op (each non-identity op's output, DARTS) | node (each node's sum, FairDARTS; the default after a "
           "sigmoid search)")
    a("--cutout", type=int, nargs="?", const=16, help="cutout square side in training, in pixels of a 32x32 image "
                                                     "(default and bare --cutout: 16; 0: off), as train's")
    a("--resume", metavar="RUN_DIR", help="continue an interrupted pipeline with its saved configuration "
                                         "(a complete one is only reported); until its training has started, "
                                         "--train-* values may change")
    a("--dry-run", action="store_true", help="tiny synthetic pipeline in seconds")
    for action in p._actions:   # the search's --config, with the pipeline's layout
        if action.dest == "config":
            action.help = ("JSON, TOML or YAML file: search values at the top level or in a \"search\" table, "
                           "training values in a \"train\" table (a pipeline's config.json works); flags "
                           "override it")
    p.set_defaults(func=run)


def train_flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """The training's config fields given by --train-* (and --auxiliary, --drop-path, --cutout), after
    the shared flags typed (--device, --no-plots, --precision, ...: meant for the training as well), so
    that both override a config file's training table (a pipeline's config.json holds every field)."""
    from ..pipeline import SHARED

    typed = flag_values(args, FIELDS)
    shared = {k: typed[k] for k in SHARED if k in typed}
    return {**shared, **{field: getattr(args, flag) for flag, field in TRAIN_FLAGS.items()
                         if getattr(args, flag) is not None}}


def run(args: argparse.Namespace) -> int:
    from ..pipeline import DERIVED_TRAIN, SHARED, TRAIN_VALUES

    # the training's messages name the flags that set its values here: --train-epochs, --device, and
    # the search's data flags for the data it trains on
    same = [*SHARED, *(k for k in DERIVED_TRAIN if k != "genotype")]
    flags = {**{k: "--" + k.replace("_", "-") for k in same}, **{f: "--" + k.replace("_", "-")
                                                                   for k, f in TRAIN_FLAGS.items()}}
    # the training flags typed, before --dry-run and the quick sizes fill in their own
    given = {field: flags[field] for flag, field in TRAIN_FLAGS.items() if getattr(args, flag) is not None}
    args.train_typed = {**{k: v for k, v in args.typed.items() if k in same}, **given}   # its warnings' names
    with command_line({"train": flags}):
        try:
            return _run(args)
        except ConfigError as e:   # a bad training value typed as a flag: named by it (--train-lr)
            message = flag_named(str(e), given, prefix=f"{TRAIN_VALUES}: ")
            if error_stage(e) == "train":   # the training's own field, not the search's flag of that name
                named = flag_named(message, given)
                message = named if named != message else re.sub(r"^(\w+): ", r"train.\1: ", message)
            else:   # a resume's refusal of a typed --train-* value ("train.layers: 4 given, ...")
                message = flag_named(message, given, prefix="train.")
            e.args = (message,)   # the same error, renamed: --debug still shows where it was raised
            raise


def _run(args: argparse.Namespace) -> int:
    from ..pipeline import read_config_file, refuse_existing, run_pipeline, stage_train_config

    search_file, train_file = read_config_file(args.config) if args.config else ({}, {})
    typed_layers = args.train_layers if args.train_layers is not None else train_file.get("layers")
    refuse_run_dir_on_resume(args)
    if args.resume:
        if args.dry_run:
            raise ConfigError("--dry-run starts a new pipeline; it does not go with --resume")
        return report(resume(args, search_file, train_file), args)
    replaced = []
    if args.dry_run:
        replaced = dry_run_overrides(args, search_file) + fill_dry_run(
            args, {k: v for k, v in DRY_RUN.items() if k != "dataset"}, train_file, prefix="train_")
    train_quick = {}   # the training's quick sizes applied, said beside the search's
    if args.dataset is None and "dataset" not in search_file:
        for name, value in TRAIN_QUICK.items():
            if getattr(args, name) is None and TRAIN_FLAGS[name] not in train_file:
                setattr(args, name, value)
                train_quick[name] = value
    note = embedded_quick_overrides(args, search_file)
    # the pipeline's folder: --run-dir, else a hand-written file's run_dir (a run folder's config.json has none)
    file_run_dir = search_file.pop("run_dir", None)
    run_dir = args.run_dir or file_run_dir
    args.run_dir = None
    search_cfg = search_config_from_args(args, FIELDS, search_file)
    cellwise_layers(search_cfg, typed_layers, args)
    train_cfg = stage_train_config(search_cfg, {**train_file, **train_flag_values(args)})
    if run_dir:
        refuse_existing(run_dir)   # before torch.distributed starts
    # the note and warnings are printed once the search has started: a refused run says only why
    notices = replaced + start_notices(search_cfg, note=note, typed=args.typed)
    if note and (line := quick_training_note(train_quick, args)):
        notices.append(line)
    with stage("train"):   # the training's lines name this command's flags for it
        notices += [line for line in start_notices(train_cfg, typed=args.train_typed) if line not in notices]
    return report(run_pipeline(search_cfg, train_cfg, run_dir, notices=notices, raise_on_stop=False), args)


def quick_training_note(applied: dict[str, int], args: argparse.Namespace) -> str:
    """The line beside the quick search's that names the training's quick sizes (`applied`: TRAIN_QUICK's
    values set in `args`) and the flags of the paper's; a size the search has set since (a per-cell
    genotype's depth: `cellwise_layers`) is neither. '' when none is left."""
    kept = {k: v for k, v in applied.items() if getattr(args, k) == v}
    if not kept:
        return ""
    paper = " ".join(f"--{k.replace('_', '-')} {getattr(TrainConfig, TRAIN_FLAGS[k])}" for k in kept)
    return (f"diffnas: and a quick training ({', '.join(f'{k} {v}' for k, v in kept.items())}); pass {paper} for "
            f"the paper's size")


def cellwise_layers(search_cfg: config_lib.SearchConfig, typed: object, args: argparse.Namespace) -> None:
    """A search that gives every cell its own architecture (global, dnas) fixes the trained network's
    depth at its own: args.train_layers is set to it, and a different number typed is refused now,
    not after the search."""
    from ..arch import ARCHS

    if not ARCHS[search_cfg.arch].cellwise:
        return
    if typed is not None and typed != search_cfg.layers:
        raise ConfigError(f"train.layers: {typed} given, but the {search_cfg.arch} search gives each of its "
                          f"{search_cfg.layers} cells its own architecture, so the trained network has "
                          f"{search_cfg.layers} cells: leave --train-layers out, or search with --layers {typed}")
    args.train_layers = search_cfg.layers


def resume(args: argparse.Namespace, search_file: dict[str, Any], train_file: dict[str, Any]) -> PipelineResult:
    """Continue the pipeline in args.resume with its saved configuration and the resumable changes
    typed now (flags or --config); any other change is a one-line ConfigError."""
    from ..config import SearchConfig
    from ..pipeline import DERIVED_TRAIN, run_pipeline, saved_config, stage_train_config
    from ..search import RESUMABLE as SEARCH_RESUMABLE
    from ..train import RESUMABLE as TRAIN_RESUMABLE

    run_dir = Path(args.resume)
    saved_search, saved_train = saved_config(run_dir)
    flags = flag_values(args, FIELDS)
    flags.pop("run_dir", None)   # the pipeline's folder is args.resume
    search_given = {k: v for k, v in {**search_file, **flags}.items() if k != "run_dir"}
    # a shared flag typed now (--device, --no-plots, ...) is meant for the training as well
    train_given = {**train_file, **train_flag_values(args)}
    where = f"the pipeline in {run_dir}"
    # what no stage's resume can take (other search epochs once the training started, another
    # setting, fewer epochs than trained) is refused by the pipeline's (`pipeline.check_resume`)
    # the run folders are the pipeline's: not among what a resume may change
    search_resumable = [k for k in SEARCH_RESUMABLE if k != "run_dir"]
    # the training's values may all change until it starts: said too (only the search's were listed)
    untrained = saved_train is not None and not (run_dir / "train").exists()
    recovery.refuse_changes(saved_search, search_given, search_resumable, where,
                              defaults=config_lib.to_dict(SearchConfig()),
                              names=resumable_named(search_resumable, args.field_flags),
                              hint=("; and, until the training starts, the training's values: --train-epochs, "
                                    "--train-layers, --train-batch-size, ..., not its setting") if untrained else "")
    notices: list[str] = []
    if untrained and saved_train is not None:   # (the same test, for the type checker)
        # the training has not started: its values are the pipeline's plan still, and may change (a
        # --train-batch-size too large for the data is refused before the search, and only then fixable);
        # (not its setting, whose recipe the saved values already hold: pipeline.check_resume)
        with stage("train"):   # named as typed: --train-batch-size 32
            changed = [option(k, v) + ("" if isinstance(v, bool) else f", was {saved_train[k]}")
                       for k, v in train_given.items()
                       if k not in DERIVED_TRAIN and k in saved_train and saved_train[k] != v]
        if changed:   # said once the search goes on: a value the data refuses first says only why
            notices.append(f"diffnas: the training has not started; the values typed now replace the saved ones "
                           f"({'; '.join(changed)})")
    elif saved_train is not None:
        # a training from before drop_path_per existed trained per op, whatever its search was
        train_resumable = [k for k in TRAIN_RESUMABLE if k not in DERIVED_TRAIN]
        recovery.refuse_changes(saved_train, train_given, train_resumable,
                                  where, defaults={**config_lib.to_dict(TrainConfig()), "drop_path_per": "op"},
                                  prefix="train.", names=train_flags_named(train_resumable, args.field_flags))
    search_cfg = config_lib.from_dict(SearchConfig, {**saved_search, **search_given})
    # a folder from before pipelines saved their training values: the defaults and the values typed now;
    # one from before drop_path_per existed trained per op (not the sigmoid search's per-node default)
    before_per_node = {"drop_path_per": "op"} if saved_train is not None else {}
    train_cfg = stage_train_config(search_cfg, {**before_per_node, **(saved_train or {}), **train_given})
    # notices: the values that change nothing were said when the pipeline started
    return run_pipeline(search_cfg, train_cfg, run_dir, resume=True,
                        notices=notices if distributed.is_main() else [], raise_on_stop=False)


def train_flags_named(fields: list[str], flags: dict[str, str]) -> dict[str, str]:
    """How a resume's refusal lists the training's fields that may change: by the flag that sets each
    for the training here (--train-epochs; a shared one's own, --no-plots), else as the [train] table's
    key ("train.bn_groups (--config file)")."""
    from ..pipeline import SHARED

    by_field = {field: flags[flag] for flag, field in TRAIN_FLAGS.items() if flag in flags}
    by_field.update({k: flags[k] for k in SHARED if k in flags})
    return resumable_named(fields, by_field, table="train.")


def report(result: PipelineResult, args: argparse.Namespace) -> int:
    from ..pipeline import summary_table

    if result.exit_code or not distributed.is_main():   # under torchrun rank 0 reports
        return result.exit_code
    if result.complete_before:
        print(f"diffnas: {result.run_dir} is complete (summary.json); nothing to resume", file=sys.stderr)
    print(f"genotype: {result.genotype}")
    print(summary_table(result.summary))
    print(f"run folder: {result.run_dir}  ({elapsed(args)})")
    if result.late_stop:   # as `diffnas train`'s: complete, but a script's next command must not run
        say(f"diffnas: stopped after the training finished (the pipeline is complete and saved: {result.run_dir})")
    return result.late_stop
