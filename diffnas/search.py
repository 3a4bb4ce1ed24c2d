"""The search loop: `search(cfg) -> SearchResult`.

Per epoch: for each (search-train batch, search-validation batch) pair, an architecture step then a
weight step (diffnas.step); then validation, alpha history, genotype, metrics, checkpoint. A run
stopped by SIGINT/SIGTERM saves its exact position (epoch, step) and resumes to the same result; a
stop during validation abandons it and saves the epoch's last step (step == steps), so the resume
validates again and goes on. `max_steps` caps the validation batches as it caps the steps.
"""

from __future__ import annotations

import io
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Iterable, Optional, Sequence

import torch

from . import arch as arch_lib
from . import distributed, fastpath, recovery, tuning
from . import config as config_lib
from . import genotype as genotype_lib
from .atomic import atomic_write_bytes
from .bilevel import Reduce, no_reduce
from .collapse import collapse_warning, skip_count, unchanged_note
from .config import SearchConfig
from .data import Augment, Batches, Dataset, load_dataset, sample, search_split, subset
from .data.augment import crop_padding
from .data.batches import SharedKeywords
from .data.datasets import check_resumed_data, data_facts, describe, flips
from .device import resolve_device
from .discretise import threshold_notes
from .drawn import undrawn_note
from .errors import ConfigError, DataError
from .network import SETTINGS
from .notices import option, say, shell
from .paced import Paced
from .field_docs import with_field_docs
from .process_state import caller_state_kept, seed_everything
from .loop import Loop, entry_notices, extend_hint, few_steps_note, new_run_dir, new_state, resume_line, resumed_config
from .runfolder import run_command
from .runlog import epoch_line, final_figures, read_rows, run_folders_released
from .schedule import cosine
from .scoring import score_supernet
from .step import StepContext, search_step
from .supernet import Supernet, edge_count

# config fields that may change when a run is resumed
RESUMABLE = ("epochs", "device", "run_dir", "data_dir", "plots", "compile", "detect_anomaly", "nan_rollback",
             "bn_groups", "memory_format", "edges")


@with_field_docs
@dataclass
class SearchResult:
    """What `search()` returns: the run's folder and genotype, the architecture weights after each
    epoch, the epochs' metrics, and how the call ended (a stop says how to resume)."""

    run_dir: Path                        # the run's folder
    genotype: genotype_lib.AnyGenotype   # the genotype after the last epoch done (genotype.json)
    history: torch.Tensor = field(repr=False)   # (T, L, E, O) psi after each epoch, T = epochs done + 1
    metrics: list[dict[str, Any]] = field(default_factory=list, repr=False)   # metrics.jsonl's rows
    seconds: float = 0.0                 # the epochs' wall-clock time
    interrupted: bool = False            # stopped by a signal; resume with --resume run_dir
    exit_code: int = 0                   # 128 + signum when stopped by a signal
    val_split: str = "validation"        # what metrics' val_* were taken on (one-level: "test")
    val_images: int = 0                  # images the val_* metrics cover (fewer than the total where max_steps caps)
    val_images_total: int = 0            # the held-out split's images
    # 128 + signum of a stop (Ctrl-C, SIGTERM) that came once the last step was done, while the search
    # saved its last epoch: the search is complete; a pipeline stops before training and
    # search(raise_on_stop=True) raises, as for any stop
    late_stop: int = 0
    device_seconds: float = 0.0          # seconds times the processes that ran them (torchrun): the cost
    weights: int = 0                     # the supernet's parameters (w)
    arch_params: int = 0                 # the architecture's (alpha; DNAS: alpha, beta, gamma)

    @property
    def val_acc(self) -> float | None:
        """The last epoch's validation accuracy (one-level: test_acc, its test accuracy), as printed;
        None before any epoch."""
        return self.metrics[-1].get(f"{held_out_prefix(self.val_split)}_acc") if self.metrics else None

    @property
    def val_loss(self) -> float | None:
        """The last epoch's validation loss (one-level: test_loss); None before any epoch."""
        return self.metrics[-1].get(f"{held_out_prefix(self.val_split)}_loss") if self.metrics else None


