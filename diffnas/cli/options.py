"""Shared flag handling: flags default to None so only what the user typed overrides the config."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from .. import config as config_lib
from .. import config_file, recovery
from ..errors import ConfigError
from .flags import flag_named, resumable_named


# --dry-run's sizes (search, train and the two stages of run): a synthetic run through the whole code, seconds
DRY_RUN: dict[str, Any] = dict(dataset="synthetic", layers=3, channels=4, epochs=1, max_steps=2, batch_size=8)


def fill_untyped(args: argparse.Namespace, values: Mapping[str, Any]) -> None:
    """`values` for the flags of `args` left unset (None): those typed keep theirs."""
    for name, value in values.items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)


def fill_dry_run(args: argparse.Namespace, tiny: Mapping[str, Any], from_file: Mapping[str, Any],
                 prefix: str = "") -> list[str]:
    """--dry-run's `tiny` sizes for the flags of `args` left unset, a --config file's values replaced too
    (a dry run checks a real config in seconds); the note that says which file values it replaced, []
    when none. `prefix`: the flags' prefix of `from_file`'s keys (`diffnas run`'s train_)."""
    replaced = [f"{key} {from_file[key]!r}" for key, value in tiny.items()
                if getattr(args, prefix + key, None) is None and key in from_file and from_file[key] != value]
    fill_untyped(args, {prefix + key: value for key, value in tiny.items()})
    if not replaced:
        return []
    where = f"the config file's {'train ' if prefix else ''}"
    return [f"diffnas: note: --dry-run replaces {where}{', '.join(replaced)} with its tiny sizes (a flag typed "
            f"keeps its value)"]


def default_help(field: str, config: type, variants: Mapping[str, Mapping[str, Any]]) -> str:
    """A flag's help: `config`'s default for `field` and the variants that set their own (presets:
    "default 0.025; pc-darts 0.1, fair-darts 0.005"; settings: "default 0.0003; imagenet 3e-05"), read
    from them so the help cannot drift from them."""
    def plain(v: object) -> str:
        return f"{v:g}" if isinstance(v, float) else str(v)

    own = [f"{name} {plain(values[field])}" for name, values in variants.items()
           if field in values and values[field] != getattr(config, field)]
    return f"default {plain(getattr(config, field))}" + (f"; {', '.join(own)}" if own else "")


def read_config(path: str | Path, command: str) -> dict[str, Any]:
    """The values of `diffnas COMMAND --config PATH` (a run's own config.json works: its "command"
    key must name a config that COMMAND takes)."""
    values = config_file.for_command(config_file.read_file(path), command, path)
    config_lib.check_values(config_lib.TrainConfig if command == "train" else config_lib.SearchConfig, values,
                            where=str(path))
    return values


def start_notices(*cfgs: Any, note: str | None = None, typed: Mapping[str, str] | None = None) -> list[str]:
    """What a new run says on stderr once it has started (search's and train's `notices`): `note`,
    then a warning for each value of the configs that has no effect (config.ineffective), each once,
    a value typed as a flag named by it as errors name it (`typed`: {field: flag}; "--xi: 0.1 has no
    effect"). Empty on ranks other than 0 (before setup() too: distributed.is_main goes by torchrun's RANK)."""
    from .. import distributed

    if not distributed.is_main():
        return []
    lines = [note] if note else []
    for cfg in cfgs:
        said = [f"diffnas: warning: {flag_named(line, typed or {})}" for line in config_lib.ineffective(cfg)]
        lines += [line for line in said if line not in lines]
    return lines


def elapsed(args: argparse.Namespace) -> str:
    """The wall time of the whole command so far ("13.5 s"): loading data and building the network
    included, which the loops' own seconds leave out."""
    started = getattr(args, "started", None)
    return f"{time.monotonic() - started:.1f} s" if started is not None else "?"


def flag_values(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """The config fields among `names` that were given on the command line."""
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def ops_list(text: str) -> tuple[str, ...]:
    """An argparse type: comma-separated op names; an empty one (`a,,b`, a trailing comma) is refused,
    not dropped (a name lost in editing)."""
    names = tuple(s.strip() for s in text.split(","))
    if not any(names):   # ',': no name at all, which the config refuses as an empty list
        return ()
    if any(not n for n in names):
        raise argparse.ArgumentTypeError(f"an empty op name in {text!r} (op names separated by single commas)")
    return names


def search_config_from_args(args: argparse.Namespace, names: Iterable[str],
                            from_file: dict[str, Any] | None = None) -> config_lib.SearchConfig:
    """defaults < preset < --config file (or `from_file`, the file's values already read) < flags."""
    if from_file is None:
        from_file = read_config(args.config, "search") if getattr(args, "config", None) else {}
    from_file = dict(from_file)
    flags = flag_values(args, names)
    preset = flags.pop("preset", None) or from_file.pop("preset", None) or "darts"
    return config_lib.search_config(preset, **{**from_file, **flags})


def refuse_changes_on_resume(run_dir: str | Path, given: dict[str, Any], resumable: Iterable[str],
                             flags: Mapping[str, str]) -> None:
    """A resumed run keeps its configuration: a value typed now (flag or --config file) that differs
    from the run's, in a field that may not change, is an error instead of being silently ignored.
    flags: {field: flag} of the command, to list the fields that may change by their flags."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        return  # the loop says the folder is not a run
    saved = config_file.read_file(path)
    kind = {"search": config_lib.SearchConfig, "train": config_lib.TrainConfig}.get(saved.get("command", ""))
    recovery.refuse_changes(saved, given, resumable, f"the run in {run_dir}",
                              defaults=config_lib.to_dict(kind()) if kind is not None else None,
                              names=resumable_named(resumable, flags))


def run_genotype(spec: str) -> str:
    """A pipeline folder given where a genotype is expected stands for the genotype its search found
    (RUN/search/genotype.json); any other spec is returned as it is."""
    if not spec.strip():  # Path("") is the current folder; genotype parsing names the empty spec
        return spec
    path = Path(spec)
    try:
        if not (path / "genotype.json").is_file() and (path / "search" / "genotype.json").is_file():
            return str(path / "search" / "genotype.json")
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte: not a folder
        pass
    return spec


def json_text(result: dict[str, Any]) -> str:
    """A command's result as the JSON it prints: its "genotype" (text, as the Python API returns it)
    as an object, since a per-cell genotype's text is JSON itself and would be a string in the JSON."""
    import json

    from ..genotype import load

    if "genotype" in result:
        result = {**result, "genotype": load(result["genotype"]).to_dict()}
    return json.dumps(result, indent=1)


def positive(text: str) -> int:
    """An argparse type: an integer >= 1 (a count of classes or channels, a batch size)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_run_flags(p: argparse.ArgumentParser, seed: int, what: str = "", searches: bool = True) -> None:
    """The flags of how a search or a training runs, the same for both: seed (its default `seed`;
    `what`: whose, "the search's " in `diffnas run`, whose training has --train-seed), device,
    precision, compilation, memory format, figures, determinism, NaN rollback, flips (`diffnas run`
    passes them but the seed to both); `searches`: the seed draws alpha too."""
    a = p.add_argument
    alpha = " and alpha" if searches else ""
    a("--seed", type=int, help=f"{what}seed of every random choice: initial weights{alpha}, "
                               f"data order, augmentation (default {seed})")
    a("--device", help="auto | cpu | cuda | cuda:N")
    a("--precision", help="fp32 | bf16")
    a("--no-compile", dest="compile", action="store_const", const=False, help="plain eager path on CUDA")
    a("--memory-format", dest="memory_format",
      help="auto (contiguous) | contiguous | channels_last (CPU: up to 1.7x faster, but batch norm there is "
           "less accurate in fp32, and bf16 gives non-finite gradients)")
    a("--no-plots", dest="plots", action="store_const", const=False,
      help="draw no figures (`diffnas plot RUN_DIR` draws them later)")
    a("--deterministic", action="store_const", const=True,
      help="deterministic algorithms where torch has them, cuDNN autotuning off: a repeated run gives the "
           "same bits on the same machine (slower)")
    a("--nan-rollback", dest="nan_rollback", type=int, help="on NaN, reload the last checkpoint with lr/2, N times")
    a("--no-flip", dest="flip", action="store_const", const=False,
      help="no random horizontal flips in augmentation (images that mirror into another class: text, arrows; "
           "digits, MNIST, Fashion-MNIST, SVHN and synthetic are never flipped)")


def refuse_run_dir_on_resume(args: argparse.Namespace) -> None:
    """--run-dir with --resume names another folder than the run's: refused (a resumed run goes on in
    its own folder; the other was silently ignored)."""
    if args.resume and args.run_dir and Path(args.run_dir).expanduser().resolve() != Path(args.resume).resolve():
        raise ConfigError(f"--run-dir does not go with --resume: the run goes on in its own folder, "
                          f"{args.resume} (copy that folder to go on elsewhere)")
