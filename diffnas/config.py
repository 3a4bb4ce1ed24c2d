"""Configs as data: frozen dataclasses with a default and a unit per field, presets, validation.

Defaults are the papers' (DARTS: Liu et al. 2019, section 3.1.2 and quark0/darts
cnn/train_search.py, cnn/train.py; PC-DARTS: Xu et al. 2020, yuhuixu1993/PC-DARTS train_search.py;
FairDARTS: Chu et al. 2020; DNAS: Xu & He). Every value a user gives goes through `validate`, which
raises ConfigError with one line naming the field.
"""

from __future__ import annotations

import copy
import dataclasses
import numbers
import os
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np

from .errors import ConfigError, check_choice, suggest
from .field_docs import with_field_docs
from .notices import on_command_line, option
from .network import DROP_PATH_UNITS, SETTINGS
from .ops import PRIMITIVES, check_op_set
from .supernet import check_size
from .tuning import EDGES, MEMORY_FORMATS


def _datasets() -> tuple[str, ...]:
    from .data.loaders import DATASETS  # the registry lives with the readers; read when checked

    return tuple(DATASETS)


def _f(default: Any, **meta: Any) -> Any:
    """A field with its default and checks: min/max (open_min/open_max: strict), choices (a tuple,
    or a function returning one for registries kept elsewhere)."""
    if isinstance(default, (list, dict)):   # a fresh copy per instance (sequences are tuples, as `ops`)
        return field(default_factory=lambda: copy.copy(default), metadata=meta)
    return field(default=default, metadata=meta)


# far past any paper's network (DARTS: 8 cells of 4 nodes searched, 20 trained; DNAS: 8, 14 on CIFAR-100), below a
# size whose building alone runs for hours or is killed for memory without a word (1e12 cells)
MAX_LAYERS = 1000
MAX_NODES = 32