def held_out_prefix(split: str) -> str:
    """The metrics' key prefix of the split a search scores on: `val` (val_loss, val_acc), or `test` for
    one-level, which has no validation split and scores on the test set."""
    return "test" if split == "test" else "val"


def check_batch_size(cfg: SearchConfig, train_images: int, val_images: int) -> None:
    """ConfigError when a batch is larger than a split it is drawn from, saying where the split's size
    comes from (the bilevel halves of --train-portion; one-level's training and test sets)."""
    limit = min(train_images, val_images)
    if cfg.batch_size <= limit:
        return
    if limit == 0 and cfg.order != "one-level":
        empty = "architecture (validation)" if val_images == 0 else "weight (training)"
        raise ConfigError(f"train_portion: {cfg.train_portion:g} of the {train_images + val_images} training "
                          f"images leaves the search's {empty} split empty; choose a portion strictly between "
                          f"them ({option('train_portion')}, DARTS: 0.5)")
    if cfg.order == "one-level":
        where = f"the {train_images} training and {val_images} test images"
    else:
        where = (f"the search's two splits of the {train_images + val_images} training images, {train_images} and "
                 f"{val_images} ({option('train_portion', cfg.train_portion)}: one steps the weights, the other the "
                 f"architecture)")
    raise ConfigError(f"batch_size: {cfg.batch_size} is more than {where}; pass {option('batch_size', limit)} or less")


def lr_at(epoch: int, cfg: SearchConfig) -> float:
    """Cosine annealing from w_lr to w_lr_min over the epochs (quark0/darts train_search.py)."""
    return cosine(epoch, cfg.epochs, cfg.w_lr, cfg.w_lr_min)


def augment_for(ds: Dataset, flip: bool = True) -> Augment:
    """DARTS search augmentation (train_search.py: the CIFAR training transform without cutout): random
    crop (`crop_padding`) and horizontal flip where the dataset's images may be mirrored (and `flip`)."""
    _, h, _ = ds.shape
    return Augment(crop_padding=crop_padding(h), flip=flip and flips(ds))


BUILD_BAR_EDGES = 2000   # mixed edges x ops above which building the supernet shows a bar (the default: 896, ~1.5 s)


def build(cfg: SearchConfig, in_channels: int, classes: int) -> tuple[Supernet, arch_lib.Arch]:
    """The supernet and its architecture parameters; a bar counts the cells while a large one is built."""
    from .runlog import progress_bar

    large = cfg.layers * edge_count(cfg.nodes) * len(cfg.ops) > BUILD_BAR_EDGES and distributed.is_main()
    bar = progress_bar(range(cfg.layers), cfg.layers, "building the supernet: cells") if large else None
    try:
        supernet = Supernet(cfg.channels, classes, cfg.layers, cfg.nodes, cfg.ops, in_channels,
                            cfg.stem_multiplier, partial=cfg.partial_channels, skip_dropout=cfg.skip_dropout,
                            built=None if bar is None else lambda k: bar.update(1))
    finally:
        if bar is not None:
            bar.close()
    arch = arch_lib.build(cfg.arch, cfg.layers, cfg.nodes, cfg.ops, supernet.reductions,
                          zero_one_weight=cfg.zero_one_weight, threshold=cfg.threshold)
    return supernet, arch


