"""Errors name a value the way the user gave it: a config field typed as a flag is named by the flag.

Light on purpose (argparse and re only): the CLI's entry module imports it before torch is loaded.
"""

from __future__ import annotations

import argparse
import re
from typing import Iterable, Mapping


def typed_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, str]:
    """{dest: its flag} for each flag of `parser` given on the command line (config flags default to
    None), spelled the longest way: "--image-size"."""
    return {a.dest: max(a.option_strings, key=len) for a in parser._actions
            if a.option_strings and getattr(args, a.dest, None) is not None}


def field_flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """{dest: its flag} for every flag of `parser`, spelled the longest way ("--no-plots" for plots)."""
    return {a.dest: max(a.option_strings, key=len) for a in parser._actions if a.option_strings}


def resumable_named(fields: Iterable[str], flags: Mapping[str, str], table: str = "") -> dict[str, str]:
    """How a resume's refusal lists the fields that may change: by `flags` ({field: flag}), and a field
    with no flag as the config-file key it is ("detect_anomaly (--config file)"; `table` "train." for a
    key of the [train] table: "train.bn_groups (--config file)")."""
    return {k: flags.get(k, f"{table}{k} (--config file)") for k in fields}


def flag_named(message: str, flags: Mapping[str, str], prefix: str = "") -> str:
    """A config error that starts with (`prefix`, then) a field typed as a flag ("image_size: must be
    >= 0, got -1") names the flag instead ("--image-size: must be >= 0, got -1"): the field's name is
    not what the user typed. `flags`: {field: flag} of the flags given."""
    match = re.match(re.escape(prefix) + r"(\w+): ", message)
    if match is None or match.group(1) not in flags:
        return message
    return flags[match.group(1)] + message[match.end(1):]
