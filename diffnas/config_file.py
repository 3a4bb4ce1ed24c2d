"""Config files: JSON, TOML or YAML read through safe loaders (no code runs, a key given twice is
refused), and which command's `--config` a file is for (a run folder's config.json says by its
"command" key). What the values mean and how they are checked is config.py's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .notices import shell


MAX_BYTES = 1 << 20   # a config file is a few hundred bytes; a run's config.json a few kilobytes


def read_file(path: str | Path) -> dict[str, Any]:
    """A config file as a dict: JSON, TOML or YAML, each through a safe loader (no code runs)."""
    path = Path(path)
    try:   # UTF-8 whatever the locale, with or without the byte-order mark Windows editors write
        if path.exists() and not (path.is_file() or path.is_fifo()):   # a folder, /dev/zero: never a config
            raise ConfigError(f"{path}: not a file (a config file is JSON, TOML or YAML text)")
        with open(path, "rb") as f:   # a named pipe too, read no further than the limit
            raw = f.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise ConfigError(f"{path}: more than {MAX_BYTES // 2**20} MiB, not a config file (JSON, TOML or YAML "
                              f"text of a few lines)")
        text = raw.decode("utf-8-sig")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a text file in UTF-8 (byte {e.start}: {e.reason}); a config file is "
                          f"JSON, TOML or YAML text") from None
    suffix = path.suffix.lower()
    if suffix not in (".json", ".toml", ".yaml", ".yml"):
        raise ConfigError(f"{path}: config files are .json, .toml or .yaml (.yml)")
    if not text.strip():   # TOML took it for no values, JSON called it malformed, YAML not a mapping
        raise ConfigError(f"{path}: an empty config file; write its values in it, or leave --config out")

    def once(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:   # JSON and YAML take the last of two values
        seen: dict[Any, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise ConfigError(f"{path}: key {key!r} is given twice")
            seen[key] = value
        return seen

    try:
        if suffix == ".json":
            data = json.loads(text, object_pairs_hook=once)
        elif suffix == ".toml":
            try:
                import tomllib
            except ImportError:  # Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]
            data = tomllib.loads(text)
        else:   # .yaml, .yml
            import yaml

            class Loader(yaml.SafeLoader):   # safe_load's loader, refusing a key given twice (as TOML does)
                pass

            def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
                # keys written twice in this mapping are refused; keys merged in (<<: *anchor) may be
                # overridden by the mapping's own, as YAML says
                once([(loader.construct_object(k, deep=True), None) for k, _ in node.value
                      if k.tag != "tag:yaml.org,2002:merge"])
                return loader.construct_mapping(node, deep=True)

            Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
            data = yaml.load(text, Loader=Loader)  # noqa: S506 (a SafeLoader subclass)
    except ConfigError:
        raise
    except Exception as e:  # each parser has its own error type; all mean "malformed"
        raise ConfigError(f"{path}: malformed config file ({str(e).splitlines()[0][:200]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping of keys to values")
    return data


# the configs each command's --config takes, by the "command" key a run's config.json records
CONFIG_KINDS = {"search": ("search",), "params": ("search",), "train": ("train",), "run": ("search", "pipeline")}
_USE_WITH = {"search": "search with `diffnas search --config {}`", "train": "train with `diffnas train --config {}`",
             "pipeline": "start a pipeline with `diffnas run --config {}`"}


def for_command(values: dict[str, Any], command: str, path: str | Path) -> dict[str, Any]:
    """The values of a config file given to `diffnas COMMAND --config`, less the "command" key a run
    folder's config.json holds (and then its run_dir). A key naming another command's config is a
    ConfigError saying which command takes it."""
    values = dict(values)
    kind = values.pop("command", None)
    takes = CONFIG_KINDS[command]
    if kind is None and command != "run":   # `diffnas run --config` reads "search" and "train" tables
        for table in ("search", "train"):
            if isinstance(values.get(table), dict):
                raise ConfigError(f"{path}: a \"{table}\" table: `diffnas {command} --config` takes its keys at the "
                                  f"top level (epochs = 5, not under [{table}]); a file with search and train "
                                  f"tables starts a pipeline with `{shell('diffnas', 'run', '--config', path)}`")
    if kind is None:
        return values
    if kind in takes:
        # a run's own config.json starts a new run: in a new folder, not the one that holds that run
        values.pop("run_dir", None)
        return values
    if kind not in _USE_WITH:
        raise ConfigError(f"{path}: command: {kind!r} is not one of {', '.join(_USE_WITH)} (the command "
                          f"whose run folder the config.json is)")
    raise ConfigError(f"{path}: a {kind} config (\"command\": \"{kind}\"); `diffnas {command} --config` takes "
                      f"a {' or '.join(takes)} config; {_USE_WITH[kind].format(shell(path))}")