def search(cfg: SearchConfig, resume: Optional[str | Path] = None, *, pipeline: Optional[str | Path] = None,
           notices: Optional[Sequence[str]] = None, given: Optional[Collection[str]] = None,
           raise_on_stop: bool = True) -> SearchResult:
    """Run (or resume) a search; writes the run folder described in docs/DESIGN.md.

    pipeline: the `diffnas run` folder this search is the first stage of; its notices then say how to
    go on with the pipeline (`diffnas run --resume PIPELINE`), not with this folder alone.
    notices: lines for stderr (the command line's warnings), printed by rank 0 once the run has
    passed its start checks, so that a run refused at its start says only why, in one line. None
    (a call from Python): a new run's values that change nothing are `warnings.warn`ed instead.
    given: on resume, the fields of `cfg` the caller set; those among RESUMABLE replace the run's
    saved values (recovery.overrides; None: the ones that differ from the defaults).
    raise_on_stop: Ctrl-C or SIGTERM stops the search at a step boundary, saves a checkpoint and says
    how to resume; then KeyboardInterrupt (Ctrl-C) or SystemExit(128 + signum) is raised, as Python
    does for a script. False: the interrupted result is returned (`interrupted`, `exit_code`), as the
    command line and the pipeline take it."""
    from_python = notices is None   # the command line passes its notices, [] for none
    # the run seeds the RNGs and sets cuDNN flags: the caller's come back; its folder's lock is let go. A run
    # refused as a second one in this process says nothing else (its checks and warnings come inside)
    with caller_state_kept(), run_folders_released():
        notices = entry_notices(cfg, SearchConfig, "search_config", notices, resume)
        result = _search(cfg, resume, pipeline=pipeline, notices=notices, given=given, from_python=from_python)
    if raise_on_stop and (result.interrupted or result.late_stop):   # a script's next line must not run
        recovery.raise_stop(result.exit_code or result.late_stop)
    return result


@dataclass
class SearchData:
    """What a search steps and scores on: the batches of its two splits (one-level: training and
    test), the validation pass's batches, and how many steps each takes."""
    ds: Dataset
    one_level: bool
    train_b: Batches
    val_b: Batches
    eval_b: Batches                 # the validation pass: val_b's split, or a seeded sample of it
    steps: int                      # search steps an epoch
    eval_steps: int                 # batches of the validation pass
    train_images: int
    val_images: int
    covered: dict[str, Any]         # SearchResult's val_split, val_images, val_images_total


def _search_data(cfg: SearchConfig, device: torch.device, rank: int, world: int) -> SearchData:
    """The training set split once by a seeded permutation (search-train / search-validation)."""
    ds = load_dataset(cfg.dataset, cfg.data_dir, image_size=cfg.image_size)
    least = SETTINGS["cifar"].min_size
    if min(ds.shape[1:]) < least:   # the supernet ran on 1x1 images, whose genotype train() then refused
        raise DataError(f"{cfg.dataset}: the search needs images of at least {least}x{least}, as the training of "
                        f"the genotype it finds does; the dataset's are {ds.shape[1]}x{ds.shape[2]}")
    one_level = cfg.order == "one-level"
    if one_level:
        train_split, val_split = ds.train, ds.test    # no validation split; report test metrics
    else:
        t_idx, v_idx = search_split(len(ds.train.labels), cfg.train_portion, cfg.seed)
        train_split, val_split = subset(ds.train, t_idx), subset(ds.train, v_idx)
    check_batch_size(cfg, len(train_split), len(val_split))
    aug = augment_for(ds, cfg.flip)
    common = SharedKeywords(mean=ds.mean, std=ds.std, device=device, rank=rank, world=world)
    train_b = Batches(train_split, cfg.batch_size, augment=aug, seed=cfg.seed, **common)
    val_b = Batches(val_split, cfg.batch_size, augment=aug, seed=cfg.seed + 1, **common)
    # dry runs (max_steps) evaluate fewer batches: a seeded sample of the split, not its first images
    # (the one-level test split is in file order, often sorted by class)
    eval_split = sample(val_split, cfg.max_steps * cfg.batch_size, cfg.seed) if cfg.max_steps else val_split
    eval_b = Batches(eval_split, cfg.batch_size, shuffle=False, drop_last=False, **common)
    # one-level: the weights and alpha both step on the training batches, and the test split (val_b)
    # is only scored, so an epoch is the whole training set; bilevel: a training and a validation batch
    # per step
    steps = len(train_b) if one_level else min(len(train_b), len(val_b))
    eval_steps = len(eval_b)
    if cfg.max_steps:   # dry runs: fewer steps, and fewer validation batches
        steps, eval_steps = min(steps, cfg.max_steps), min(eval_steps, cfg.max_steps)
    covered = dict(val_split="test" if one_level else "validation",
                   val_images=min(eval_steps * eval_b.batch_size, eval_b.n), val_images_total=len(val_split))
    return SearchData(ds, one_level, train_b, val_b, eval_b, steps, eval_steps, len(train_split), len(val_split),
                      covered)


