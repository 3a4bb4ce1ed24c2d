"""`diffnas train`: train a genotype from scratch and test it (DARTS evaluation protocol).

Values come from, lowest first: the TrainConfig defaults, the setting's defaults (imagenet: 14
cells, 48 channels, label smoothing 0.1, ...), --config FILE, then the flags typed.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import config as config_lib
from .. import distributed
from ..errors import ConfigError
from ..notices import say
from ..runlog import coverage
from .options import (DRY_RUN, add_run_flags, default_help, elapsed, fill_dry_run, flag_values, read_config,
                      refuse_changes_on_resume, refuse_run_dir_on_resume, run_genotype, start_notices)
from .search import DATA_DIR_HELP, IMAGE_SIZE_HELP

if TYPE_CHECKING:   # the genotype module imports torch; the CLI loads it only when the command runs
    from ..config import TrainConfig
    from ..genotype import AnyGenotype

FIELDS = ("setting", "genotype", "dataset", "data_dir", "layers", "channels", "epochs", "batch_size", "lr",
          "lr_min", "momentum", "wd", "grad_clip", "cutout", "auxiliary", "drop_path", "drop_path_per",
          "label_smoothing",
          "seed", "device", "run_dir", "max_steps", "precision", "compile", "plots", "deterministic",
          "nan_rollback", "bn_groups", "lr_schedule", "lr_gamma", "random_resized_crop", "color_jitter",
          "hue_jitter", "image_size", "memory_format", "flip")

# with no dataset named (the embedded digits): a network and epochs to match, as the quick search's
QUICK = dict(epochs=20, layers=8, channels=16)


def setting_default(field: str) -> str:
    """A flag's help: TrainConfig's default and the settings' own values (`default_help`)."""
    return default_help(field, config_lib.TrainConfig, config_lib.SETTING_DEFAULTS)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a genotype from scratch", description=__doc__)
    a = p.add_argument
    a("--config", help="JSON, TOML or YAML file of config values (flags override it)")
    a("--genotype", help="published name (DARTS_V2, PDARTS, ...), genotype.json, a run folder (a "
                         "`diffnas run` folder: its search's genotype), Genotype(...) notation, or random:SEED "
                         "(a random cell pair, the DARTS paper's random baseline) (default DARTS_V2)")
    a("--setting", help="cifar | imagenet | tiny-imagenet (default cifar)")
    a("--dataset", help="digits | cifar10 | cifar100 | mnist | fashion-mnist | svhn | tiny-imagenet | imagefolder | "
                        "synthetic (default: digits, embedded; --setting imagenet: imagefolder, ImageNet's "
                        "train/ and test/ class folders in --data-dir; --setting tiny-imagenet: tiny-imagenet)")
    a("--data-dir", dest="data_dir", help=DATA_DIR_HELP)
    a("--image-size", dest="image_size", type=int, metavar="N", help=IMAGE_SIZE_HELP)
    a("--epochs", type=int, help=f"default 600 (imagenet 250; {QUICK['epochs']} when no dataset is named)")
    a("--batch-size", dest="batch_size", type=int, help="global batch, split over the torchrun processes "
                                                         "(default 96, imagenet 128)")
    a("--bn-groups", dest="bn_groups", type=int, metavar="G",
      help="batch-norm statistics over batch_size/G images (0, default: 1, or the number of processes "
           "where they cannot share statistics: CPU)")
    a("--layers", type=int, help=f"cells (default 20, imagenet 14; {QUICK['layers']} when no dataset is named)")
    a("--channels", type=int,
      help=f"initial channels (default 36, imagenet 48; {QUICK['channels']} when no dataset is named)")
    a("--lr", type=float, help=f"initial SGD learning rate ({setting_default('lr')})")
    a("--lr-schedule", dest="lr_schedule", help="cosine (to --lr-min; default) | step (lr x gamma per epoch; imagenet)")
    a("--lr-gamma", dest="lr_gamma", type=float, help="step schedule: decay per epoch (default 0.97)")
    a("--lr-min", dest="lr_min", type=float,
      help=f"cosine schedule: the lr it anneals to (default {config_lib.TrainConfig.lr_min:g})")
    a("--momentum", type=float, help=f"SGD momentum (default {config_lib.TrainConfig.momentum:g})")
    a("--wd", type=float, help=f"weight decay ({setting_default('wd')})")
    a("--grad-clip", dest="grad_clip", type=float, help=f"max gradient norm (0: off; {setting_default('grad_clip')})")
    a("--cutout", type=int, nargs="?", const=16, help="cutout square side in pixels of a 32x32 image "
                                                     f"(bare --cutout: 16; 0: off; {setting_default('cutout')})")
    a("--auxiliary", type=float, metavar="W",
      help=f"auxiliary loss weight (0: no auxiliary head; {setting_default('auxiliary')})")
    a("--drop-path", dest="drop_path", type=float, metavar="P",
      help=f"final drop-path probability ({setting_default('drop_path')}; PC-DARTS trained its cells with 0.3, "
           "as `diffnas run --preset pc-darts` does)")
    a("--drop-path-per", dest="drop_path_per", metavar="UNIT",
      help="op (default: each non-identity op's output, DARTS) | node (each node's sum, FairDARTS's cells)")
    a("--random-resized-crop", dest="random_resized_crop", type=int, metavar="SIDE",
      help="random-resized crop to SIDE x SIDE, tested with resize + centre crop (0: off; imagenet 224)")
    a("--color-jitter", dest="color_jitter", type=float, metavar="J",
      help="brightness, contrast, saturation jitter in [1-J, 1+J] (default 0; imagenet 0.4)")
    a("--hue-jitter", dest="hue_jitter", type=float, metavar="H", help="hue shift in [-H, H] turns (imagenet 0.2)")
    a("--label-smoothing", dest="label_smoothing", type=float, help="default 0 (imagenet 0.1)")
    a("--run-dir", dest="run_dir", help="folder for the run's files (default runs/train-DATE-TIME)")
    a("--resume", metavar="RUN_DIR", help="continue an interrupted run exactly")
    a("--max-steps", dest="max_steps", type=int,
      help="cap steps per epoch and test batches, the latter a seeded sample of the test split (quick runs; "
           "0: no cap)")
    add_run_flags(p, seed=config_lib.TrainConfig.seed, searches=False)
    a("--dry-run", action="store_true", help="tiny synthetic training in seconds (checks the set-up)")
    p.set_defaults(func=run)


