"""Search, discretise, train the discovered network, evaluate: one command, one run folder.

RUN_DIR/config.json holds the pipeline's whole configuration, written (atomically) before anything
runs: {"command": "pipeline", "search": {SearchConfig}, "train": {TrainConfig}}, less the values the
pipeline sets itself (the run folders; the training's dataset, data folder, image size and genotype
come from the search). RUN_DIR/search/ and RUN_DIR/train/ are ordinary run folders;
RUN_DIR/summary.json holds the table and marks the pipeline complete. `run_pipeline(..., resume=True)`
continues whichever stage was not finished; a complete pipeline only reports its summary, unless its
training is asked for more epochs than it ran (`diffnas run --resume RUN --train-epochs N`).

A stage resumed on its own with another total (`diffnas search --resume RUN/search --epochs 6`) records
it in its own config.json only; the pipeline then goes on with that total (`stage_epochs`), and a
training changed so after the summary is trained on to it and summarised again. A search changed after
its genotype was trained is refused: the training and the summary belong to the earlier genotype.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from . import config as config_lib
from . import config_file
from . import distributed, recovery
from . import genotype as genotype_lib
from . import notices as notices_lib
from .atomic import atomic_write_bytes
from .config import SearchConfig, TrainConfig, method_recipe
from .config import train_config
from .data.datasets import reused_datasets
from .device import resolve_device
from .errors import CheckpointError, ConfigError
from .loop import check_saved_data_folder, default_run_dir
from .notices import option, resume_call, say, shell, to_run, train_call
from .runfolder import (check_resumed_dir, check_run_dir, missing_folders, refuse_existing_run, refuse_in_use,
                        remove_empty_folders)
from .runlog import coverage, read_rows
from .search import RESUMABLE as SEARCH_RESUMABLE
from .search import SearchResult, search
from .signals import Terminated
from .train import RESUMABLE as TRAIN_RESUMABLE
from .train import TrainResult, train

# TrainConfig fields the pipeline sets itself (from the search, or the run folder): never in "train"
DERIVED_TRAIN = ("run_dir", "genotype", "dataset", "data_dir", "image_size")
# where a bad training value of a pipeline is: its config file's training table or its flags
TRAIN_VALUES = "train (the [train] table or --train-* flags)"
# what the training takes from the search's values unless its own values set it
SHARED = ("device", "plots", "precision", "compile", "deterministic", "nan_rollback", "memory_format", "flip")


@dataclass
class PipelineResult:
    run_dir: Path
    search: Optional[SearchResult]       # None when the pipeline was complete before this call
    train: Optional[TrainResult]         # None when the search was interrupted, or as above
    summary: dict[str, Any]
    exit_code: int = 0                   # 128 + signum: stopped before the pipeline was complete (a stop
    # as the search finished too: the search is complete, the training has not run)
    genotype: Optional[genotype_lib.AnyGenotype] = None   # what the search found
    complete_before: bool = False        # resumed a finished pipeline: nothing ran
    late_stop: int = 0                   # 128 + signum: a stop as the training finished (it is complete)


def read_config_file(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The (search, train) values of a `diffnas run` config file: search keys at the top level or in a
    "search" table, training keys (TrainConfig's names: epochs, layers, ...) in a "train" table. A
    pipeline's config.json is such a file; so is a search run's config.json (a train run's is refused)."""
    raw = config_file.read_file(path)
    search_values, train_values = split_config(config_file.for_command(raw, "run", path), str(path))
    if "command" in raw:   # a run folder's config.json (one edited to hold a search table's run_dir): not this run's
        search_values.pop("run_dir", None)
    config_lib.check_values(SearchConfig, search_values, str(path))
    config_lib.check_values(TrainConfig, train_values, f"{path}: train")
    return search_values, train_values


