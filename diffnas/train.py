"""The training loop: `train(cfg, genotype) -> TrainResult`, a discovered cell trained from scratch.

DARTS section 3.2 and quark0/darts cnn/train.py: SGD with momentum, lr cosine-annealed per epoch,
gradient clipping, cutout, an auxiliary head weighted 0.4, drop-path ramped linearly from 0 to its
final value. Each epoch ends with the test split (eval mode, no auxiliary head), a metrics row and
a checkpoint. SIGINT/SIGTERM finish the current step, save the exact position (epoch, step, RNG) and
return 128 + signum; `train(cfg, resume=run_dir)` continues to the same weights as a run never
stopped (the batches depend only on (seed, epoch, step), the drop-path masks on the saved RNG). A
stop during the test pass abandons it and saves the epoch's last step (step == steps): the resume
tests again and goes on. `max_steps` caps the test batches as it caps the steps.
"""

from __future__ import annotations

import dataclasses
import math
import os
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, ContextManager, Optional, Sequence, TypedDict

import torch
import torch.nn.functional as F
from torch import nn

from . import distributed, fastpath, recovery, tuning
from . import config as config_lib
from . import genotype as genotype_lib
from .config import TrainConfig, setting_layers, train_config
from .counting import count_params
from .data import Augment, Batches, Dataset, load_dataset, sample
from .data.augment import crop_padding, scaled_cutout
from .data.batches import SharedKeywords
from .data.datasets import check_resumed_data, data_facts, describe, flips
from .device import resolve_device
from .drawn import undrawn_note
from .errors import CheckpointError, ConfigError, DataError, GenotypeError
from .network import SETTINGS, build_network
from .notices import option, say
from .numerics import FiniteChecks
from .field_docs import with_field_docs
from .process_state import caller_state_kept, seed_everything
from .loop import Loop, entry_notices, extend_hint, few_steps_note, new_run_dir, new_state, resume_line, resumed_config
from .runlog import RunLog, epoch_line, final_figures, run_folders_released
from .schedule import lr_at
from .scoring import score_network

# config fields that may change when a run is resumed
RESUMABLE = ("epochs", "device", "run_dir", "data_dir", "plots", "compile", "detect_anomaly", "nan_rollback",
             "bn_groups", "memory_format")


@with_field_docs
@dataclass
class TrainResult:
    """What `train()` returns: the run's folder, the test accuracy and loss of the trained network,
    its parameter counts, the epochs' metrics, and how the call ended."""

    run_dir: Path              # the run's folder
    test_acc: float            # the trained network's accuracy on the test split, 0..1
    test_loss: float           # its cross-entropy there
    params: int                # without the auxiliary head
    aux_params: int            # the auxiliary head's
    seconds: float             # the epochs' wall-clock time
    metrics: list[dict[str, Any]] = field(default_factory=list, repr=False)   # metrics.jsonl's rows
    exit_code: int = 0         # 128 + signum when stopped by a signal (resume with --resume run_dir)
    test_images: int = 0       # images the test metrics cover (fewer than the total where max_steps caps them)
    test_images_total: int = 0  # the test split's images
    # 128 + signum of a stop (Ctrl-C, SIGTERM) that came once the last step was done, while the training
    # saved its last epoch or drew its figures: the training is complete; train(raise_on_stop=True)
    # raises and the command line exits with it, as for any stop
    late_stop: int = 0
    device_seconds: float = 0.0  # seconds times the processes that ran them (torchrun): the cost


def result_record(result: TrainResult) -> dict[str, Any]:
    """result.json: the finished run's result (not how this call ended: late_stop is left out)."""
    record = {**dataclasses.asdict(result), "run_dir": str(result.run_dir)}
    del record["late_stop"]
    return record


def depth_note(depth: int, layers: int) -> str:
    """The line said when a per-cell genotype's depth replaces the network's default one."""
    return (f"diffnas: the per-cell genotype has {depth} cells: training a network of {depth} cells "
            f"(not the setting's {layers})")