def search_of(spec: str) -> dict[str, Any] | None:
    """The config.json of the search a genotype spec comes from (its run folder, or its genotype.json
    inside one); None for a name, a notation or any other file."""
    from ..runfolder import run_config

    try:
        path = Path(spec.strip())
        folder = path.parent if path.name == "genotype.json" else path
        saved = run_config(folder) if folder.is_dir() else None
    except (OSError, ValueError):   # not a path (notation, a name)
        return None
    return saved if saved and saved.get("command") == "search" else None


def fair_darts_cell(spec: str, searched: dict[str, Any] | None) -> bool:
    """A published FairDARTS cell (FAIR_DARTS_*), or the genotype of a sigmoid (FairDARTS) search
    (`searched`: its config.json, `search_of(spec)`)."""
    from ..genotype import published_name

    return (published_name(spec) or "").startswith("FAIR_DARTS_") or (searched or {}).get("arch") == "sigmoid"


def pc_darts_cell(spec: str, searched: dict[str, Any] | None) -> bool:
    """The published PC-DARTS CIFAR cell, or the genotype of a PC-DARTS (partial-channel) search."""
    from ..genotype import published_name

    return published_name(spec) == "PC_DARTS_CIFAR" or (searched or {}).get("arch") == "pc"


def other_data_note(cfg: config_lib.TrainConfig, searched: dict[str, Any] | None) -> str | None:
    """A note when the genotype's search ran on other data than this training will (no --dataset was
    typed): the flags that train on the search's data."""
    if not searched or searched.get("dataset") in (None, cfg.dataset):
        return None
    flags = f"--dataset {searched['dataset']}"
    if searched.get("data_dir"):
        flags += f" --data-dir {searched['data_dir']}"
    if searched.get("image_size"):
        flags += f" --image-size {searched['image_size']}"
    return (f"diffnas: note: the genotype was searched on {searched['dataset']}; this training uses {cfg.dataset} "
            f"(train on the search's data with {flags})")