@dataclass(frozen=True)
class SearchConfig:
    """A search's settings, as data: build one with `search_config(preset, **overrides)` (DARTS's
    defaults, then a preset's values: darts-1st, pc-darts, fair-darts, global, dnas), give it to
    `search()`. Each value's type and range is checked when the config is made, the rules between
    values when the search starts (one-line ConfigError); the command line's flags (`diffnas search
    --help`) are these fields."""

    # the preset's name, as a record: `search_config(preset)` applies its values (PRESETS), this field does not
    preset: str = _f("darts", choices=("darts", "darts-1st", "pc-darts", "fair-darts", "global", "dnas"))
    # data
    dataset: str = _f("digits", choices=_datasets)  # name in diffnas.data.DATASETS
    data_dir: str | None = _f(None, type=str)   # folder holding the dataset files
    image_size: int = _f(0, min=0)              # image files decoded as NxN (shorter side N, centre crop); 0: own size
    flip: bool = _f(True)                       # random horizontal flips where the dataset may be mirrored
    train_portion: float = _f(0.5, min=0.0, max=1.0, open_min=True, open_max=True)  # search-train share
    batch_size: int = _f(64, min=1)             # global batch, images per step
    bn_groups: int = _f(0, min=0)               # batch-norm statistics per batch_size/bn_groups images; 0: auto
    # search space
    layers: int = _f(8, min=3, max=MAX_LAYERS)  # cells; reductions at L/3 and 2L/3
    channels: int = _f(16, min=2)               # initial channels C
    nodes: int = _f(4, min=1, max=MAX_NODES)    # intermediate nodes per cell
    ops: tuple[str, ...] = _f(PRIMITIVES)       # candidate ops, alpha columns in this order
    stem_multiplier: int = _f(3, min=1)         # stem has stem_multiplier * C channels
    # architecture parametrisation
    arch: str = _f("softmax", choices=("softmax", "sigmoid", "pc", "global", "dnas"))  # how psi is made of alpha
    partial_channels: int = _f(1, min=1)        # K: 1/K of the channels go through the ops (PC-DARTS: 4)
    zero_one_weight: float = _f(0.0, min=0.0)   # FairDARTS zero-one loss weight w01 (paper: 10)
    threshold: float = _f(0.85, min=0.0, max=1.0)  # FairDARTS discretisation threshold on sigmoid(alpha)
    skip_dropout: float = _f(0.0, min=0.0, max=1.0, open_max=True)  # dropout on skip_connect in search
    max_skips: int = _f(0, min=0)               # early stop when a normal cell has more skips (0: off; DARTS+: 1)
    # optimisation
    order: str = _f("second", choices=("first", "second", "one-level"))  # bilevel first/second order, or one-level
    hessian: str = _f("fd", choices=("fd", "exact"))  # second order: finite differences or autograd
    fd_eps: float = _f(0.01, min=0.0, open_min=True)  # finite-difference step, divided by ||v||
    xi: float | None = _f(None, min=0.0, type=float)   # unrolled step; None: the current weight lr (original)
    epochs: int = _f(50, min=1)                 # DARTS train_search.py: 50
    warmup_epochs: int = _f(0, min=0)           # epochs of weight steps only (PC-DARTS: 15)
    w_lr: float = _f(0.025, min=0.0, open_min=True)      # SGD, cosine annealed to w_lr_min
    w_lr_min: float = _f(0.001, min=0.0)        # the cosine's end (DARTS train_search.py: learning_rate_min)
    w_momentum: float = _f(0.9, min=0.0, max=1.0, open_max=True)   # SGD momentum; the unrolled step uses it too
    w_wd: float = _f(3e-4, min=0.0)             # SGD weight decay (L2 in the gradient); the unrolled step too
    grad_clip: float = _f(5.0, min=0.0)         # max grad norm of w (0: off)
    alpha_lr: float = _f(3e-4, min=0.0, open_min=True)   # Adam on alpha (DARTS: arch_learning_rate)
    alpha_beta1: float = _f(0.5, min=0.0, max=1.0, open_max=True)    # Adam betas (DARTS architect.py: 0.5, 0.999)
    alpha_beta2: float = _f(0.999, min=0.0, max=1.0, open_max=True)  # Adam's second beta
    alpha_wd: float = _f(1e-3, min=0.0)         # Adam weight decay on alpha (DARTS: arch_weight_decay)
    # run
    seed: int = _f(2, min=0, max=2**32 - 1)      # random seed, in numpy's range (DARTS train_search.py: 2)
    device: str = _f("auto")                    # auto | cpu | cuda | cuda:N
    run_dir: str | None = _f(None, type=str)    # default runs/search-<time>
    max_steps: int = _f(0, min=0)               # cap on steps per epoch and validation batches (0: all); dry runs
    compile: bool = _f(True)                    # torch.compile fast path on CUDA (CPU: eager, silently)
    memory_format: str = _f("auto", choices=MEMORY_FORMATS)  # auto: contiguous (diffnas.tuning)
    edges: str = _f("auto", choices=EDGES)      # mixed edges batched (fused) or per op; auto: plain on CPU
    precision: str = _f("fp32", choices=("fp32", "bf16"))   # bf16: autocast forwards; alpha and weights stay fp32
    deterministic: bool = _f(False)             # torch deterministic algorithms, no cuDNN benchmark (seed_everything)
    plots: bool = _f(True)                      # figures at the end and curves after an epoch (paced.py)
    detect_anomaly: bool = _f(True)             # stop on NaN/Inf loss, gradient or alpha
    nan_rollback: int = _f(0, min=0)            # on NaN: reload the last checkpoint with lr/2, this many times

    def __post_init__(self) -> None:
        _check(self)   # SearchConfig(layers="x") is refused where it is written, not when the search starts
        check_op_set(self.ops)