def split_config(values: dict[str, Any], where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    values = dict(values)
    values.pop("command", None)
    search_values, train_values = values.pop("search", {}), values.pop("train", {})
    for name, table in (("search", search_values), ("train", train_values)):
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: {name}: expected a table of config values, got {table!r}")
    search_fields = {f.name for f in dataclasses.fields(SearchConfig)}
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for key in values:
        if key not in search_fields and (key.startswith("train_") or key in train_fields):
            name = key[len("train_"):] if key.startswith("train_") else key
            raise ConfigError(f"{where}: {key}: training values go in a \"train\" table "
                              f"(JSON \"train\": {{\"{name}\": ...}}, TOML [train], YAML train:)")
    both = [k for k in search_values if k in values and values[k] != search_values[k]]
    if both:   # as a key given twice in one table is refused
        raise ConfigError(f"{where}: {both[0]}: given at the top level ({values[both[0]]!r}) and in the \"search\" "
                          f"table ({search_values[both[0]]!r}); keep one")
    for key in train_values:
        if key in DERIVED_TRAIN:
            raise ConfigError(f"{where}: train.{key}: a pipeline sets it (the training uses the search's "
                              f"data and the genotype it found, in RUN/train)")
    return {**values, **search_values}, dict(train_values)


def stage_train_config(search_cfg: SearchConfig, values: dict[str, Any]) -> TrainConfig:
    """The training's config: the setting's defaults, the search's SHARED values, the method's own
    training recipe (`method_recipe`), then `values`."""
    recipe = method_recipe(search_cfg.arch, values.get("setting", "cifar"))
    values = {**{k: getattr(search_cfg, k) for k in SHARED}, **recipe, **values}
    try:
        return train_config(values.pop("setting", "cifar"), **values)
    except ConfigError as e:   # say where the bad value is: the training's table or --train-* flags
        raise ConfigError(f"{TRAIN_VALUES}: {e}") from None


def pipeline_config(search_cfg: SearchConfig, train_cfg: TrainConfig) -> dict[str, Any]:
    """What RUN_DIR/config.json holds; `read_config_file` reads it back."""
    search_values = {k: v for k, v in config_lib.to_dict(search_cfg).items() if k != "run_dir"}
    train_values = {k: v for k, v in config_lib.to_dict(train_cfg).items() if k not in DERIVED_TRAIN}
    return {"command": "pipeline", "search": search_values, "train": train_values}


def saved_config(run_dir: str | Path, quiet: bool = False) -> tuple[dict[str, Any], Optional[dict[str, Any]]]:
    """The (search, train) values a pipeline folder was started with, with the epochs a stage was
    since resumed to on its own (`stage_epochs`; one notice each unless `quiet`). Folders made before
    pipelines saved their configuration give the search's (and the training's, if it started) or train None."""
    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if path.is_file():
        search_values, train_values = _read_pipeline_config(run_dir)
        changed = stage_epochs(run_dir, search_values, train_values)
        if "search" in changed and (run_dir / "train").exists():
            was, now = changed["search"]
            train = to_run(("diffnas", "train", "--genotype", run_dir / "search"), train_call(run_dir / "search"))
            raise ConfigError(f"epochs: {run_dir / 'search'} was resumed on its own to {now} epochs after the "
                              f"pipeline trained the genotype of its {was}; {run_dir / 'train'} and the summary "
                              f"belong to that genotype: train the new one with "
                              f"`{train}`")
        for stage, (was, now) in changed.items():
            (search_values if stage == "search" else train_values)["epochs"] = now
            if distributed.is_main() and not quiet:
                say(f"diffnas: {run_dir / stage} was resumed on its own with {now} epochs (the pipeline's "
                    f"config.json says {was}); the pipeline goes on with {now}")
        return search_values, train_values
    legacy = run_dir / "search" / "config.json"
    check_resumed_dir(run_dir)
    if not legacy.is_file():
        raise CheckpointError(f"{run_dir}: no config.json, not a pipeline run folder")
    search_values = {k: v for k, v in config_file.read_file(legacy).items() if k not in ("command", "run_dir")}
    train_path = run_dir / "train" / "config.json"
    if not train_path.is_file():
        return search_values, None
    return search_values, {k: v for k, v in config_file.read_file(train_path).items()
                           if k != "command" and k not in DERIVED_TRAIN}


def _read_pipeline_config(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    path = run_dir / "config.json"
    saved = config_file.read_file(path)
    command = saved.get("command")
    if command in ("search", "train"):
        raise CheckpointError(f"{run_dir}: a {command} run folder, not a pipeline; continue it with "
                              f"`{resume_call(command, run_dir)}`")
    if command != "pipeline":
        raise CheckpointError(f"{path}: not a pipeline's config (no \"command\": \"pipeline\")")
    return split_config(saved, str(path))


def stage_epochs(run_dir: Path, search_values: dict[str, Any],
                 train_values: Optional[dict[str, Any]]) -> dict[str, tuple[Any, int]]:
    """{"search" | "train": (the pipeline's epochs, the stage's)} for each stage whose config.json
    records another total than the pipeline's values and was written after RUN_DIR/config.json.

    recovery.continue_run writes a stage's new total into the stage's config.json: written after the
    pipeline's, it is the latest total asked for. One written before it is the older word: a `diffnas
    run --resume RUN --epochs N` stopped before its search recorded N leaves N in the pipeline's."""
    written = (run_dir / "config.json").stat().st_mtime_ns
    changed = {}
    for stage, values in (("search", search_values), ("train", train_values)):
        path = run_dir / stage / "config.json"
        if values is None or not path.is_file() or path.stat().st_mtime_ns <= written:
            continue
        epochs = config_file.read_file(path).get("epochs")
        if isinstance(epochs, int) and epochs != values.get("epochs"):
            changed[stage] = (values.get("epochs"), epochs)
    return changed


def refuse_existing(run_dir: str | Path) -> None:
    """ConfigError when `run_dir` holds a run already (a new pipeline never writes into one), or other
    files (runfolder.refuse_other_files)."""
    refuse_existing_run(Path(run_dir), "pipeline", markers=("config.json", "checkpoint.pt", "search", "train"))


Saved = tuple[dict[str, Any], Optional[dict[str, Any]]]   # what `saved_config` reads


def check_resume(run_dir: Path, saved: Saved, search_cfg: SearchConfig, train_cfg: TrainConfig) -> None:
    """ConfigError for what a resumed pipeline cannot take (each stage's own resume refuses the rest):
    other search epochs once the training of its genotype has started (or the pipeline is complete),
    another training setting (its recipe is among the saved values), fewer training epochs than a
    complete pipeline trained. `saved`: the pipeline's `saved_config`."""
    saved_search, saved_train = saved
    where = f"the pipeline in {run_dir}"
    complete = (run_dir / "summary.json").is_file()
    if search_cfg.epochs != saved_search.get("epochs", search_cfg.epochs):
        if complete:
            raise ConfigError(f"{option('epochs')}: {where} is complete; start a new pipeline to search longer")
        if (run_dir / "train").exists():
            done = len(read_rows(run_dir / "train" / "metrics.jsonl"))
            of = f" of {saved_train['epochs']}" if saved_train and "epochs" in saved_train else ""
            raise ConfigError(f"{option('epochs')}: the search of {where} is finished and the training of its "
                              f"genotype has started ({done}{of} epochs done); start a new pipeline to search longer")
    if saved_train is None:
        return
    with notices_lib.stage("train"):   # named as the reader sets them: --train-epochs, [train] setting
        saved_setting = saved_train.get("setting", "cifar")
        if train_cfg.setting != saved_setting and not (run_dir / "train").exists():   # a started one: train's resume
            raise ConfigError(f"{option('setting')}: {train_cfg.setting!r} given, but {where} trains under the "
                              f"{saved_setting!r} setting, whose values it saved; start a new pipeline for "
                              f"another setting")
        trained = saved_train.get("epochs")
        if complete and (run_dir / "train").exists() and isinstance(trained, int) and train_cfg.epochs < trained:
            raise ConfigError(f"{option('epochs')}: {train_cfg.epochs} given, but {where} trained its genotype for "
                              f"{trained} epoch{'s' if trained != 1 else ''}; on resume the training can only be "
                              f"extended, not shortened")


def stage_given(saved: Saved, search_cfg: SearchConfig,
                train_cfg: TrainConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The fields of each stage's config a resumed pipeline passes on as given: every resumable one,
    but bn_groups only when it differs from what the pipeline saved (`saved`: its `saved_config`). A
    stage saved the value it resolved (0, auto, becomes 2 under torchrun with 2 CPU processes); the
    pipeline's auto again would resolve anew for this launch's processes and change the stage's maths
    without a word."""
    saved_search, saved_train = saved

    def given(resumable: Sequence[str], cfg: Any, saved: Optional[dict[str, Any]]) -> tuple[str, ...]:
        same = saved is not None and cfg.bn_groups == saved.get("bn_groups", 0)
        return tuple(k for k in resumable if not (k == "bn_groups" and same))

    return given(SEARCH_RESUMABLE, search_cfg, saved_search), given(TRAIN_RESUMABLE, train_cfg, saved_train)


def check_training_data(train_cfg: TrainConfig, saved_bn_groups: Optional[int] = None) -> int:
    """The training's checks of its data (`train.check_data`: the setting's image size, the batch
    against the training split), made before the search: a value that cannot train fails now, not
    after the search (the search and the training take the dataset read here: `reused_datasets`).
    Returns the training's bn_groups resolved for this launch's processes, which the pipeline saves:
    its auto resolved anew on a resume with another number of processes changed the training's
    maths without a word (2 torchrun CPU processes: per-half statistics; resumed in one: the whole
    batch's). `saved_bn_groups`: a resume's saved value, which falls back to per-rank statistics
    with a warning where this launch cannot realise it, as a stage's own resume does."""
    from .data import load_dataset
    from .train import check_data

    ds = load_dataset(train_cfg.dataset, train_cfg.data_dir, image_size=train_cfg.image_size)
    with notices_lib.stage("train"):   # its messages name the pipeline's flags for the training
        check_data(train_cfg, ds)
        # under torchrun: a batch that does not split over the processes, or batch-norm groups they
        # cannot realise (it failed once the search was done)
        return distributed.bn_groups_for(train_cfg.bn_groups, train_cfg.batch_size,
                                         distributed.device_for(resolve_device(train_cfg.device)),
                                         resumed=saved_bn_groups is not None and saved_bn_groups == train_cfg.bn_groups)


def run_pipeline(search_cfg: SearchConfig, train_cfg: TrainConfig, run_dir: Optional[str | Path] = None, *,
                 resume: bool = False, notices: Optional[Sequence[str]] = None,
                 raise_on_stop: bool = True) -> PipelineResult:
    """Search with `search_cfg`, then train the genotype found with `train_cfg` (its DERIVED_TRAIN
    values are set here), in `run_dir` (default runs/run-DATE). resume=True continues the pipeline in
    `run_dir` with these configs (the caller builds them from `saved_config`). `notices` go to stderr
    once the search has started (search's `notices`: the command line's lines for both configs; None, a
    call from Python: each stage `warnings.warn`s its own values that change nothing as it starts).
    On resume the stages take every resumable value of these configs, defaults included: they are
    the pipeline's whole word (its saved values, a stage's own new epochs, what was typed now).
    raise_on_stop: as search's and train's (a stage stopped by Ctrl-C raises KeyboardInterrupt once
    it has saved and said how to resume the pipeline); False returns the result with its exit_code.
    The data is read once for the training's checks, the search and the training (`reused_datasets`)."""
    if not (isinstance(search_cfg, SearchConfig) and isinstance(train_cfg, TrainConfig)):
        raise ConfigError(f"run_pipeline: expected a SearchConfig and a TrainConfig, in that order "
                          f"(diffnas.search_config(...), diffnas.train_config(...)), got {type(search_cfg).__name__} "
                          f"and {type(train_cfg).__name__}")
    if isinstance(run_dir, str) and not run_dir.strip():
        raise ConfigError("run_dir: an empty value; leave it out for the default runs/run-DATE")
    if not resume:   # as a config file's [train] table refuses them (a resume's come from the run's files)
        if search_cfg.run_dir is not None:   # it was put aside for RUN/search without a word
            raise ConfigError(f"search_cfg.run_dir: a pipeline sets it (RUN/search); name the pipeline's folder "
                              f"with run_pipeline(..., run_dir={search_cfg.run_dir!r})")
        setting = train_config(train_cfg.setting)
        for key in DERIVED_TRAIN:
            if getattr(train_cfg, key) != getattr(setting, key):
                raise ConfigError(f"train_cfg.{key}: a pipeline sets it (the training uses the search's data and "
                                  f"the genotype it found, in RUN/train); leave it at the setting's default")
    with reused_datasets():
        return _run_pipeline(search_cfg, train_cfg, run_dir, resume=resume, notices=notices,
                             raise_on_stop=raise_on_stop)


def _run_pipeline(search_cfg: SearchConfig, train_cfg: TrainConfig, run_dir: Optional[str | Path], *,
                  resume: bool, notices: Optional[Sequence[str]], raise_on_stop: bool) -> PipelineResult:
    distributed.setup()
    if resume and run_dir is None:
        raise ConfigError("run_dir: resuming a pipeline needs its folder")
    run_dir = Path(run_dir) if run_dir else default_run_dir("run")
    s_dir, t_dir = run_dir / "search", run_dir / "train"
    search_cfg = dataclasses.replace(search_cfg, run_dir=str(s_dir))
    train_cfg = config_lib.from_dict(TrainConfig, {"run_dir": str(t_dir), "dataset": search_cfg.dataset,
                                                   "data_dir": search_cfg.data_dir,
                                                   "image_size": search_cfg.image_size,
                                                   "genotype": str(s_dir / "genotype.json")}, base=train_cfg)
    stale_summary = False
    search_given: tuple[str, ...] = ()
    train_given: tuple[str, ...] = ()
    saved: Optional[Saved] = None
    if resume:
        if run_dir.is_dir():   # a stage another process writes: refused before anything is said of the others
            refuse_in_use(run_dir)
        saved = saved_config(run_dir, quiet=True)   # read once, for both
        search_given, train_given = stage_given(saved, search_cfg, train_cfg)
        check_resume(run_dir, saved, search_cfg, train_cfg)
    if resume and (run_dir / "summary.json").is_file():
        t_config = t_dir / "config.json"
        trained = config_file.read_file(t_config).get("epochs") if t_config.is_file() else None
        extended = (run_dir / "config.json").is_file() and "train" in stage_epochs(run_dir,
                                                                                   *_read_pipeline_config(run_dir))
        if not (extended or (isinstance(trained, int) and train_cfg.epochs > trained)):
            return _complete(run_dir)
        # more training asked for now (--train-epochs), or the training was resumed on its own to
        # another total after the summary was written: the summary is of the earlier training; train
        # on, and from when the training goes on until the new summary, not complete
        stale_summary = True
    check_run_dir(run_dir, "resume" if resume else "run_dir")   # a file in the way: one line, before anything is made
    if not resume:
        refuse_existing(run_dir)
    for cfg in (search_cfg, train_cfg):   # a device this machine lacks: refused before config.json says it
        resolve_device(cfg.device)
    if resume and search_cfg.data_dir and (run_dir / "config.json").is_file() \
            and _read_pipeline_config(run_dir)[0].get("data_dir") == search_cfg.data_dir:
        check_saved_data_folder(search_cfg.dataset, Path(search_cfg.data_dir), run_dir)   # the data moved: said so
    if not (t_dir / "config.json").is_file():   # the training's bn_groups, resolved once (check_training_data)
        saved_groups = saved[1].get("bn_groups") if saved is not None and saved[1] is not None else None
        train_cfg = config_lib.from_dict(TrainConfig, {"bn_groups": check_training_data(train_cfg, saved_groups)},
                                         base=train_cfg)
    distributed.barrier()   # every rank has looked at the folder before rank 0 writes into it
    created = missing_folders(run_dir)
    if distributed.is_main():
        run_dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(pipeline_config(search_cfg, train_cfg), indent=1) + "\n"
        atomic_write_bytes(run_dir / "config.json", text.encode())

    try:
        s = search(search_cfg, resume=s_dir if (s_dir / "config.json").is_file() else None, pipeline=run_dir,
                   notices=notices, given=search_given, raise_on_stop=False)
    except BaseException:
        if not resume and not s_dir.exists() and distributed.is_main():   # it never started: leave no folder
            (run_dir / "config.json").unlink(missing_ok=True)
            remove_empty_folders(created)
        raise
    if s.interrupted:   # the search said how to go on: `diffnas run --resume RUN_DIR`
        if raise_on_stop:
            recovery.raise_stop(s.exit_code)
        return PipelineResult(run_dir, s, None, {}, s.exit_code, s.genotype)
    if s.late_stop:   # Ctrl-C or SIGTERM once the search was done: complete and saved, no training now
        if distributed.is_main():
            say(f"diffnas: stopped after the search (it is complete and saved); resume the pipeline with: "
                f"{shell('diffnas', 'run', '--resume', run_dir)}")
        if raise_on_stop:
            recovery.raise_stop(s.late_stop)
        return PipelineResult(run_dir, s, None, {}, s.late_stop, s.genotype)
    try:   # from the search's end: a stop before the training's loop is said with the pipeline's resume
        genotype = genotype_lib.load(str(s_dir / "genotype.json"))
        if stale_summary and distributed.is_main():   # the search has resumed fine: the training goes on now
            (run_dir / "summary.json").unlink(missing_ok=True)
        started = (t_dir / "config.json").is_file()
        with notices_lib.stage("train"):   # its messages name the pipeline's flags for the training (--train-epochs)
            t = train(train_cfg, genotype, resume=t_dir if started else None,
                      pipeline=run_dir, notices=None if notices is None else (),   # the command line's said them
                      given=train_given, raise_on_stop=False)
    except (KeyboardInterrupt, Terminated):   # before the training's loop could say how to go on (reading data)
        if distributed.is_main():
            when = ("before the training started" if not (t_dir / "config.json").is_file()
                    else "while the training set up")
            say(f"diffnas: stopped {when} (the search is complete and saved); resume the "
                f"pipeline with: {shell('diffnas', 'run', '--resume', run_dir)}")
        raise
    if t.exit_code:   # interrupted; the training said how to go on
        if raise_on_stop:
            recovery.raise_stop(t.exit_code)
        return PipelineResult(run_dir, s, t, {}, t.exit_code, genotype)
    # each stage's cost in hours of the device it ran on (a [train] table may name another device), times
    # the processes that ran it (torchrun: 4 GPUs for an hour are 4 GPU-hours)
    device, train_device = resolve_device(search_cfg.device).type, resolve_device(train_cfg.device).type
    summary = {
        "test_error": 1 - t.test_acc, "test_acc": t.test_acc, "params_m": t.params / 1e6,
        # what the test metrics cover: fewer images than the test split when train.max_steps caps them
        "test_images": t.test_images, "test_images_total": t.test_images_total,
        f"search_{_unit(device)}_hours": s.device_seconds / 3600,
        f"train_{_unit(train_device)}_hours": t.device_seconds / 3600,
        "device": device, "train_device": train_device, "preset": search_cfg.preset, "dataset": search_cfg.dataset,
        "genotype": genotype.to_dict(),
    }
    if distributed.is_main():
        atomic_write_bytes(run_dir / "summary.json", (json.dumps(summary, indent=1) + "\n").encode())
    if t.late_stop and raise_on_stop:   # complete, but a script's next line must not run
        recovery.raise_stop(t.late_stop)
    return PipelineResult(run_dir, s, t, summary, 0, genotype, late_stop=t.late_stop)


def _complete(run_dir: Path) -> PipelineResult:
    path = run_dir / "summary.json"
    try:
        summary = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: unreadable ({str(e).splitlines()[0][:200]})") from None
    if not isinstance(summary, dict):
        raise CheckpointError(f"{path}: not a pipeline summary")
    genotype = genotype_lib.load(str(run_dir / "search" / "genotype.json"))
    return PipelineResult(run_dir, None, None, summary, 0, genotype, complete_before=True)


def _unit(device: str) -> str:
    """What a stage's cost is counted in: "cpu" (hours) on the CPU, else "gpu" (CUDA, MPS, XPU: the
    accelerators `device.py` runs on)."""
    return "cpu" if device == "cpu" else "gpu"


def _cost(hours: float, unit: str) -> str:
    """"0.5000 GPU-hours"; under a tenth of an hour with its seconds too (a dry run's
    "0.0000 CPU-hours" alone would say nothing): "0.0021 CPU-hours (7.6 s)"."""
    return f"{hours:.4f} {unit.upper()}-hours" + (f" ({hours * 3600:.1f} s)" if hours < 0.1 else "")


def summary_table(summary: dict[str, Any]) -> str:
    # the unit the summary was written in: a summary from before MPS/XPU counted in GPU-hours has CPU-hours
    search_unit = next((u for u in ("gpu", "cpu") if f"search_{u}_hours" in summary), _unit(summary["device"]))
    train_unit = next((u for u in ("gpu", "cpu") if f"train_{u}_hours" in summary),
                      _unit(summary.get("train_device", summary["device"])))   # summaries before it: one device
    covered = coverage(summary.get("test_images", 0), summary.get("test_images_total", 0), "test")
    rows = [("test error", f"{100 * summary['test_error']:.2f} %{covered}"),
            ("params", f"{summary['params_m']:.3f} M"),
            ("search cost", _cost(summary[f"search_{search_unit}_hours"], search_unit)),
            ("train cost", _cost(summary[f"train_{train_unit}_hours"], train_unit))]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
