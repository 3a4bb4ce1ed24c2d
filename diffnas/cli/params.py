"""`diffnas params`: parameter and multiply-add counts, without training.

With --genotype: the evaluation network of a setting (weights without the auxiliary head,
aux_weights, multiply-adds of one image at the setting's size: cifar 3x32x32, imagenet 3x224x224,
tiny-imagenet 3x64x64). A training run folder, or a pipeline folder whose training has started, counts
the network that training builds: its setting, cells, channels, classes and image size (the flags
override them). Without: the search network of a preset (supernet weights and architecture
parameters); classes and input channels come from the dataset, or from --classes / --in-channels.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Optional

from .. import config_file
from .options import flag_values, json_text, positive, read_config, search_config_from_args
from .search import DATA_DIR_HELP


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("params", help="count parameters and multiply-adds", description=__doc__)
    a = p.add_argument
    a("--genotype", help="count the evaluation network of this genotype (name, file or notation)")
    a("--setting", help="evaluation network: cifar | imagenet | tiny-imagenet (default cifar, or a training run's)")
    a("--preset", help="search network: darts | darts-1st | pc-darts | fair-darts | global | dnas (default darts)")
    a("--config", help="search network: config file (flags override it)")
    a("--dataset", help="search network: where classes and input channels come from (default digits)")
    a("--data-dir", dest="data_dir", help="search network: " + DATA_DIR_HELP)
    a("--image-size", dest="image_size", type=int, help="search network: image folders of mixed sizes, as in search")
    a("--layers", type=int, help="cells (default: the setting's or preset's)")
    a("--channels", type=int, help="initial channels (default: the setting's or preset's)")
    a("--nodes", type=int, help="search network: intermediate nodes per cell")
    a("--classes", type=positive, help="classifier outputs (default: the setting's or dataset's)")
    a("--in-channels", dest="in_channels", type=positive, help="image channels (default 3, search: the dataset's)")
    a("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def training_run(spec: str) -> Optional[Path]:
    """The training run folder --genotype names: a train run folder, or a pipeline folder's train/
    once its training has started; None for anything else (a name, a file, a search run folder)."""
    from ..runfolder import run_command

    return next((f for f in (Path(spec), Path(spec) / "train") if run_command(f) == "train"), None)


def trained_shape(run: Path, saved: dict[str, Any]) -> tuple[int, list[int]]:
    """(classes, input shape) of a training run: from its checkpoint, else from its dataset's files."""
    from ..checkpoint import load as load_checkpoint

    if (run / "checkpoint.pt").is_file():
        state = load_checkpoint(run / "checkpoint.pt", mapped=True)
        if "classes" in state and "input_shape" in state:
            return int(state["classes"]), [int(n) for n in state["input_shape"]]
    from ..data import load_dataset

    ds = load_dataset(saved["dataset"], saved.get("data_dir"), image_size=saved.get("image_size", 0))
    return ds.classes, list(ds.shape)


def evaluation_counts(args: argparse.Namespace) -> dict[str, Any]:
    from ..counting import count_madds, count_params
    from ..genotype import load, network_depth
    from ..network import SETTINGS, build_network
    from ..config import train_config

    run = training_run(args.genotype)
    saved = config_file.read_file(run / "config.json") if run is not None else {}
    if args.setting is not None and args.setting != saved.get("setting", args.setting):
        run, saved = None, {}   # another setting: its network, sizes and image shape, with the run's genotype
    setting = args.setting or saved.get("setting", "cifar")
    sizes: dict[str, Any] = {**{k: saved[k] for k in ("layers", "channels") if k in saved},
                             **flag_values(args, ("layers", "channels"))}
    genotype = load(args.genotype)
    depth = network_depth(genotype, sizes.get("layers"))   # a per-cell genotype fixes the number of cells
    if depth is not None:
        sizes["layers"] = depth
    cfg = train_config(setting, **sizes)
    classes, shape = trained_shape(run, saved) if run is not None else (SETTINGS[setting].classes, None)
    if shape is None:
        size = SETTINGS[setting].input_size
        shape = [3, size, size]
    classes = args.classes if args.classes is not None else classes
    shape[0] = args.in_channels if args.in_channels is not None else shape[0]
    model = build_network(genotype, setting, cfg.channels, cfg.layers, classes, shape[0], auxiliary=True)
    weights = count_params(model)
    return {"network": "evaluation", "setting": setting, "genotype": str(genotype), "layers": cfg.layers,
            "channels": cfg.channels, "classes": classes, "input_shape": shape,
            "weights": weights, "aux_weights": count_params(model, exclude_aux=False) - weights,
            "madds": count_madds(model, tuple(shape)),
            **({"training_run": str(run)} if run is not None else {})}