def drop_path_at(epoch: int, cfg: TrainConfig) -> float:
    """Linear ramp from 0 (quark0/darts train.py: drop_path_prob * epoch / epochs)."""
    return cfg.drop_path * epoch / cfg.epochs


class _Jitter(TypedDict):
    """Augment's colour-jitter keywords."""

    brightness: float
    contrast: float
    saturation: float
    hue: float


def augment_for(ds: Dataset, cfg: TrainConfig) -> Augment:
    """DARTS training augmentation: crop (`crop_padding`), flip where the dataset's images may be
    mirrored (and cfg.flip), cutout (cfg.cutout, `scaled_cutout`), all given for 32x32 images and scaled
    below that."""
    _, h, _ = ds.shape
    flip = cfg.flip and flips(ds)
    jitter = _Jitter(brightness=cfg.color_jitter, contrast=cfg.color_jitter, saturation=cfg.color_jitter,
                     hue=cfg.hue_jitter)
    if cfg.random_resized_crop:   # quark0/darts train_imagenet.py: RandomResizedCrop, flip, ColorJitter
        size = cfg.random_resized_crop
        return Augment(resized_crop=size, flip=flip, cutout=scaled_cutout(cfg.cutout, size), **jitter)
    return Augment(crop_padding=crop_padding(h), flip=flip, cutout=scaled_cutout(cfg.cutout, h), **jitter)


def check_images(shape: tuple[int, int, int], setting: str) -> None:
    """DataError when images of (C, H, W) do not suit the setting's network."""
    c, h, w = shape
    s = SETTINGS[setting]
    if setting != "cifar" and c != 3:
        raise DataError(f"the {setting} setting takes RGB images (3 channels), the dataset has {c}")
    if min(h, w) < s.min_size:
        raise DataError(f"the {setting} setting needs images of at least {s.min_size}x{s.min_size} "
                        f"(nominal {s.input_size}x{s.input_size}); the dataset's are {h}x{w}")


# how far a random-resized crop may enlarge the images (CIFAR's 32x32 trained at 224: 7 times)
MAX_UPSAMPLE = 8


def check_data(cfg: TrainConfig, ds: Dataset) -> None:
    """The checks of a training's values that need its data: the setting's image size and channels
    (also after a random-resized crop, what the network sees), a batch no larger than the training
    split, two images or more per batch-norm group for the auxiliary head, a cutout square that leaves
    something of the images. `diffnas run` makes them before its
    search too, so that such a value fails in seconds, not after hours of search."""
    check_images(ds.shape, cfg.setting)
    if cfg.random_resized_crop:
        check_images((ds.shape[0], cfg.random_resized_crop, cfg.random_resized_crop), cfg.setting)
        side = max(ds.shape[1:])
        if cfg.random_resized_crop > MAX_UPSAMPLE * side:   # 2000 from 16x16 was killed for memory, unsaid
            raise ConfigError(f"random_resized_crop: {cfg.random_resized_crop} would upsample {ds.shape[1]}x"
                              f"{ds.shape[2]} images more than {MAX_UPSAMPLE} times a side; pass "
                              f"{option('random_resized_crop', MAX_UPSAMPLE * side)} or less (ImageNet's 224 is cut "
                              f"from images decoded larger: {option('image_size', 256)})")
    if cfg.batch_size > len(ds.train):
        raise ConfigError(f"batch_size: {cfg.batch_size} is more than the {len(ds.train)} training images; pass "
                          f"{option('batch_size', len(ds.train))} or less")
    groups = max(cfg.bn_groups, 1)   # 0 (auto) before the training resolves it: one group at least
    if cfg.auxiliary > 0 and cfg.batch_size // groups < 2:   # its BN follows a pooling to 1x1
        per = f" per batch-norm group ({option('bn_groups', groups)})" if groups > 1 else ""
        raise ConfigError(f"batch_size: {cfg.batch_size // groups} image{per} leaves the auxiliary head's batch norm "
                          f"one value per channel (its input is pooled to 1x1), which it cannot normalise; pass "
                          f"{option('batch_size', 2 * groups)} or more, or {option('auxiliary', 0)}")
    augment = augment_for(ds, cfg)
    h, w = augment.output_size(*ds.shape[1:])
    if augment.cutout >= 2 * max(h, w) - 1:   # centred anywhere on the image, the square covers all of it
        raise ConfigError(f"cutout: {cfg.cutout} cuts a {augment.cutout}x{augment.cutout} square out of {h}x{w} "
                          f"images, which blanks every training image whole; pass a smaller {option('cutout')} "
                          f"(DARTS: 16 at 32x32, scaled below that)")


