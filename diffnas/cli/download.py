"""`diffnas download NAME --data-dir DIR`: fetch a dataset from its official source, verify its
checksum and unpack it (needs internet; everything else in diffnas runs offline)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("download", help="download and verify a dataset", description=__doc__)
    p.add_argument("name", help="cifar10 | cifar100 | mnist | fashion-mnist | svhn | tiny-imagenet")
    p.add_argument("--data-dir", dest="data_dir", default="data",
                   help="folder the dataset goes into (default ./data, which the other commands read by default)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..data import download

    print(f"ready: {download(args.name, Path(args.data_dir))}")
    return 0