@dataclass(frozen=True)
class TrainConfig:
    """The training from scratch of a genotype's network, as data: build one with
    `train_config(setting, **overrides)` (DARTS's CIFAR recipe, or the imagenet or tiny-imagenet
    setting's values), give it to `train()`. Each value's type and range is checked when the config is
    made, the rules between values when the training starts (one-line ConfigError); the command line's
    flags (`diffnas train --help`) are these fields."""

    setting: str = _f("cifar", choices=("cifar", "imagenet", "tiny-imagenet"))  # the network's stem and recipe
    genotype: str = _f("DARTS_V2")              # name, JSON file or Genotype(...) notation
    dataset: str = _f("digits", choices=_datasets)  # name in diffnas.data.DATASETS
    data_dir: str | None = _f(None, type=str)   # folder holding the dataset files
    image_size: int = _f(0, min=0)              # image files decoded as NxN (shorter side N, centre crop); 0: own size
    flip: bool = _f(True)                       # random horizontal flips where the dataset may be mirrored
    layers: int = _f(20, min=3, max=MAX_LAYERS)  # DARTS CIFAR: 20 cells; ImageNet: 14
    channels: int = _f(36, min=2)               # DARTS CIFAR: 36; ImageNet: 48
    epochs: int = _f(600, min=1)                # DARTS train.py: 600 (ImageNet: 250)
    batch_size: int = _f(96, min=1)             # global batch, images per step
    bn_groups: int = _f(0, min=0)               # batch-norm statistics per batch_size/bn_groups images; 0: auto
    lr: float = _f(0.025, min=0.0, open_min=True)        # SGD, initial lr
    lr_schedule: str = _f("cosine", choices=("cosine", "step"))  # per epoch: cosine to lr_min, or lr * gamma^epoch
    lr_min: float = _f(0.0, min=0.0)            # cosine only
    lr_gamma: float = _f(0.97, min=0.0, max=1.0, open_min=True)  # step only: decay per epoch (DARTS ImageNet 0.97)
    momentum: float = _f(0.9, min=0.0, max=1.0, open_max=True)   # SGD momentum
    wd: float = _f(3e-4, min=0.0)               # SGD weight decay (DARTS ImageNet: 3e-5)
    grad_clip: float = _f(5.0, min=0.0)         # max grad norm (0: off)
    cutout: int = _f(16, min=0)                 # square side in pixels (0: off)
    random_resized_crop: int = _f(0, min=0)     # output side in pixels (0: off); ImageNet: 224, eval resize+centre crop
    color_jitter: float = _f(0.0, min=0.0)      # brightness/contrast/saturation factor in [1-j, 1+j] (ImageNet: 0.4)
    hue_jitter: float = _f(0.0, min=0.0, max=0.5)  # hue shift in [-h, h] of a full turn (ImageNet: 0.2)
    auxiliary: float = _f(0.4, min=0.0)         # auxiliary loss weight (0: no auxiliary head)
    drop_path: float = _f(0.2, min=0.0, max=1.0, open_max=True)  # ramped linearly from 0
    # what a drop-path draw zeroes: each non-identity op's output (DARTS model.py Cell) or each node's
    # sum, identities included (FairDARTS model.py DCOCell, its threshold-discretised cells)
    drop_path_per: str = _f("op", choices=DROP_PATH_UNITS)
    label_smoothing: float = _f(0.0, min=0.0, max=1.0, open_max=True)  # ImageNet: 0.1
    seed: int = _f(0, min=0, max=2**32 - 1)      # random seed, in numpy's range (DARTS train.py: 0)
    device: str = _f("auto")                    # auto | cpu | cuda | cuda:N
    run_dir: str | None = _f(None, type=str)    # default runs/train-<time>
    max_steps: int = _f(0, min=0)               # cap on steps per epoch and test batches (0: all); dry runs
    compile: bool = _f(True)                    # torch.compile of the network on CUDA (CPU: eager)
    memory_format: str = _f("auto", choices=MEMORY_FORMATS)  # auto: contiguous (diffnas.tuning)
    precision: str = _f("fp32", choices=("fp32", "bf16"))   # bf16: autocast forwards; weights stay fp32
    deterministic: bool = _f(False)             # torch deterministic algorithms, no cuDNN benchmark (seed_everything)
    plots: bool = _f(True)                      # curves and cell diagrams at the end
    detect_anomaly: bool = _f(True)             # stop on NaN/Inf loss or gradient
    nan_rollback: int = _f(0, min=0)            # on NaN: reload the last checkpoint with lr/2, this many times

    def __post_init__(self) -> None:
        _check(self)


with_field_docs(SearchConfig)   # help(SearchConfig): each field's default and comment
with_field_docs(TrainConfig)