def autocast_for(device: torch.device, precision: str) -> Callable[[], ContextManager]:
    """The training's autocast context factory: `fastpath.autocast_factory`'s, or a null context (fp32)."""
    return fastpath.autocast_factory(device, precision) or nullcontext


def train_step(forward: Callable, model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               drop_prob: float, cfg: TrainConfig, autocast: Callable[[], ContextManager] = nullcontext,
               where: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    """One weight step; returns (main-head loss, number correct) as device tensors."""
    # forward: main loss + weighted auxiliary loss, bf16 autocast when asked
    with autocast():
        logits, logits_aux = forward(x, drop_prob)
    loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
    full = loss
    if logits_aux is not None:
        full = loss + cfg.auxiliary * F.cross_entropy(logits_aux.float(), y, label_smoothing=cfg.label_smoothing)
    # backward (under DDP the gradients arrive averaged over the ranks), clip, step
    opt.zero_grad(set_to_none=True)
    full.backward()
    clip = cfg.grad_clip if cfg.grad_clip > 0 else math.inf
    norm = nn.utils.clip_grad_norm_(model.parameters(), clip)
    if cfg.detect_anomaly:
        # this rank's loss, checked after the backward whose all-reduce carries a NaN
        # into every rank's gradient norm: all ranks stop at the same step
        checks = FiniteChecks()   # both with one device sync
        checks.add("loss", [full])
        checks.add("gradient", [norm])
        checks.check(where)
    opt.step()
    return loss.detach(), (logits.detach().argmax(1) == y).sum()


def train(cfg: TrainConfig, genotype: genotype_lib.AnyGenotype | str | os.PathLike[str] | None = None, *,
          resume: str | Path | None = None, stop_after: int | None = None,
          pipeline: str | Path | None = None, notices: Optional[Sequence[str]] = None,
          given: Optional[Collection[str]] = None, raise_on_stop: bool = True) -> TrainResult:
    """Train `genotype` (default: cfg.genotype; a genotype, or what `genotype.load` takes: a name, a
    file, a run folder, notation) from scratch, or resume the run in `resume`.

    stop_after: act as if SIGTERM arrived after this many steps of this call (tests, dry runs); that
    stop is returned, never raised.
    pipeline: the `diffnas run` folder this training is the second stage of; its notices then say how
    to go on with the pipeline (`diffnas run --resume PIPELINE`), not with this folder alone.
    notices: lines for stderr (the command line's warnings), printed by rank 0 once the run has
    passed its start checks, so that a run refused at its start says only why, in one line. None
    (a call from Python): a new run's values that change nothing are `warnings.warn`ed instead.
    given: on resume, the fields of `cfg` the caller set; those among RESUMABLE replace the run's
    saved values (recovery.overrides; None: the ones that differ from the defaults).
    raise_on_stop: Ctrl-C or SIGTERM stops the training at a step boundary, saves a checkpoint and
    says how to resume; then KeyboardInterrupt (Ctrl-C) or SystemExit(128 + signum) is raised, as
    Python does for a script. False: the result is returned with its `exit_code`, as the command
    line and the pipeline take it.
    """
    from_python = notices is None   # the command line passes its notices, [] for none
    # the run seeds the RNGs and sets cuDNN flags: the caller's come back; its folder's lock is let go. A run
    # refused as a second one in this process says nothing else (its checks and warnings come inside)
    with caller_state_kept(), run_folders_released():
        notices = entry_notices(cfg, TrainConfig, "train_config", notices, resume)
        result = _train(cfg, genotype, resume=resume, stop_after=stop_after, pipeline=pipeline, notices=notices,
                        given=given, from_python=from_python)
    if raise_on_stop and (result.exit_code or result.late_stop) and stop_after is None:
        recovery.raise_stop(result.exit_code or result.late_stop)
    return result


def same_genotype(spec: str, genotype: genotype_lib.AnyGenotype) -> bool:
    """Whether the genotype spec `spec` (a config's) names `genotype`; False for one that loads none."""
    try:
        return genotype_lib.load(spec).to_dict() == genotype.to_dict()
    except GenotypeError:
        return False


def check_same_genotype(genotype: genotype_lib.AnyGenotype, saved: Path) -> None:
    """A resume trains the network its run started with: a genotype given with `resume` that differs
    from the run's (`saved`, its genotype.json) is a CheckpointError. A cell with other parameter-free
    ops (a max pool for an avg pool) has the same weights, so the checkpoint alone would not tell."""
    if genotype.to_dict() != genotype_lib.load(str(saved)).to_dict():
        raise CheckpointError(f"genotype: not the one the run in {saved.parent} trains ({saved}); resume it "
                              f"with its own (leave the genotype out: train(cfg, resume=...)) or train this "
                              f"one in a new run")


def _train(cfg: TrainConfig, genotype: genotype_lib.AnyGenotype | str | os.PathLike[str] | None, *,
           resume: str | Path | None, stop_after: int | None, pipeline: str | Path | None, notices: Sequence[str],
           given: Optional[Collection[str]], from_python: bool = False) -> TrainResult:
    rank, world = distributed.setup()
    asked_setting = cfg.setting   # the caller's: its defaults are what a Python resume compares against
    saved_epochs = None   # the epochs in the resumed run's config.json, when --epochs changes them
    if resume is not None:
        # what a Python caller starts from: the setting's defaults (train_config), so imagenet's 14 cells
        # are not taken for a typed value against a per-cell genotype's own depth
        cfg, saved_epochs = resumed_config(cfg, train_config(cfg.setting), Path(resume), "train", RESUMABLE, given)
    run_dir = new_run_dir(cfg.run_dir, "train", resumed=resume is not None)
    cfg = config_lib.from_dict(TrainConfig, {"run_dir": str(run_dir)}, base=cfg)
    saved_genotype = run_dir / "genotype.json"
    if genotype is None:
        genotype = genotype_lib.load(str(saved_genotype if resume and saved_genotype.is_file() else cfg.genotype))
    else:
        spec, genotype = genotype, genotype_lib.load(genotype)   # a name, a path, notation or a genotype
        if resume is not None and saved_genotype.is_file():
            check_same_genotype(genotype, saved_genotype)
        elif resume is None and not same_genotype(cfg.genotype, genotype):
            # config.json says what was trained: the spec given, or the genotype's own notation
            recorded = str(spec) if isinstance(spec, (str, os.PathLike)) else str(genotype)
            cfg = config_lib.from_dict(TrainConfig, {"genotype": recorded}, base=cfg)
    # a per-cell genotype fixes the depth: it replaces the setting's default (a Python caller who left
    # `layers` alone), as the command line does when --layers is not typed; another depth asked for is
    # refused here, before the data is read
    asked = None if resume is None and cfg.layers == setting_layers(cfg.setting) else cfg.layers
    depth = genotype_lib.network_depth(genotype, asked)
    if depth is not None and depth != cfg.layers:
        notices = [*notices, depth_note(depth, cfg.layers)]
        cfg = config_lib.from_dict(TrainConfig, {"layers": depth}, base=cfg)
    genotype.cells(cfg.layers)   # a per-cell genotype's reductions where the network has them
    device = distributed.device_for(resolve_device(cfg.device))
    # batch norm under data parallelism: statistics over batch_size / bn_groups images (distributed.py)
    fallback: list[str] = []   # said with the notices, once the run's folder is its own
    cfg = config_lib.from_dict(TrainConfig, {"bn_groups": distributed.bn_groups_for(
        cfg.bn_groups, cfg.batch_size, device, resumed=resume is not None, said=fallback)}, base=cfg)
    notices = [*fallback, *notices]
    # the genotype compared as what it is: its path may differ between machines
    distributed.check_same_config({**config_lib.to_dict(cfg), "genotype": genotype_lib.to_json(genotype)})
    seed_everything(cfg.seed, cfg.deterministic)
    autocast = autocast_for(device, cfg.precision)

    # data: uint8 on the device once; batch order and augmentation depend only on (seed, epoch, step);
    # an error one rank meets alone stops every rank here, not in DDP's collectives (as in the search)
    with distributed.together():
        ds = load_dataset(cfg.dataset, cfg.data_dir, image_size=cfg.image_size)
        check_data(cfg, ds)
    common = SharedKeywords(mean=ds.mean, std=ds.std, device=device, rank=rank, world=world)
    train_b = Batches(ds.train, cfg.batch_size, augment=augment_for(ds, cfg), seed=cfg.seed, **common)
    test_bs = min(cfg.batch_size, len(ds.test))
    # dry runs (max_steps) test on fewer batches: a seeded sample of the test split, not its first images
    test_split = sample(ds.test, cfg.max_steps * test_bs, cfg.seed) if cfg.max_steps else ds.test
    test_b = Batches(test_split, test_bs, shuffle=False, drop_last=False,
                     augment=Augment.evaluation(cfg.random_resized_crop), **common)
    if cfg.random_resized_crop > min(ds.shape[1:]) and distributed.is_main():
        say(f"diffnas: random-resized crops of {cfg.random_resized_crop}x{cfg.random_resized_crop} from "
            f"{ds.shape[1]}x{ds.shape[2]} images upsample every crop; "
            f"{option('random_resized_crop', min(ds.shape[1:]))} keeps the images' own size")
    steps = min(len(train_b), cfg.max_steps) if cfg.max_steps else len(train_b)
    test_steps = min(len(test_b), cfg.max_steps) if cfg.max_steps else len(test_b)   # dry runs: fewer of both
    covered = dict(test_images=min(test_steps * test_b.batch_size, test_b.n), test_images_total=len(ds.test))

    # model and optimiser
    model = build_network(genotype, cfg.setting, cfg.channels, cfg.layers, ds.classes, ds.shape[0],
                          auxiliary=cfg.auxiliary > 0, drop_path_per=cfg.drop_path_per)
    model = distributed.prepare(model, cfg.bn_groups).to(device)
    tuning.apply_memory_format(model, cfg.memory_format, device)
    caution = tuning.caution(cfg.memory_format, cfg.precision, device)
    if caution and rank == 0:
        say(f"diffnas: warning: {caution}")
    params, aux_params = count_params(model), count_params(model, exclude_aux=False) - count_params(model)
    forward: nn.Module | fastpath.CheckedForward
    forward = distributed.wrap(model, device)   # DDP under torchrun: averages the gradients
    if cfg.compile and device.type == "cuda":
        # checked against eager on the first batch; $DIFFNAS_COMPILE_MODE as for the search step
        forward = fastpath.CheckedForward(forward, bf16=cfg.precision == "bf16")
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.wd)

    cfg_dict = {**config_lib.to_dict(cfg), "command": "train"}
    state = new_state(metrics=[])
    go_on = resume_line("train", run_dir, pipeline, from_python)
    # the checkpoint also holds what evaluation needs: the genotype, the data's shape and classes, and
    # the normalisation it trained with
    facts = data_facts(ds)
    extra = {"genotype": genotype.to_dict(), "config": cfg_dict, **facts, "mean": list(ds.mean), "std": list(ds.std)}
    loop = Loop(run_dir, state, {"model": model, "optimizer": opt}, cfg_dict, resumable=RESUMABLE,
                defaults=config_lib.to_dict(TrainConfig()), sync=model, go_on=go_on, nan_rollback=cfg.nan_rollback,
                extra=lambda: extra, stop_after=stop_after,
                check_saved=lambda saved: check_resumed_data(ds, facts, saved, run_dir))
    log = loop.log

    def write_new(log: RunLog) -> None:
        log.write_json("config.json", cfg_dict)
        log.write_text("genotype.json", genotype_lib.to_json(genotype) + "\n")

    with loop.starting():
        recomputed = ("the drop-path ramp is" if cfg.lr_schedule == "step"
                      else "the cosine lr schedule and the drop-path ramp are")
        complete = loop.open(resume is not None, write_new, epochs=cfg.epochs, saved_epochs=saved_epochs,
                             steps=steps, recomputed=recomputed, last_pass="test",
                             extend=None if pipeline else extend_hint(train_config(asked_setting).epochs))
        # the lines up to the loop inside too: a stop before the first step leaves no new folder behind
        for line in notices:
            log.say(line)
        if not complete:
            log.say(f"diffnas: {describe(ds)}")
            if note := few_steps_note(steps, cfg.max_steps, "test"):
                log.say(note)

    def result(exit_code: int = 0, late_stop: int = 0) -> TrainResult:
        last = state["metrics"][-1] if state["metrics"] else {}
        return TrainResult(run_dir, last.get("test_acc", float("nan")), last.get("test_loss", float("nan")),
                           params, aux_params, state["seconds"], list(state["metrics"]), exit_code,
                           late_stop=late_stop, device_seconds=state["device_seconds"],
                           **covered)

    if complete:   # the saved result; result.json again, in case a kill came between it and the checkpoint
        log.write_json("result.json", result_record(result()))
        loop.finish()
        if rank == 0 and cfg.plots and (undrawn := undrawn_note(run_dir)):
            say(undrawn)
        return result()

    with loop.signals():
        while state["epoch"] < cfg.epochs:
            epoch = state["epoch"]
            lr = lr_at(epoch, cfg) * state["lr_scale"]
            for group in opt.param_groups:
                group["lr"] = lr
            drop_prob = drop_path_at(epoch, cfg)
            model.train()
            loop.begin_epoch()

            def step(i: int, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, int]:
                x, y = batch
                loss, correct = train_step(forward, model, opt, x, y, drop_prob, cfg, autocast,
                                           f"at epoch {epoch + 1} step {i + 1}")
                return loss, correct, len(y)

            done = loop.run_steps(steps, f"train {epoch + 1}/{cfg.epochs}", train_b.epoch(epoch, state["step"]), step)
            if done == "rolled back":
                continue
            if done == "stopped":   # mid-epoch (or after its last step): the exact position is saved
                return result(loop.stopped(f"at epoch {epoch + 1} step {state['step']}"))

            # end of epoch: test split, metrics row, checkpoint
            scores = loop.score_epoch(test_steps, f"test {epoch + 1}/{cfg.epochs}",
                                      lambda bar, stop: score_network(forward, test_b, autocast, bar=bar, stop=stop),
                                      "test")
            if scores is None:   # stopped during the test pass: the epoch's steps are kept, the resume tests
                return result(loop.stopped(f"at epoch {epoch + 1} during the test pass (its {steps} steps are done)"))
            (train_loss, train_acc), (test_loss, test_acc) = scores.train, scores.held_out
            row = {"epoch": epoch + 1, "train_loss": train_loss, "train_acc": train_acc,
                   "test_loss": test_loss, "test_acc": test_acc, "lr": lr, "drop_path": drop_prob,
                   "seconds": loop.epoch_seconds()}
            state["metrics"].append(row)
            log.metrics(row, epoch + 1)
            log.say(epoch_line("train", epoch + 1, cfg.epochs, (train_loss, train_acc),
                               ("test", test_loss, test_acc), lr, row["seconds"]))
            loop.commit_epoch()
            if loop.stopped_between_epochs(cfg.epochs):   # after the last epoch: finish
                return result(loop.stop.exit_code())
        late_stop = loop.late_stop()

    log.write_json("result.json", result_record(result()))
    if rank == 0 and cfg.plots:   # the curves and the cell diagrams, as `diffnas plot` draws them
        late_stop = final_figures(run_dir, late_stop)
    loop.finish()
    return result(late_stop=late_stop)