def _search_model(cfg: SearchConfig, in_channels: int, classes: int, device: torch.device,
                  rank: int) -> tuple[Supernet, arch_lib.Arch, StepContext]:
    """w in the supernet, alpha in the arch module, each with its own optimiser (in the StepContext,
    with the supernet's DDP wrapper under torchrun)."""
    supernet, arch = build(cfg, in_channels, classes)
    supernet.set_fused(tuning.fused_edges(cfg.edges, device))
    supernet = distributed.prepare(supernet, cfg.bn_groups)
    supernet.to(device)
    tuning.apply_memory_format(supernet, cfg.memory_format, device)
    caution = tuning.caution(cfg.memory_format, cfg.precision, device)
    if caution and rank == 0:
        say(f"diffnas: warning: {caution}")
    arch.to(device)
    model = distributed.wrap(supernet, device)   # DDP under torchrun: averages the weight gradients
    ctx = step_context(cfg, supernet, arch, device, model=model, reduce=distributed.average)
    return supernet, arch, ctx


def step_context(cfg: SearchConfig, supernet: Supernet, arch: arch_lib.Arch, device: torch.device, *,
                 model: Optional[torch.nn.Module] = None, reduce: Reduce = no_reduce,
                 precision: Optional[str] = None) -> StepContext:
    """The search step's context: SGD on the weights and Adam on alpha, as DARTS's train_search.py and
    architect.py set them up from `cfg` (the unrolled step's momentum and weight decay are read off the
    SGD); `model`: what the weight step calls (the supernet's DDP wrapper under torchrun; default the
    supernet); `precision`: cfg.precision unless given."""
    w_opt = torch.optim.SGD(supernet.parameters(), lr=cfg.w_lr, momentum=cfg.w_momentum, weight_decay=cfg.w_wd)
    a_opt = torch.optim.Adam(arch.parameters(), lr=cfg.alpha_lr, betas=(cfg.alpha_beta1, cfg.alpha_beta2),
                             weight_decay=cfg.alpha_wd)
    return StepContext(supernet, model if model is not None else supernet, arch, w_opt, a_opt, cfg.order, cfg.hessian,
                       cfg.fd_eps, cfg.grad_clip, reduce=reduce, check=cfg.detect_anomaly,
                       autocast=fastpath.autocast_factory(device, precision or cfg.precision))


