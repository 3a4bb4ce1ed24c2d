"""Run by tests/test_distributed.py under torchrun (and its jobs also in one process, for comparison).

    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/distributed_worker.py OUT JOB...

For each job, every rank runs it and saves what it holds in memory at the end (weights, BN buffers,
alpha, the alpha history, metrics) to OUT/states/JOB-rank<r>.pt, so the test can compare the ranks
with each other and with a single process. Jobs named `cli-*` go through `diffnas.cli.main`.
"""

from __future__ import annotations

import importlib
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch

from diffnas import cli, distributed
from diffnas.config import TrainConfig, from_dict, search_config
from diffnas.errors import NumericalError

# the modules (the package exports the functions `search` and `train` under the same names)
search_mod = importlib.import_module("diffnas.search")
train_mod = importlib.import_module("diffnas.train")

TINY = dict(dataset="synthetic", layers=3, channels=4, nodes=2, batch_size=8, epochs=1, max_steps=2,
            deterministic=True, plots=False, warmup_epochs=0)

# fewer candidates where the full set only costs time: `none` (not computed, so no parameters),
# a pool (with its BN), a two-stage and a one-stage conv, skip
FEW_OPS = ("none", "skip_connect", "max_pool_3x3", "sep_conv_3x3", "dil_conv_3x3")
# every optimisation mode with the softmax (DARTS) parametrisation; dnas (its preset's 7 ops): decoupled psi,
# partial channels (K = 2 of 4 channels), sigmoid + zero-one loss, skip-connect dropout
SEARCH_JOBS: dict[str, dict[str, Any]] = {
    "first": dict(preset="darts", order="first", ops=FEW_OPS),
    "second-fd": dict(preset="darts", order="second", hessian="fd", ops=FEW_OPS),
    "second-exact": dict(preset="darts", order="second", hessian="exact", ops=FEW_OPS),
    "one-level": dict(preset="darts", order="one-level", ops=FEW_OPS),
    "dnas": dict(preset="dnas", partial_channels=2),
    # the reference for the kill/resume tests (all ops): 3 epochs of 2 steps
    "ref": dict(preset="darts", order="first", epochs=3),
}
TRAIN_JOBS: dict[str, dict[str, Any]] = {
    # drop-path (global-batch masks) and the auxiliary head (a tuple output)
    "train": dict(dataset="synthetic", layers=3, channels=4, batch_size=8, epochs=1, max_steps=2,
                  genotype="DARTS_V2", drop_path=0.3, auxiliary=0.4, deterministic=True, plots=False),
}


# runs whose notices (a stray file in the image folder, the resume notices, a NaN rollback) the test
# counts in the launch's output: each once, from rank 0
NOTICE_JOBS = ("imagefolder", "resume-one", "nan")


def search_cfg(job: str, run_dir: Path, **extra: Any):
    values = {**TINY, **SEARCH_JOBS[job], **extra}
    return search_config(values.pop("preset"), **values, run_dir=str(run_dir))


def train_cfg(job: str, run_dir: Path, **extra: Any) -> TrainConfig:
    return from_dict(TrainConfig, {**TRAIN_JOBS[job], **extra, "run_dir": str(run_dir)})


class Capture:
    """Keeps the modules a run builds, to save their final state."""

    def __init__(self) -> None:
        self.modules: list[torch.nn.Module] = []
        self.initial: dict[str, Any] = {}
        self.real_build, self.real_network = search_mod.build, train_mod.build_network
        search_mod.build = self.build
        train_mod.build_network = self.build_network

    def restore(self) -> None:
        search_mod.build, train_mod.build_network = self.real_build, self.real_network

    def build(self, *args: Any, **kwargs: Any):
        supernet, arch = self.real_build(*args, **kwargs)
        self.modules = [supernet, arch]
        self.initial = self.state()
        return supernet, arch

    def build_network(self, *args: Any, **kwargs: Any):
        model = self.real_network(*args, **kwargs)
        self.modules = [model]
        self.initial = self.state()
        return model

    def state(self) -> dict[str, Any]:
        return {f"{i}.{k}": v.detach().clone() for i, m in enumerate(self.modules)
                for k, v in m.state_dict().items()}


