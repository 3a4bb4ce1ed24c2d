"""`diffnas params`: parameter and multiply-add counts, without training.

With --genotype: the evaluation network of a setting (weights without the auxiliary head,
aux_weights, multiply-adds of one image at the setting's size: cifar 3x32x32, imagenet 3x224x224,
tiny-imagenet 3x64x64). Without: the search network of a preset (supernet weights and architecture
parameters); classes and input channels come from the dataset, or from --classes / --in-channels.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .. import config as config_lib
from .options import flag_values, read_config

# (input channels, classes) of the registered datasets, so counting needs no data files
DATASET_SHAPES = {"digits": (1, 10), "cifar10": (3, 10), "cifar100": (3, 100), "mnist": (1, 10),
                  "fashion-mnist": (1, 10), "svhn": (3, 10), "tiny-imagenet": (3, 200), "synthetic": (3, 10)}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("params", help="count parameters and multiply-adds", description=__doc__)
    a = p.add_argument
    a("--genotype", help="count the evaluation network of this genotype (name, file or notation)")
    a("--setting", default="cifar", help="evaluation network: cifar | imagenet | tiny-imagenet (default cifar)")
    a("--preset", help="search network: darts | darts-1st | pc-darts | fair-darts | global | dnas (default darts)")
    a("--config", help="search network: config file (flags override it)")
    a("--dataset", help="search network: where classes and input channels come from (default digits)")
    a("--data-dir", dest="data_dir")
    a("--image-size", dest="image_size", type=int, help="search network: image folders of mixed sizes, as in search")
    a("--layers", type=int, help="cells (default: the setting's or preset's)")
    a("--channels", type=int, help="initial channels (default: the setting's or preset's)")
    a("--nodes", type=int, help="search network: intermediate nodes per cell")
    a("--classes", type=int, help="classifier outputs (default: the setting's or dataset's)")
    a("--in-channels", dest="in_channels", type=int, help="image channels (default 3, search: the dataset's)")
    a("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def evaluation_counts(args: argparse.Namespace) -> dict[str, Any]:
    from ..counting import count_madds, count_params
    from ..genotype import load
    from ..network import SETTINGS, build_network
    from ..train import train_config

    cfg = train_config(args.setting, **flag_values(args, ("layers", "channels")))
    classes = args.classes if args.classes is not None else SETTINGS[args.setting].classes
    in_channels = args.in_channels or 3
    genotype = load(args.genotype)
    model = build_network(genotype, args.setting, cfg.channels, cfg.layers, classes, in_channels, auxiliary=True)
    size = SETTINGS[args.setting].input_size
    weights = count_params(model)
    return {"network": "evaluation", "setting": args.setting, "genotype": str(genotype), "layers": cfg.layers,
            "channels": cfg.channels, "classes": classes, "input_shape": [in_channels, size, size],
            "weights": weights, "aux_weights": count_params(model, exclude_aux=False) - weights,
            "madds": count_madds(model, (in_channels, size, size))}


def search_counts(args: argparse.Namespace) -> dict[str, Any]:
    from .. import arch as arch_lib
    from ..supernet import Supernet

    from_file = read_config(args.config, "params") if args.config else {}
    flags = flag_values(args, ("preset", "layers", "channels", "nodes", "dataset", "data_dir", "image_size"))
    preset = flags.pop("preset", None) or from_file.pop("preset", None) or "darts"
    cfg = config_lib.search_config(preset, **{**from_file, **flags})
    in_channels, classes = DATASET_SHAPES.get(cfg.dataset, (None, None))
    if (args.in_channels is None and in_channels is None) or (args.classes is None and classes is None):
        from ..data import load_dataset  # a dataset of unknown shape (imagefolder): read it
        ds = load_dataset(cfg.dataset, cfg.data_dir, image_size=cfg.image_size)
        in_channels, classes = ds.shape[0], ds.classes
    in_channels = args.in_channels if args.in_channels is not None else in_channels
    classes = args.classes if args.classes is not None else classes
    supernet = Supernet(cfg.channels, classes, cfg.layers, cfg.nodes, cfg.ops, in_channels, cfg.stem_multiplier,
                        partial=cfg.partial_channels, skip_dropout=cfg.skip_dropout)
    arch = arch_lib.build(cfg.arch, cfg.layers, cfg.nodes, cfg.ops, supernet.reductions,
                          zero_one_weight=cfg.zero_one_weight, threshold=cfg.threshold)
    return {"network": "search", "preset": preset, "arch": cfg.arch, "layers": cfg.layers, "channels": cfg.channels,
            "nodes": cfg.nodes, "ops": list(cfg.ops), "classes": classes, "in_channels": in_channels,
            "weights": sum(p.numel() for p in supernet.parameters()),
            "arch_params": sum(p.numel() for p in arch.parameters())}


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError

    if args.genotype is not None:
        extra = [f for f in ("preset", "config", "dataset", "nodes") if getattr(args, f) is not None]
        if extra:
            raise ConfigError(f"--{extra[0]} describes the search network; it does not go with --genotype")
        r = evaluation_counts(args)
    else:
        r = search_counts(args)
    if args.json:
        print(json.dumps(r, indent=1))
        return 0
    print(f"{r['network']} network, {r['layers']} cells, {r['channels']} channels, {r['classes']} classes")
    print(f"weights      {r['weights']:>13,}  ({r['weights'] / 1e6:.6f}M)")
    if r["network"] == "evaluation":
        print(f"aux_weights  {r['aux_weights']:>13,}  (auxiliary head, training only)")
        print(f"madds        {r['madds']:>13,}  ({r['madds'] / 1e6:.1f}M at {'x'.join(map(str, r['input_shape']))})")
    else:
        print(f"arch_params  {r['arch_params']:>13,}")
    return 0