def quick_values(setting: str, from_file: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    """QUICK's values not given, when the training uses the embedded digits because no dataset was
    named (flag, config file or setting); {} otherwise."""
    from ..config import SETTING_DEFAULTS

    if "dataset" in flags or "dataset" in from_file or "dataset" in SETTING_DEFAULTS.get(setting, {}):
        return {}
    return {k: v for k, v in QUICK.items() if k not in flags and k not in from_file}


def quick_note(quick: dict[str, Any], per_cell: bool = False, given: dict[str, Any] | None = None) -> str | None:
    """What the quick training changed and the flags of the paper's size (not --layers for a per-cell
    genotype, which fixes the depth, nor one `given` as the paper has it)."""
    if not quick:
        return None
    from ..config import TrainConfig

    paper = {"layers": TrainConfig.layers, "channels": TrainConfig.channels, "epochs": TrainConfig.epochs}
    given = given or {}
    flags = " ".join(f"--{k} {v}" for k, v in paper.items()
                     if (k != "layers" or not per_cell) and (k in quick or given.get(k) != v))
    return ("diffnas: embedded digits dataset, quick training (" + ", ".join(f"{k} {v}" for k, v in quick.items())
            + f"); pass {flags} for the paper's size")


def new_run_config(from_file: dict[str, Any], flags: dict[str, Any],
                   typed: dict[str, str] | None = None) -> tuple[TrainConfig, AnyGenotype, list[str]]:
    """A new training's (TrainConfig, the genotype read for it, the notes to print once it starts; a
    warning names a value `typed` as a flag ({field: flag}) by its flag)."""
    from ..config import PC_DARTS_DROP_PATH, train_config
    from ..genotype import CellwiseGenotype, load, network_depth
    from ..train import depth_note

    setting = flags.pop("setting", None) or from_file.pop("setting", None) or "cifar"
    given = {**from_file, **flags}
    # a per-cell genotype (global search) fixes the number of cells; a typed other --layers is refused
    # here, since the library would take a typed default (20) for one left alone
    genotype = load(given.get("genotype", config_lib.TrainConfig.genotype))
    depth = network_depth(genotype, given.get("layers"))
    quick = quick_values(setting, from_file, flags)
    if depth is not None:
        quick.pop("layers", None)   # the genotype's or the typed depth, not the quick one
    cfg = train_config(setting, **{**quick, **given})
    notes = start_notices(cfg, note=quick_note(quick, isinstance(genotype, CellwiseGenotype), given),
                          typed=typed)
    if depth is not None and depth != cfg.layers:
        notes.append(depth_note(depth, cfg.layers))
        cfg = config_lib.from_dict(config_lib.TrainConfig, {"layers": depth}, base=cfg)
    searched = search_of(cfg.genotype)   # read once for the notes below
    if "dataset" not in given:
        notes += [n for n in [other_data_note(cfg, searched)] if n]
    if "drop_path_per" not in given and cfg.drop_path > 0 and fair_darts_cell(cfg.genotype, searched):
        notes.append("diffnas: note: FairDARTS trained its cells with drop-path on each node's sum; "
                     "--drop-path-per node does that (the default, per op, is DARTS's)")
    if ("drop_path" not in given and cfg.setting == "cifar" and cfg.drop_path != PC_DARTS_DROP_PATH
            and pc_darts_cell(cfg.genotype, searched)):
        notes.append(f"diffnas: note: PC-DARTS trained its CIFAR cells with drop-path {PC_DARTS_DROP_PATH:g}; "
                     f"--drop-path {PC_DARTS_DROP_PATH:g} does that (the default, {cfg.drop_path:g}, is DARTS's)")
    return cfg, genotype, notes


def dry_run_overrides(args: argparse.Namespace, from_file: dict[str, Any]) -> list[str]:
    """--dry-run's tiny sizes (those of `diffnas run --dry-run`'s training), for the values not typed (a
    --config file's are replaced, as search's --dry-run does); a per-cell genotype keeps its own depth."""
    from ..genotype import CellwiseGenotype, load

    if args.resume:   # its synthetic data and sizes would be refused as the run's changes
        raise ConfigError("--dry-run starts a new training; it does not go with --resume")
    tiny = dict(DRY_RUN)
    spec = args.genotype or from_file.get("genotype") or config_lib.TrainConfig.genotype
    if isinstance(spec, str) and isinstance(load(run_genotype(spec)), CellwiseGenotype):
        del tiny["layers"]
    replaced = fill_dry_run(args, tiny, from_file)   # over a --config file's values too, as search's --dry-run
    if args.dataset == "synthetic" and (args.setting or from_file.get("setting")) == "imagenet":
        raise ConfigError("--dry-run trains on 16x16 synthetic images, smaller than the imagenet setting's network "
                          "takes (32x32 at least): name the data to check it on with --dataset and --data-dir "
                          "(with --dry-run's --epochs 1 --max-steps 2 --layers 3 --channels 4 --batch-size 8)")
    return replaced


def run(args: argparse.Namespace) -> int:
    from ..train import train

    from_file = read_config(args.config, "train") if args.config else {}   # a train run's config.json works
    replaced = dry_run_overrides(args, from_file) if args.dry_run else []
    flags = flag_values(args, FIELDS)
    for values in (from_file, flags):   # a pipeline folder stands for its search's genotype
        if isinstance(values.get("genotype"), str):
            values["genotype"] = run_genotype(values["genotype"])
    refuse_run_dir_on_resume(args)
    notes: list[str]
    if args.resume:
        # the run's own config is used (the training reads it, with its own genotype.json); only the
        # resumable fields typed here change it
        from ..train import RESUMABLE

        refuse_changes_on_resume(args.resume, {**from_file, **flags}, RESUMABLE, args.field_flags)
        cfg = config_lib.from_dict(config_lib.TrainConfig, {**from_file, **flags})
        genotype, notes, given = None, [], set(from_file) | set(flags)
    else:   # the notes are printed once the training has started: a refused one says only why
        cfg, genotype, notes = new_run_config(from_file, flags, args.typed)
        notes, given = [*replaced, *notes], None
    result = train(cfg, genotype, resume=args.resume, notices=notes,   # the genotype read above, not again
                   given=given, raise_on_stop=False)
    if result.exit_code or not distributed.is_main():   # under torchrun rank 0 reports
        return result.exit_code
    print(f"test accuracy {100 * result.test_acc:.2f}% (error {100 * (1 - result.test_acc):.2f}%), "
          f"test loss {result.test_loss:.4f}{coverage(result.test_images, result.test_images_total, 'test')}")
    print(f"params {result.params / 1e6:.6f}M (+{result.aux_params / 1e6:.6f}M auxiliary head)")
    print(f"run folder: {result.run_dir}  ({elapsed(args)})")
    if result.late_stop:   # the stop came as the last epoch was saved or its figures drawn: the training
        # is complete, but a script's next command (`diffnas train ... && ...`) must not run, as for any stop
        say(f"diffnas: stopped after the training finished (it is complete and saved: {result.run_dir})")
    return result.late_stop