def run_job(job: str, out: Path, capture: Capture) -> dict[str, Any]:
    if job == "resume":           # continue the killed run (the one folder under OUT/killed/runs)
        (run_dir,) = (out / "killed" / "runs").iterdir()
        r = search_mod.search(search_cfg("ref", run_dir), resume=run_dir)
        return {"state": capture.state(), "history": r.history}
    if job == "sigterm":          # SIGTERM to rank 1 alone in epoch 2, step 1; then resume
        rank = distributed.rank_world()[0]
        real, calls = search_mod.search_step, [0]

        def step_then_signal(*args: Any, **kwargs: Any):
            out_ = real(*args, **kwargs)
            calls[0] += 1
            if calls[0] == 3 and rank == 1:
                os.kill(os.getpid(), signal.SIGTERM)
            return out_

        search_mod.search_step = step_then_signal
        try:
            cut = search_mod.search(search_cfg("ref", out / "sigterm"), raise_on_stop=False)
        finally:
            search_mod.search_step = real
        if rank == 0:             # a copy for the test to resume with one process
            shutil.copytree(out / "sigterm", out / "sigterm-1")
        distributed.barrier()
        r = search_mod.search(search_cfg("ref", out / "sigterm"), resume=out / "sigterm")
        return {"state": capture.state(), "history": r.history, "cut_interrupted": cut.interrupted}
    if job == "imagefolder":      # OUT/images (made by the test): a class folder holds a stray file
        r = search_mod.search(search_cfg("first", out / job, dataset="imagefolder", data_dir=str(out / "images")))
        return {"state": capture.state(), "history": r.history}
    if job == "resume-one":       # OUT/one (made by the test): 1 epoch by one process (bn_groups 1), now 2
        r = search_mod.search(search_cfg("first", out / "one", epochs=2), resume=out / "one")
        return {"state": capture.state(), "history": r.history}
    if job == "nan":              # a non-finite loss on every rank at epoch 2 step 1, once: one rollback
        real, calls = search_mod.search_step, [0]

        def step_fails_once(*args: Any, **kwargs: Any):
            calls[0] += 1
            if calls[0] == 3:
                raise NumericalError(f"non-finite loss {args[-1]}")
            return real(*args, **kwargs)

        search_mod.search_step = step_fails_once
        try:
            r = search_mod.search(search_cfg("first", out / job, epochs=2, nan_rollback=1))
        finally:
            search_mod.search_step = real
        return {"state": capture.state(), "history": r.history}
    if job in SEARCH_JOBS:
        r = search_mod.search(search_cfg(job, out / job))
        return {"state": capture.state(), "initial": capture.initial, "history": r.history, "metrics": r.metrics}
    if job in TRAIN_JOBS:
        r = train_mod.train(train_cfg(job, out / job))
        return {"state": capture.state(), "initial": capture.initial, "metrics": r.metrics}
    if job == "cli-run":          # search + train; the default run folder: one, whatever the ranks' clocks say
        home = out / "cli-run"
        home.mkdir(exist_ok=True)
        os.chdir(home)
        code = cli.main(["run", "--dry-run", "--nodes", "2", "--no-plots", "--order", "first"])
        return {"code": code, "state": capture.state()}
    raise SystemExit(f"unknown job {job}")


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    out = Path(argv[0]).resolve()
    rank, world = distributed.setup()
    (out / "states").mkdir(parents=True, exist_ok=True)
    capture = Capture()
    cwd = os.getcwd()
    for job in argv[1:]:
        start = time.time()
        result = run_job(job, out, capture)
        if rank == 0 and os.environ.get("DIFFNAS_WORKER_TIMES"):
            print(f"worker: {job} {time.time() - start:.1f} s", file=sys.stderr)
        os.chdir(cwd)
        result["world"] = world
        torch.save(result, out / "states" / f"{job}-rank{rank}.pt")


if __name__ == "__main__":
    main(sys.argv[1:])