def search_counts(args: argparse.Namespace) -> dict[str, Any]:
    from ..data.datasets import check_image_size
    from ..data.loaders import DATASETS
    from ..search import build

    cfg = search_config_from_args(args, ("preset", "layers", "channels", "nodes", "dataset", "data_dir", "image_size"),
                                  read_config(args.config, "params") if args.config else {})
    check_image_size(cfg.dataset, cfg.image_size)   # as search refuses it, though the files are not read
    entry = DATASETS.get(cfg.dataset)
    in_channels, classes = entry.shape if entry is not None and entry.shape else (None, None)
    if (args.in_channels is None and in_channels is None) or (args.classes is None and classes is None):
        from ..data import load_dataset  # a dataset of unknown shape (imagefolder): read it
        ds = load_dataset(cfg.dataset, cfg.data_dir, image_size=cfg.image_size)
        in_channels, classes = ds.shape[0], ds.classes
    in_channels = args.in_channels if args.in_channels is not None else in_channels
    classes = args.classes if args.classes is not None else classes
    assert in_channels is not None and classes is not None   # given, known for the dataset, or read above
    supernet, arch = build(cfg, in_channels, classes)
    return {"network": "search", "preset": cfg.preset, "arch": cfg.arch, "layers": cfg.layers, "channels": cfg.channels,
            "nodes": cfg.nodes, "ops": list(cfg.ops), "classes": classes, "in_channels": in_channels,
            "weights": sum(p.numel() for p in supernet.parameters()),
            "arch_params": sum(p.numel() for p in arch.parameters())}


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError

    if args.genotype is not None:
        extra = [f for f in ("preset", "config", "dataset", "nodes", "image_size") if getattr(args, f) is not None]
        if extra:
            hint = ("; for the evaluation network of that data's images give --in-channels and --classes "
                    "(e.g. --in-channels 1 --classes 10 for MNIST)" if extra[0] == "dataset" else "")
            raise ConfigError(f"--{extra[0].replace('_', '-')} describes the search network; it does not go with "
                              f"--genotype{hint}")
        r = evaluation_counts(args)
    else:
        if args.setting is not None:   # as --preset with --genotype is refused: it would count the search network
            raise ConfigError(f"--setting describes the evaluation network of a genotype; it goes with --genotype "
                              f"(e.g. --genotype DARTS_V2 --setting {args.setting})")
        r = search_counts(args)
    if args.json:
        print(json_text(r))
        return 0
    of = f" of the training in {r['training_run']}" if "training_run" in r else ""
    inputs = f", {r['in_channels']} input channel{'s' if r['in_channels'] != 1 else ''}" if "in_channels" in r else ""
    print(f"{r['network']} network{of}, {r['layers']} cells, {r['channels']} channels, {r['classes']} classes{inputs}")
    print(f"weights      {r['weights']:>13,}  ({r['weights'] / 1e6:.6f}M)")
    if r["network"] == "evaluation":
        print(f"aux_weights  {r['aux_weights']:>13,}  (auxiliary head, training only)")
        print(f"madds        {r['madds']:>13,}  ({r['madds'] / 1e6:.1f}M at {'x'.join(map(str, r['input_shape']))})")
    else:
        print(f"arch_params  {r['arch_params']:>13,}")
    return 0
