"""Evaluate a trained network: test accuracy and error, parameters, multiply-adds.

The network is rebuilt from what the training run saved in its checkpoint (config, genotype, image
shape, classes), so evaluation needs only the checkpoint and the dataset files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import checkpoint, tuning
from . import config as config_lib
from . import config_file
from . import genotype as genotype_lib
from .config import TrainConfig
from .counting import count_madds, count_params
from .data import Augment, Batches, Split, load_dataset
from .data.datasets import check_classes, data_folder
from .data.loaders import DATASETS
from .data.types import TrainedOn
from .device import resolve_device
from .errors import CheckpointError, ConfigError, DataError, DiffnasError
from .notices import option, resume_call, say, to_run, train_call
from .network import build_network
from .runfolder import run_command
from .runlog import progress_bar
from .scoring import score_network


def _refuse_other_run_files(path: Path) -> None:
    """One line for what is not a training checkpoint but is often given for one: a search run's
    checkpoint (its folder's config.json says "search") or a JSON file such as genotype.json."""
    if path.name == "checkpoint.pt" and path.is_file() and run_command(path.parent) == "search":
        train = to_run(("diffnas", "train", "--genotype", path.parent),
                       train_call(path.parent))
        if not (path.parent / "genotype.json").is_file():   # stopped before its end: no genotype to train yet
            finish = resume_call("search", path.parent)
            raise CheckpointError(f"{path.parent}: a search run that has not finished; evaluate trains nothing: "
                                  f"finish it with `{finish}`, then "
                                  f"train its genotype with `{train}` and evaluate that run")
        raise CheckpointError(f"{path.parent}: a search run; evaluate trains nothing: train its genotype with "
                              f"`{train}`, then evaluate that run")
    if path.is_file() and path.suffix == ".json":
        raise CheckpointError(f"{path}: a JSON file, not a checkpoint; evaluate takes a training run folder or "
                              f"its checkpoint.pt")


def _recorded_data_dir(run: Path, saved: str | None) -> str | None:
    """The data folder the training run's config.json names (where a resume that named the folder anew
    recorded it), else `saved`, the checkpoint's."""
    try:
        recorded = config_file.read_file(run / "config.json")
    except DiffnasError:   # a checkpoint copied out of its run folder: the checkpoint's own
        return saved
    value = recorded.get("data_dir") if recorded.get("command") == "train" else None
    return value if isinstance(value, str) else saved


_SCORED_WRONG = "its outputs would be scored against the wrong labels"


def _test_data(cfg: TrainConfig, folder: str | Path | None, state: dict[str, Any]
               ) -> tuple[Split, tuple[int, int, int], int, tuple[float, ...], tuple[float, ...]]:
    """(test split, image shape, classes, mean, std) to score a training checkpoint on. The
    normalisation is the one the network trained with (checkpoints before it was saved: the dataset's
    own). The test files are read alone where the dataset can (`DatasetEntry.load_test`): an
    unreadable or missing training file must not stop the scoring."""
    trained_names = tuple(state.get("class_names") or ())   # checkpoints before the field: not checked
    saved_stats = "mean" in state and "std" in state
    entry = DATASETS.get(cfg.dataset)
    if saved_stats and entry is not None and entry.load_test is not None:
        # CIFAR's test_batch, MNIST's t10k files, SVHN's test_32x32.mat, Tiny-ImageNet's val/, an image
        # folder's test/ (labelled by the trained class names)
        root = data_folder(cfg.dataset, folder)
        only = entry.load_test(root, cfg.image_size, TrainedOn(trained_names, int(state["input_shape"][0])))
        if only is not None:
            check_classes(cfg.dataset, only.class_names, trained_names, _SCORED_WRONG)
            c, h, w = only.split.images.shape[1:]
            return only.split, (c, h, w), only.classes, tuple(state["mean"]), tuple(state["std"])
    ds = load_dataset(cfg.dataset, folder, image_size=cfg.image_size)
    check_classes(cfg.dataset, ds.class_names, trained_names, _SCORED_WRONG)
    if saved_stats:
        return ds.test, ds.shape, ds.classes, tuple(state["mean"]), tuple(state["std"])
    return ds.test, ds.shape, ds.classes, ds.mean, ds.std


def _checkpoint_file(path: Path) -> Path:
    """The checkpoint.pt that `evaluate` is given: the file, the training run folder holding it, or a
    `diffnas run` folder's train/checkpoint.pt; a CheckpointError that says what the path is instead
    (missing, a training not saved yet, a folder of runs)."""
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or folder (evaluate takes a training run folder or its "
                              f"checkpoint.pt)")
    if path.is_dir() and not (path / "checkpoint.pt").exists() and not (path / "search").is_dir():
        if run_command(path) == "train":   # stopped before its first epoch ended
            go_on = resume_call("train", path)
            raise CheckpointError(f"{path}: a training run that has not saved a checkpoint yet (one is saved at the "
                                  f"end of each epoch); go on with `{go_on}`")
        # a folder of runs: the training runs and the pipelines in it
        inside = sorted({p.parent for p in path.glob("*/checkpoint.pt") if run_command(p.parent) == "train"}
                        | {p.parent for p in path.glob("*/summary.json") if run_command(p.parent) == "pipeline"})
        shown = f"; it holds runs: {', '.join(map(str, inside[:3]))}{', ...' if len(inside) > 3 else ''}"
        raise CheckpointError(f"{path}: not a training run folder (no checkpoint.pt)"
                              + (shown if inside else ""))
    if path.is_dir():
        # a `diffnas run` folder holds the training run in train/
        pipeline = not (path / "checkpoint.pt").exists() and (path / "search").is_dir()
        if pipeline and not (path / "train" / "checkpoint.pt").is_file():
            raise CheckpointError(f"{path}: a pipeline whose training has not started or saved a checkpoint yet; "
                                  f"continue it with `{resume_call('run', path)}`")
        path = path / "train" / "checkpoint.pt" if pipeline else path / "checkpoint.pt"
    return path


def _saved_training(path: Path) -> tuple[dict[str, Any], TrainConfig, genotype_lib.AnyGenotype]:
    """The training checkpoint at `path`, its config and its genotype; a CheckpointError when it is not
    a training's (another run's file, a piece missing or unreadable)."""
    _refuse_other_run_files(path)
    state = checkpoint.load(path)
    missing = [k for k in ("model", "config", "genotype", "input_shape", "classes") if k not in state]
    if missing:
        raise CheckpointError(f"{path}: not a training checkpoint (it lacks {', '.join(missing)})")
    saved = {k: v for k, v in state["config"].items() if k != "command"}
    try:
        cfg = config_lib.from_dict(TrainConfig, saved)
        genotype = genotype_lib.from_dict(state["genotype"])
    except DiffnasError as e:
        raise CheckpointError(f"{path}: its config or genotype is unreadable ({e})") from None
    return state, cfg, genotype


def evaluate(checkpoint_path: str | Path, data_dir: str | Path | None = None, device: str = "auto",
             progress: bool = True, image_size: int | None = None, batch_size: int | None = None) -> dict[str, Any]:
    """Test metrics of the checkpoint of a training run (a checkpoint.pt, the run folder holding one,
    or a `diffnas run` folder, whose training run is train/). progress: a bar on stderr while the
    test split is scored (10,000 CIFAR images take some 20 s on a CPU). image_size: decode image files
    (imagefolder, tiny-imagenet) as N x N (shorter side resized, centre crop), for test images of
    another size than the training's; None: as the run decoded them. batch_size: test images per batch
    (None: the training's); the scores do not depend on it but for float rounding (eval mode).

    Returns test_acc, test_error (1 - acc), test_loss, params and aux_params (counts), params_m
    (millions, without the auxiliary head), madds (one image at the dataset's size), and what was
    evaluated (checkpoint, dataset, setting, genotype; epoch: the epochs done, of `epochs`, and step:
    the steps done of the next; finished: False for a training stopped before its end).
    """
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ConfigError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
    path = _checkpoint_file(Path(checkpoint_path))
    state, cfg, genotype = _saved_training(path)
    dev = resolve_device(device)
    if image_size is not None:
        cfg = config_lib.from_dict(TrainConfig, {"image_size": image_size}, base=cfg)

    # the run's own image_size (0 for runs made before the field existed: the files' own size); its data
    # folder as its config.json says it now (a resume may have named it anew after the data moved)
    folder = data_dir if data_dir is not None else _recorded_data_dir(path.parent, cfg.data_dir)
    reads_files = cfg.dataset in DATASETS and DATASETS[cfg.dataset].files   # digits, synthetic: data_dir unused
    if data_dir is None and folder is not None and reads_files and not Path(folder).expanduser().exists():
        raise DataError(f"{cfg.dataset}: {folder}, the folder the network was trained on, is not there (moved or "
                        f"deleted?); pass {option('data_dir', 'DIR')} with the test images")
    if data_dir is not None and not reads_files:   # as search and train warn it
        say(f"diffnas: warning: data_dir: {str(data_dir)!r} has no effect: the network was trained on "
            f"{cfg.dataset}, which reads no files")
    test, shape, classes, mean, std = _test_data(cfg, folder, state)
    expected = tuple(state["input_shape"])
    if shape != expected or classes != state["classes"]:
        entry = DATASETS.get(cfg.dataset)
        resizable = entry is not None and entry.files and not entry.side and expected[1] == expected[2]
        hint = (f"; decode them at the trained size with {option('image_size', expected[1])}"
                if resizable and classes == state["classes"] and shape[0] == expected[0] else "")
        raise DataError(f"the network was trained on {'x'.join(map(str, expected))} images of {state['classes']} "
                        f"classes; {cfg.dataset} here has {'x'.join(map(str, shape))} images of {classes} "
                        f"classes{hint}")
    model = build_network(genotype, cfg.setting, cfg.channels, cfg.layers, classes, shape[0],
                          auxiliary=cfg.auxiliary > 0)
    checkpoint.restore(model, state["model"], "model", path)   # one line when they do not fit
    model.to(dev)
    tuning.apply_memory_format(model, cfg.memory_format, dev)   # as the run tested it

    # the training run's test transform (resize + centre crop after a random-resized-crop training)
    batches = Batches(test, min(batch_size or cfg.batch_size, len(test)), mean, std, dev,
                      augment=Augment.evaluation(cfg.random_resized_crop), shuffle=False, drop_last=False)
    bar = progress_bar(range(len(batches)), len(batches), "evaluate") if progress else None
    scored = score_network(model, batches, bar=bar)
    assert scored is not None   # None only when a `stop` abandons the pass
    loss, acc = scored
    params = count_params(model)
    epoch, step = int(state.get("epoch", 0)), int(state.get("step", 0))
    return {"checkpoint": str(path), "epoch": epoch, "epochs": cfg.epochs, "step": step,
            "finished": epoch >= cfg.epochs and step == 0, "dataset": cfg.dataset,
            "setting": cfg.setting, "genotype": str(genotype), "test_acc": acc, "test_error": 1.0 - acc,
            "test_loss": loss, "test_images": len(test), "params": params, "params_m": params / 1e6,
            "aux_params": count_params(model, exclude_aux=False) - params,
            "madds": count_madds(model, (shape[0], *batches.image_size))}