# What each method changes on top of the DARTS defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "darts": {"order": "second"},
    "darts-1st": {"order": "first"},
    # yuhuixu1993/PC-DARTS train_search.py: batch 256, lr 0.1 cosine to learning_rate_min 0.001 (the
    # paper's text says "to zero"; the code that produced its results, like DARTS's, stops at 0.001),
    # arch lr 6e-4, 15 warm-up epochs
    "pc-darts": {"order": "first", "arch": "pc", "partial_channels": 4, "batch_size": 256,
                 "w_lr": 0.1, "w_lr_min": 0.001, "alpha_lr": 6e-4, "warmup_epochs": 15},
    # xiaomi-automl/FairDARTS fairdarts/train_search.py and genotypes.py: sigmoid, zero-one loss weight
    # 10, threshold 0.85, first order; its 7 ops (no `none`), batch 128, lr 0.005 cosine to 0.001,
    # arch Adam lr 3e-3 with betas (0.9, 0.999) (architect.py: `arch_lr_gamma` 0.9 is beta1)
    "fair-darts": {"order": "first", "arch": "sigmoid", "zero_one_weight": 10.0,
                   "ops": tuple(op for op in PRIMITIVES if op != "none"), "batch_size": 128,
                   "w_lr": 0.005, "w_lr_min": 0.001, "alpha_lr": 3e-3, "alpha_beta1": 0.9},
    # DNAS tables' "global" baseline: a full softmax alpha per layer
    "global": {"order": "first", "arch": "global"},
    # DNAS (Xu & He): decoupled psi, PC-DARTS partial channels, FairDARTS sigmoid + zero-one loss,
    # skip-connection dropout 0.2 in the search network. FairDARTS's 7 ops, without `none`: under sigmoid
    # gates its weight neither scales nor renormalises anything, so the loss gives alpha[:, none] and
    # gamma[:, none] no gradient and only the zero-one term moves them, to 0 or 1 by their random start
    "dnas": {"order": "first", "arch": "dnas", "partial_channels": 4, "zero_one_weight": 10.0,
             "skip_dropout": 0.2, "ops": tuple(op for op in PRIMITIVES if op != "none")},
}

C = TypeVar("C", SearchConfig, TrainConfig)

# float fields reach float32 tensor arithmetic (an Adam step divides lr by 1 - beta1): far below 3.4e38
FLOAT_LIMIT = 1e30


def _check(cfg: Any) -> None:
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        checked = check_field(f, value)
        if checked is not value:   # normalised (a Path to str, an int to float, a list to tuple)
            object.__setattr__(cfg, f.name, checked)


def check_field(f: dataclasses.Field, value: Any) -> Any:
    """`value` checked against field `f`'s type and range (a ConfigError naming the field), returned in
    the field's own type: a Path as str, an int as float, a list as tuple."""
    meta = f.metadata
    if value is None:
        if f.default is not None:
            raise ConfigError(f"{f.name}: must not be empty")
        return value
    expected = type(f.default) if f.default is not None else meta.get("type")
    if expected is str and isinstance(value, os.PathLike):   # a pathlib.Path from Python code
        value = os.fspath(value)
    if expected is str and isinstance(value, np.str_):   # a sweep's numpy values, as for numbers below
        value = str(value)
    if expected is bool and isinstance(value, np.bool_):   # a sweep's numpy values
        value = bool(value)
    number = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))   # numpy's too
    if expected is int and number and (isinstance(value, numbers.Integral) or float(value).is_integer()):
        value = int(value)   # np.int64(3), 3.0
    if expected is float and number:
        value = float(value)
    if expected is float and isinstance(value, float) and not abs(value) <= FLOAT_LIMIT:
        raise ConfigError(f"{f.name}: must be a finite number of magnitude at most {FLOAT_LIMIT:g} "
                          f"(tensors are float32), got {value!r}")
    if expected is tuple:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{f.name}: expected a list of op names, got {value!r}")
        value = tuple(value)
    elif expected is not None and (type(value) is not expected):
        quote = ""
        if expected is str and isinstance(value, (int, float)):   # a config file's `order: 2`, `run_dir: 2024`
            if "choices" in meta:   # say the choices, as the flag does
                check_choice(f.name, str(value), _choices(f))
            what = f"a folder named {value}" if f.name.endswith("_dir") else "meant as text"
            quote = f" ({what}? quote it in the config file: \"{value}\")"
        raise ConfigError(f"{f.name}: expected {expected.__name__}, got {value!r}{quote}")
    if isinstance(value, str) and not value.strip():   # as the command line refuses `--run-dir ''`
        raise ConfigError(f"{f.name}: an empty value; leave it out for its default"
                          + (" (a folder named '' would be the current one)" if f.name.endswith("_dir") else ""))
    if "choices" in meta:
        known = _choices(f)
        try:
            check_choice(f.name, value, known)
        except ConfigError as e:
            if f.name == "dataset" and not on_command_line() and not suggest(str(value), known):
                # no typo of a built-in name: a run on data registered by a process now gone
                raise ConfigError(f"{e}; a dataset registered with diffnas.data.register_tensors is known "
                                  f"only to the process that registered it: register it again first") from None
            raise
    if "min" in meta and (value < meta["min"] or (meta.get("open_min") and value == meta["min"])):
        op = ">" if meta.get("open_min") else ">="
        raise ConfigError(f"{f.name}: must be {op} {meta['min']}, got {value!r}")
    if "max" in meta and (value > meta["max"] or (meta.get("open_max") and value == meta["max"])):
        op = "<" if meta.get("open_max") else "<="
        raise ConfigError(f"{f.name}: must be {op} {meta['max']}, got {value!r}")
    return value


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _yaml_float(text: str) -> str:
    """`text` ("1e-3") as YAML 1.1 reads a float ("1.0e-3")."""
    mantissa, exponent = text.lower().split("e", 1)
    mantissa = mantissa if "." in mantissa else f"{mantissa}.0"
    return f"{mantissa}e{exponent if exponent[:1] in '+-' else '+' + exponent}"