def _search(cfg: SearchConfig, resume: Optional[str | Path], *, pipeline: Optional[str | Path],
            notices: Sequence[str], given: Optional[Collection[str]], from_python: bool = False) -> SearchResult:
    rank, world = distributed.setup()
    saved_epochs = None   # the epochs in the resumed run's config.json, when --epochs changes them
    if resume is not None:
        cfg, saved_epochs = resumed_config(cfg, SearchConfig(), Path(resume), "search", RESUMABLE, given)
    run_dir = new_run_dir(cfg.run_dir, "search", resumed=resume is not None)
    cfg = config_lib.from_dict(SearchConfig, {"run_dir": str(run_dir)}, base=cfg)
    device = distributed.device_for(resolve_device(cfg.device))
    # batch norm under data parallelism: statistics over batch_size / bn_groups images (distributed.py)
    fallback: list[str] = []   # said with the notices, once the run's folder is its own
    bn_groups = distributed.bn_groups_for(cfg.bn_groups, cfg.batch_size, device, resumed=resume is not None,
                                          exact_hessian=cfg.order == "second" and cfg.hessian == "exact",
                                          said=fallback)
    notices = [*fallback, *notices]
    cfg = config_lib.from_dict(SearchConfig, {"bn_groups": bn_groups}, base=cfg)
    distributed.check_same_config(config_lib.to_dict(cfg))
    seed_everything(cfg.seed, cfg.deterministic)

    # an error one rank meets alone (its data, a batch its split cannot fill) stops every rank here, before
    # the collectives of DDP's wrapper that the others would enter alone (gloo's traceback)
    with distributed.together():
        data = _search_data(cfg, device, rank, world)
    ds, one_level, steps, eval_steps = data.ds, data.one_level, data.steps, data.eval_steps

    supernet, arch, ctx = _search_model(cfg, ds.shape[0], ds.classes, device, rank)
    w_opt, a_opt = ctx.w_opt, ctx.a_opt

    cfg_dict = {**config_lib.to_dict(cfg), "command": "search"}
    # early_stop: why the run ended before cfg.epochs (--max-skips); a resume then searches no further
    state = new_state(history=arch.weights().detach().cpu().unsqueeze(0), early_stop="",
                      # the network's size, saved for the report (`diffnas params` counts it without a run)
                      weights=sum(p.numel() for p in supernet.parameters()),
                      arch_params=sum(p.numel() for p in arch.parameters()),
                      # alpha's random start's genotype: one the search ends with unchanged was not learned
                      start_genotype=genotype_lib.to_json(arch.genotype()))
    go_on = resume_line("search", run_dir, pipeline, from_python)
    # what the data's images and labels are, checked on resume (a class folder renamed since: wrong labels)
    facts = data_facts(ds)
    loop = Loop(run_dir, state, {"supernet": supernet, "arch": arch, "w_opt": w_opt, "a_opt": a_opt}, cfg_dict,
                resumable=RESUMABLE, defaults=config_lib.to_dict(SearchConfig()), sync=supernet, go_on=go_on,
                nan_rollback=cfg.nan_rollback, extra=lambda: facts,
                check_saved=lambda saved: check_resumed_data(ds, facts, saved, run_dir))
    log = loop.log
    curves = Paced(lambda: _plot_curves(run_dir))
    with loop.starting():
        complete = loop.open(resume is not None, lambda log: log.write_json("config.json", cfg_dict),
                             epochs=cfg.epochs, saved_epochs=saved_epochs, steps=steps,
                             recomputed="the cosine lr schedule is", last_pass="validation",
                             extend=None if pipeline else _extend_hint(run_dir))
        # after the checkpoint is read: a refused resume stays a one-line error, no notices before it
        step_fn = search_step if complete else fastpath.step_function(search_step, cfg, device)
        # the lines up to the loop inside too: a stop before the first step leaves no new folder behind
        for line in notices:
            log.say(line)
        if not complete:
            split = "" if one_level else f"; split {data.train_images:,} / {data.val_images:,} by " \
                                         f"{option('train_portion', cfg.train_portion)}"
            log.say(f"diffnas: {describe(ds)}{split}")
            log.say(f"diffnas: supernet of {cfg.layers} cells, {cfg.channels} channels: {state['weights']:,} weights, "
                    f"{state['arch_params']:,} architecture parameters")
            if note := few_steps_note(steps, cfg.max_steps, data.covered["val_split"]):
                log.say(note)
        # a resumed run's result holds its earlier epochs too (the rows up to its checkpoint, as continue_run
        # left them), as train's does
        metrics: list[dict[str, Any]] = read_rows(run_dir / "metrics.jsonl") if resume is not None else []
        if one_level and any("val_acc" in row or "val_loss" in row for row in metrics):
            # a one-level run from before its metrics were named test_*: renamed in the file too, so its result,
            # curves and report (and an extension's new rows) name one series
            metrics = [{f"test{k[3:]}" if k in ("val_loss", "val_acc") else k: v for k, v in row.items()}
                       for row in metrics]
            log.write_text("metrics.jsonl", "".join(json.dumps(row) + "\n" for row in metrics))
    genotype = arch.genotype()

    def result(exit_code: int = 0, late_stop: int = 0) -> SearchResult:
        # the seconds of the epochs, as the checkpoint holds them (not the figures' drawing): a resumed
        # complete run reports the same search cost (the pipeline's summary), as train.py does
        return SearchResult(run_dir, genotype, state["history"], metrics, state["seconds"], exit_code > 0,
                            exit_code, late_stop=late_stop, **data.covered,
                            device_seconds=state["device_seconds"], weights=state["weights"],
                            arch_params=state["arch_params"])

    def flush_curves() -> None:
        """At a stop, the curves pacing skipped (a second Ctrl-C there skips them: the checkpoint is
        saved already)."""
        if rank == 0 and cfg.plots:
            try:
                curves.flush()
            except KeyboardInterrupt:
                pass

    def stopped(where: str) -> SearchResult:
        """A stop within an epoch: saved, said, then the curves drawn."""
        code = loop.stopped(where)
        flush_curves()
        return result(code)

    if complete:   # the saved result; genotype.json again, in case a kill came between it and the checkpoint
        log.write_text("genotype.json", genotype_lib.to_json(genotype) + "\n")
        loop.finish()
        if rank == 0 and cfg.plots and (undrawn := undrawn_note(run_dir)):
            say(undrawn)
        return result()

    with loop.signals():
        while state["epoch"] < cfg.epochs and not state["early_stop"]:
            epoch = state["epoch"]
            lr = lr_at(epoch, cfg) * state["lr_scale"]
            for group in w_opt.param_groups:
                group["lr"] = lr
            for group in a_opt.param_groups:  # a NaN rollback lowers both learning rates
                group["lr"] = cfg.alpha_lr * state["lr_scale"]
            xi = lr if cfg.xi is None else cfg.xi   # the original unrolls with the current lr
            update_arch = epoch >= cfg.warmup_epochs
            loop.begin_epoch()
            vals = itertools.repeat((None, None)) if one_level else data.val_b.epoch(epoch, state["step"])

            def step(i: int, batch: Any) -> tuple[torch.Tensor, torch.Tensor, int]:
                (xt, yt), (xv, yv) = batch
                loss, correct = step_fn(ctx, xt, yt, xv, yv, xi, update_arch, f"at epoch {epoch + 1} step {i + 1}")
                return loss, correct, len(yt)

            done = loop.run_steps(steps, f"search {epoch + 1}/{cfg.epochs}",
                                  zip(data.train_b.epoch(epoch, state["step"]), vals), step)
            if done == "rolled back":
                continue
            if done == "stopped":
                return stopped(f"at epoch {epoch + 1} step {state['step']}")

            # end of epoch: validation, alpha history, genotype, metrics, checkpoint
            with torch.no_grad():
                psi, edge = arch()

            def validate(bar: Iterable[int], stop: Callable[[], bool]) -> Optional[tuple[float, float]]:
                return score_supernet(supernet, psi, data.eval_b, distributed.sum_tensor, bar=bar, stop=stop,
                                      edge=edge)

            scores = loop.score_epoch(eval_steps, f"validate {epoch + 1}/{cfg.epochs}", validate,
                                      data.covered["val_split"])
            if scores is None:   # stopped during validation: the epoch's steps are kept, the resume validates
                return stopped(f"at epoch {epoch + 1} during validation (its {steps} steps are done)")
            (train_loss, train_acc), (val_loss, val_acc) = scores.train, scores.held_out
            psi = psi.cpu()
            genotype = arch.genotype()
            state["history"] = torch.cat([state["history"], psi.unsqueeze(0)])
            held = held_out_prefix(data.covered["val_split"])
            row = {"epoch": epoch + 1, "train_loss": train_loss, "train_acc": train_acc,
                   f"{held}_loss": val_loss, f"{held}_acc": val_acc, "w_lr": lr,
                   "alpha_lr": cfg.alpha_lr * state["lr_scale"],
                   "xi": xi if cfg.order == "second" else 0.0, "seconds": loop.epoch_seconds()}
            metrics.append(row)
            log.metrics(row, epoch + 1)
            log.say(epoch_line("search", epoch + 1, cfg.epochs, (train_loss, train_acc),
                               (held, val_loss, val_acc), lr, row["seconds"])
                    + ("" if update_arch else "  (warm-up: architecture weights fixed)"))
            log.append_jsonl("genotypes.jsonl", {"epoch": epoch + 1, "genotype": genotype.to_dict()})
            # saved, so a resume (also one with more epochs) searches no further, as DARTS+ stops there
            if cfg.max_skips and skip_count(genotype) > cfg.max_skips:
                why = f"a normal cell has more than {cfg.max_skips} skip_connect"
                state["early_stop"] = (f"early stop at epoch {epoch + 1}: {why}" if epoch + 1 < cfg.epochs
                                       else f"skip cap (max_skips {cfg.max_skips}) reached at epoch {epoch + 1}, "
                                            f"the last: {why}")   # saved, read later by either kind of caller
            if rank == 0:  # before the checkpoint, atomically: a kill between the two redoes this epoch
                buf = io.BytesIO()
                torch.save(arch.record(state["history"]), buf)
                atomic_write_bytes(run_dir / "alphas.pt", buf.getvalue())
            loop.commit_epoch()
            if rank == 0 and cfg.plots:
                curves()   # paced: at most 5% of the search's time (paced.py)
            if loop.stop:   # a stop: the run's curves as its files are now
                flush_curves()
            if state["early_stop"]:
                if rank == 0:
                    say(f"diffnas: {state['early_stop']}")
            elif loop.stopped_between_epochs(cfg.epochs):
                return result(loop.stop.exit_code())
        late_stop = loop.late_stop()

    log.write_text("genotype.json", genotype_lib.to_json(genotype) + "\n")
    # arch epochs: none when all were warm-up, or --max-skips stopped the search there
    arch_epochs = state["epoch"] - cfg.warmup_epochs
    warning = collapse_warning(genotype, arch_epochs, max_skips=cfg.max_skips, skip_dropout=cfg.skip_dropout,
                               start=state["start_genotype"])
    if warning and rank == 0:
        say(f"diffnas: warning: {warning}")
    if (unchanged := unchanged_note(genotype, arch_epochs, state["start_genotype"])) and rank == 0:
        say(f"diffnas: note: {unchanged}")
    if rank == 0 and cfg.arch in config_lib.THRESHOLD_ARCHS:   # a cell that kept an edge below the threshold
        for note in threshold_notes(state["history"][-1], arch.ops, arch.nodes, cfg.threshold, arch.reductions):
            say(f"diffnas: note: {note}")
    if rank == 0 and cfg.plots:
        late_stop = final_figures(run_dir, late_stop)
    loop.finish()
    return result(late_stop=late_stop)


def _extend_hint(run_dir: Path) -> str:
    """How to search a complete run longer: --epochs N, unless it is the search of a pipeline that has
    trained its genotype (that pipeline would then refuse to go on: its training is of this genotype)."""
    owner = run_dir.parent
    if run_dir.name == "search" and run_command(owner) == "pipeline" and (owner / "train").exists():
        return (f"it is the search of the pipeline in {owner}, which has trained its genotype: search longer in a "
                f"new pipeline (`{shell('diffnas', 'run', '--config', owner / 'config.json')} --epochs N`)")
    return extend_hint(SearchConfig.epochs)


def _plot_curves(run_dir: Path) -> None:
    from .run_figures import plot_curves   # matplotlib is imported only when a run draws

    plot_curves(run_dir)
