"""Shared flag handling: flags default to None so only what the user typed overrides the config."""

from __future__ import annotations

import argparse
from typing import Any, Iterable

from .. import config as config_lib


def flag_values(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """The config fields among `names` that were given on the command line."""
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def ops_list(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def search_config_from_args(args: argparse.Namespace, names: Iterable[str]) -> config_lib.SearchConfig:
    """defaults < preset < --config file < flags."""
    from_file = config_lib.read_file(args.config) if getattr(args, "config", None) else {}
    flags = flag_values(args, names)
    preset = flags.pop("preset", None) or from_file.pop("preset", None) or "darts"
    return config_lib.search_config(preset, **{**from_file, **flags})