def _choices(f: Field) -> tuple[str, ...]:
    """Field `f`'s allowed values (its metadata's list, or the function that lists them)."""
    choices = f.metadata["choices"]
    return tuple(choices() if callable(choices) else choices)


def check_values(cls: type, values: dict[str, Any], where: str) -> None:
    """Each of `values` (a config file's, `where`) checked on its own against `cls`'s field of that
    name, so a wrong value is said even where a flag then replaces it; an unknown name is said with
    the file and the name meant ("did you mean 'data_dir'?")."""
    by_name = {f.name: f for f in fields(cls)}
    for name, value in values.items():
        if name not in by_name:
            raise ConfigError(f"{where}: unknown config key {name!r}{suggest(name, list(by_name))}")
        try:
            checked = check_field(by_name[name], value)
            if name == "ops" and cls is SearchConfig:   # an empty list or only `none`: said with the file too
                check_op_set(checked)
        except ConfigError as e:
            hint = ""
            if (where.lower().endswith((".yaml", ".yml")) and isinstance(value, str) and "e" in value.lower()
                    and _number(value) and type(by_name[name].default) in (int, float)):   # YAML 1.1 reads 1e-3 as text
                hint = f" (YAML reads {value} as text; write {_yaml_float(value)})"
            raise ConfigError(f"{where}: {e}{hint}") from None


def same_value(a: Any, b: Any) -> bool:
    """Equal as config values: a tuple and a list (JSON's form of it) with the same items are."""
    return (list(a) if isinstance(a, tuple) else a) == (list(b) if isinstance(b, tuple) else b)


def _check_preset(cfg: SearchConfig) -> None:
    """ConfigError for a preset name whose own values (those that differ from the defaults) the config
    holds none of, while some of those fields still hold the defaults: `SearchConfig(preset="pc-darts")`
    only records the name (search_config applies the values), and searched DARTS, also with one of
    them set otherwise (`batch_size=8`). A preset whose values were applied and then overridden
    (`--preset global --arch pc`: none at its default) is the user's choice; the order is left out:
    every preset runs in every order."""
    defaults = SearchConfig()
    values = {k: v for k, v in PRESETS.get(cfg.preset, {}).items()
              if k != "order" and not same_value(v, getattr(defaults, k))}
    held = any(same_value(getattr(cfg, k), v) for k, v in values.items())
    if values and not held and any(same_value(getattr(cfg, k), getattr(defaults, k)) for k in values):
        shown = ", ".join(f"{k}={v!r}" for k, v in list(values.items())[:2]) + (", ..." if len(values) > 2 else "")
        raise ConfigError(f"preset: {cfg.preset!r} is named, but the config holds none of its values ({shown}): "
                          f"search_config({cfg.preset!r}, ...) applies them (a SearchConfig's preset field only "
                          f"records the name), --preset {cfg.preset} on the command line; a config that "
                          f"overrides them all, to the defaults or other values, is another preset's: name that one")


def genotype_path(spec: str) -> str:
    """A genotype given as the relative path of a file or run folder `genotype.load` reads, made absolute;
    a published name (also where a folder of that name is), random:SEED or notation as it is."""
    from .genotype import spec_path

    return spec_path(spec)


def validate(cfg: C) -> C:
    """Check types, ranges and cross-field rules; return the config (tuples normalised, data_dir and a
    genotype's path made absolute so that a run's config.json finds them from any working directory)."""
    _check(cfg)
    absolute = str(Path(cfg.data_dir).expanduser().absolute()) if cfg.data_dir else cfg.data_dir
    if absolute != cfg.data_dir:
        cfg = dataclasses.replace(cfg, data_dir=absolute)
    if isinstance(cfg, TrainConfig) and (spec := genotype_path(cfg.genotype)) != cfg.genotype:
        # ignore: for C = SearchConfig mypy checks this on a class deriving from both, with SearchConfig's fields
        cfg = dataclasses.replace(cfg, genotype=spec)  # type: ignore[call-arg]
    if isinstance(cfg, SearchConfig):
        _check_preset(cfg)
        check_op_set(cfg.ops)
        check_size(cfg.layers, cfg.nodes, len(cfg.ops))
        if cfg.channels % cfg.partial_channels:
            raise ConfigError(f"partial_channels: {cfg.partial_channels} must divide channels ({cfg.channels})")
        if cfg.w_lr_min > cfg.w_lr:
            raise ConfigError(f"w_lr_min: {cfg.w_lr_min} is above w_lr {cfg.w_lr}")
        if cfg.warmup_epochs >= cfg.epochs and cfg.order != "one-level" and cfg.epochs > 1:
            raise ConfigError(f"warmup_epochs: {cfg.warmup_epochs} leaves no architecture steps in {cfg.epochs} epochs "
                              f"(warm-up epochs train the weights only); set it below {cfg.epochs} "
                              f"({option('warmup_epochs', 'N')}; PC-DARTS warms up 15 of its 50 epochs)")
    else:
        if cfg.lr_min > cfg.lr and cfg.lr_schedule == "cosine":   # the step schedule does not read it
            raise ConfigError(f"lr_min: {cfg.lr_min} is above lr {cfg.lr}")
    return cfg


def _known_keys(cls: type) -> list[str]:
    return [f.name for f in fields(cls)]


def from_dict(cls: type[C], values: dict[str, Any], base: C | None = None) -> C:
    """Build a config from `values` over `base` (or the defaults), naming unknown keys."""
    known = _known_keys(cls)
    for key in values:
        if key not in known:
            raise ConfigError(f"unknown config key {key!r}{suggest(key, known)}")
    start = base if base is not None else cls()
    return validate(dataclasses.replace(start, **values))


def search_config(preset: str = "darts", **overrides: Any) -> SearchConfig:
    """A SearchConfig from a preset plus overrides (the preset's values first, then yours)."""
    check_choice("preset", preset, PRESETS)
    return from_dict(SearchConfig, {"preset": preset, **PRESETS[preset], **overrides})


# what each setting changes on top of the TrainConfig defaults (the CIFAR recipe of quark0/darts
# train.py). ImageNet: the DARTS paper, appendix A.2.2 (14 cells, 48 channels, 250 epochs, batch 128,
# lr 0.1 decayed by 0.97 per epoch, weight decay 3e-5) and quark0/darts train_imagenet.py (label
# smoothing 0.1, RandomResizedCrop(224), flip, ColorJitter(0.4, 0.4, 0.4, 0.2); test Resize(256) +
# CenterCrop(224)). That script's argparse defaults (1000 epochs, 50 channels) differ from the paper's;
# the paper's are used.
SETTING_DEFAULTS: dict[str, dict[str, Any]] = {
    "cifar": {},
    "tiny-imagenet": {"dataset": "tiny-imagenet"},
    "imagenet": {"dataset": "imagefolder", "layers": SETTINGS["imagenet"].layers,
                 "channels": SETTINGS["imagenet"].channels, "epochs": 250, "batch_size": 128,
                 "lr": 0.1, "wd": 3e-5, "label_smoothing": 0.1, "cutout": 0, "drop_path": 0.0,
                 "lr_schedule": "step", "lr_gamma": 0.97, "random_resized_crop": 224, "color_jitter": 0.4,
                 "hue_jitter": 0.2},
}


def train_config(setting: str = "cifar", **overrides: Any) -> TrainConfig:
    """A TrainConfig from the setting's defaults plus overrides (the setting's values first, then yours)."""
    check_choice("setting", setting, SETTING_DEFAULTS)
    return from_dict(TrainConfig, {"setting": setting, **SETTING_DEFAULTS[setting], **overrides})


PC_DARTS_DROP_PATH = 0.3   # yuhuixu1993/PC-DARTS train.py, --drop_path_prob


def method_recipe(arch: str, setting: str) -> dict[str, Any]:
    """Where the method's own training of its CIFAR cells differs from DARTS's: a sigmoid (FairDARTS)
    search's cell is trained with drop-path per node, as FairDARTS trained its threshold-discretised
    cells (model.py DCOCell); a PC-DARTS cell with drop-path 0.3 (yuhuixu1993/PC-DARTS train.py,
    drop_path_prob; DARTS: 0.2)."""
    if arch == "sigmoid":
        return {"drop_path_per": "node"}
    if arch == "pc" and setting == "cifar":
        return {"drop_path": PC_DARTS_DROP_PATH}
    return {}


def setting_layers(setting: str) -> int:
    """The cells a setting's network has unless told otherwise (20 for CIFAR, 14 for ImageNet)."""
    return int(SETTING_DEFAULTS.get(setting, {}).get("layers", TrainConfig.layers))


# SearchConfig.arch values whose genotype is read off by `threshold` (the others take the top 2)
THRESHOLD_ARCHS = ("sigmoid",)
# SearchConfig.arch values with sigmoid weights, which FairDARTS's zero-one loss pushes to 0 or 1
ZERO_ONE_ARCHS = ("sigmoid", "dnas")


class Unused(NamedTuple):
    """Why a config value changes nothing, and the field whose value makes it so."""
    why: str
    decided_by: str


def inapplicable(cfg: SearchConfig | TrainConfig) -> dict[str, Unused]:
    """{field: (why, deciding field)} for the fields of a valid `cfg` whose value, whatever it is,
    changes nothing given the others (a first-order search's xi, decided by order): the report marks
    them in its config table, and `ineffective` warns of those set away from their defaults."""
    from .data.loaders import DATASETS

    out = {}
    entry = DATASETS.get(cfg.dataset)
    if entry is not None and not entry.files:
        out["data_dir"] = Unused(f"no files are read for {cfg.dataset}", "dataset")
    if entry is not None and not entry.flip:
        out["flip"] = Unused(f"{cfg.dataset}'s images are never flipped", "dataset")
    if isinstance(cfg, SearchConfig):
        if cfg.order != "second":
            out["xi"] = Unused("only second order takes the unrolled step", "order")
            out["hessian"] = out["fd_eps"] = Unused("only second order takes Hessian-vector products", "order")
        elif cfg.hessian != "fd":
            out["fd_eps"] = Unused("the exact Hessian-vector product takes no finite differences", "hessian")
        if cfg.arch not in THRESHOLD_ARCHS:
            out["threshold"] = Unused("only sigmoid weights are discretised by a threshold; the others keep the "
                                      "top 2", "arch")
        if cfg.order == "second" and cfg.xi == 0:   # w' = w: the Hessian term is xi times a product
            out["hessian"] = out["fd_eps"] = Unused("xi 0 unrolls no step: second order is first order", "xi")
        if cfg.arch not in ZERO_ONE_ARCHS:
            out["zero_one_weight"] = Unused("only sigmoid weights (sigmoid, dnas) take the zero-one loss", "arch")
        if "skip_connect" not in cfg.ops:
            out["skip_dropout"] = out["max_skips"] = Unused("no skip_connect among the ops", "ops")
        if cfg.order == "one-level":
            out["train_portion"] = Unused("one-level learns the weights and alpha from the whole training split",
                                          "order")
    else:
        if cfg.lr_schedule == "cosine":
            out["lr_gamma"] = Unused("the step lr schedule uses it, not the cosine one", "lr_schedule")
        if cfg.lr_schedule == "step":
            out["lr_min"] = Unused("the cosine lr schedule anneals to it, not the step one", "lr_schedule")
    return out


def ineffective(cfg: SearchConfig | TrainConfig) -> list[str]:
    """One line for each value of a valid `cfg` that changes nothing, given the others (a flag typed
    in the belief that it does something); the command line prints them as warnings. Values at their
    defaults are not named; a preset's own are where others make them idle (warm-up epochs that cover a
    1-epoch search, dnas's skip dropout with ops that lack skip_connect)."""
    from .data.loaders import DATASETS

    found = []
    unused = inapplicable(cfg)
    if cfg.data_dir is not None and "data_dir" in unused:
        readers = [n for n, e in DATASETS.items() if e.files]
        named = (f"{option('dataset')} {' | '.join(readers)}" if on_command_line()
                 else f"dataset={' | '.join(map(repr, readers))}")
        hint = f"; name the dataset its files hold: {named}" if cfg.dataset == "digits" else ""
        found.append(f"data_dir: {cfg.data_dir!r} has no effect with {option('dataset', cfg.dataset)} (no files are "
                     f"read{hint})")
    if not cfg.flip and "flip" in unused:
        found.append(f"{option('flip', False)} has no effect with {option('dataset', cfg.dataset)} (its images are "
                     f"never flipped)")
    if isinstance(cfg, SearchConfig):
        if "xi" in unused and cfg.xi is not None:
            found.append(f"xi: {cfg.xi:g} has no effect with {option('order', cfg.order)} (only second order takes "
                         f"the unrolled step)")
        if "hessian" in unused and cfg.hessian != SearchConfig.hessian and unused["hessian"].decided_by == "order":
            found.append(f"hessian: {cfg.hessian!r} has no effect with {option('order', cfg.order)} (only second order "
                         f"takes Hessian-vector products)")
        if "fd_eps" in unused and cfg.fd_eps != SearchConfig.fd_eps and unused["fd_eps"].decided_by != "xi":
            deciding = unused["fd_eps"].decided_by
            found.append(f"fd_eps: {cfg.fd_eps:g} has no effect with {option(deciding, getattr(cfg, deciding))} "
                         f"({unused['fd_eps'].why}; {option('hessian', 'fd')} with {option('order', 'second')} "
                         f"takes them)")
        if cfg.order == "second" and cfg.xi == 0:
            found.append(f"xi: 0 with {option('order', 'second')} is first order (the unrolled step w' = w - 0 * "
                         f"grad is w itself; {option('order', 'first')} says so)")
        if "zero_one_weight" in unused and cfg.zero_one_weight != SearchConfig.zero_one_weight:
            found.append(f"zero_one_weight: {cfg.zero_one_weight:g} has no effect with {option('arch', cfg.arch)} "
                         f"(the zero-one loss pushes sigmoid weights to 0 or 1: {option('arch', 'sigmoid')} or dnas)")
        for name in ("skip_dropout", "max_skips"):
            if name in unused and getattr(cfg, name) != getattr(SearchConfig, name):
                found.append(f"{name}: {getattr(cfg, name):g} has no effect: skip_connect is not among the ops")
        if "threshold" in unused and cfg.threshold != SearchConfig.threshold:
            found.append(f"threshold: {cfg.threshold:g} has no effect with {option('arch', cfg.arch)} (it "
                         f"discretises sigmoid weights: {option('arch', 'sigmoid')}, the fair-darts preset; the "
                         f"others keep the top 2)")
        if "train_portion" in unused and cfg.train_portion != SearchConfig.train_portion:
            found.append(f"train_portion: {cfg.train_portion:g} has no effect with {option('order', 'one-level')} "
                         f"(the weights and alpha both learn from the whole training split)")
        if cfg.warmup_epochs >= cfg.epochs:
            found.append(f"warmup_epochs: {cfg.warmup_epochs} warm-up epochs cover all {cfg.epochs} epochs: the "
                         f"architecture weights are never updated, and the genotype is read off their random "
                         f"initialisation")
    else:
        if "lr_gamma" in unused and cfg.lr_gamma != TrainConfig.lr_gamma:
            found.append(f"lr_gamma: {cfg.lr_gamma:g} has no effect with the cosine lr schedule "
                         f"({option('lr_schedule', 'step')} uses it)")
        if "lr_min" in unused and cfg.lr_min != TrainConfig.lr_min:
            found.append(f"lr_min: {cfg.lr_min:g} has no effect with the step lr schedule "
                         f"({option('lr_schedule', 'cosine')} anneals to it)")
    return found


def to_dict(cfg: SearchConfig | TrainConfig) -> dict[str, Any]:
    d = dataclasses.asdict(cfg)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
