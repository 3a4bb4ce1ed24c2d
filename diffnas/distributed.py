"""Data parallelism on PyTorch's own engine: torchrun launches the processes, DDP averages the
weight gradients, torch.distributed collectives average the architecture gradients.

Single-process runs go through the same functions, which then do nothing. The contract
(README "Scaling out"):

- `batch_size` is the global batch. Every rank draws the same global batch and augmentation and
  keeps its contiguous 1/world slice (data.Batches), so the data order depends only on
  (seed, epoch, step): a run resumes exactly with any number of ranks.
- Weight gradients are averaged by DDP during backward (clipping then sees the averaged gradient);
  architecture gradients by `average` (bilevel's `reduce`), so w and alpha stay identical on every
  rank in every optimisation mode.
- Batch norm: `bn_groups` says over how many contiguous groups of the global batch the training
  statistics are taken; see `bn_groups_for` and `prepare`.
- Randomness inside the network (skip-connect dropout, drop-path) is drawn for the whole global
  batch from the same RNG state on every rank, each rank keeping its slice (`batch_mask`): the
  ranks' RNGs stay in lockstep, a checkpoint's one RNG state serves any world size, and the masks
  are those of a single process.
- Only rank 0 writes files; every rank reads the same checkpoint on resume (multi-node runs need a
  run folder on storage all nodes see).
"""

from __future__ import annotations

import atexit
import contextlib
import inspect
import os
import signal
import threading
import warnings
from typing import Any, Iterator, TypeVar, cast

import torch
import torch.distributed as dist
from torch import nn

from . import device_rng
from .errors import ConfigError, DiffnasError
from .notices import option, say
from .signals import Terminated


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank_world() -> tuple[int, int]:
    if is_distributed():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """True on the rank that writes files and prints results and notices (rank 0; the only one
    without torchrun). Before `setup()` a torchrun worker goes by the RANK torchrun gave it, so that
    what runs before the process group exists does not speak once per rank either."""
    if is_distributed():
        return dist.get_rank() == 0
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:   # what setup() takes for torchrun
        return os.environ["RANK"] == "0"
    return True


def setup() -> tuple[int, int]:
    """(rank, world size); initialises the process group when launched by torchrun.

    With CUDA: NCCL for CUDA tensors and gloo for CPU ones (object broadcasts, the stop flag);
    without: gloo.
    """
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ and not is_distributed():
        missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
        if missing:   # RANK and WORLD_SIZE left over in the shell: torch's rendezvous said it in a traceback
            raise ConfigError(f"RANK and WORLD_SIZE are set but {' and '.join(missing)} not: launch the processes "
                              f"with torchrun (README, Scaling out), or unset RANK and WORLD_SIZE for one process")
        cuda = torch.cuda.is_available() and dist.is_nccl_available()
        with _signals_default():
            dist.init_process_group("cpu:gloo,cuda:nccl" if cuda else "gloo")
        atexit.register(teardown)
    return rank_world()


@contextlib.contextmanager
def _signals_default() -> Iterator[None]:
    """SIGINT and SIGTERM end the process as the OS does, within the block: a rank that waits for its
    peers (one that failed, a launch without them) waits inside torch's C++ rendezvous, where Python's
    handlers never run, and ignored both signals until its timeout (30 minutes). Off the main thread,
    nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # a handler set outside Python (getsignal: None) cannot be put back: it is left alone, as an ignored one
    before = {s: h for s in (signal.SIGINT, signal.SIGTERM)
              if (h := signal.getsignal(s)) is not None and h is not signal.SIG_IGN}
    try:
        for s in before:
            signal.signal(s, signal.SIG_DFL)
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def teardown() -> None:
    if is_distributed():
        dist.destroy_process_group()


def device_for(device: torch.device) -> torch.device:
    """Under torchrun each process takes the GPU of its local rank."""
    if is_distributed() and device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return device


# --- batch norm and in-network randomness -----------------------------------------------------

def bn_groups_for(requested: int, batch_size: int, device: torch.device, exact_hessian: bool = False,
                  resumed: bool = False, said: list[str] | None = None) -> int:
    """The number of contiguous groups of the global batch whose statistics batch norm uses.

    0 (auto) means 1, the single-process semantics, wherever the ranks can share statistics
    (SyncBatchNorm: CUDA, and not with the exact Hessian-vector product, which needs a double
    backward that SyncBatchNorm does not have), else the world size: plain per-rank batch norm.
    G groups are realised with W ranks by SyncBatchNorm if G == 1 < W, else by each rank running
    its part of the batch as G / W groups (GroupedForward), which is also how one process
    reproduces a W-rank CPU run (G = W). A resumed run whose saved value this launch cannot
    realise falls back to per-rank statistics, with a warning, so that resuming always works; the
    warning goes into `said` when given (a run prints it once its folder is its own: a folder in use
    is said alone), else to stderr.
    """
    _, world = rank_world()
    if batch_size % world:
        fits = ", ".join(str(n) for n in range(1, min(batch_size, 64) + 1) if batch_size % n == 0)
        # a resumed run keeps its batch: the number of processes is what can change
        fix = (f"resume it with a number of processes that divides it ({fits})" if resumed
               else f"use a multiple of {world}")
        raise ConfigError(f"batch_size: {batch_size} images do not split evenly over {world} processes "
                          f"(each takes batch_size / {world}); {fix}")
    sync_ok = device.type == "cuda" and not exact_hessian
    if requested == 0:
        groups = 1 if world == 1 or sync_ok else world
    else:
        groups = requested
    why = None
    # 1 (statistics shared over the processes) only where SyncBatchNorm runs
    multiple = (f"bn_groups must be 1 or a multiple of the number of processes ({world})" if sync_ok else
                f"bn_groups must be a multiple of the number of processes ({world}) here")
    if groups < world and (groups != 1 or not sync_ok):
        why = ("ranks can share batch-norm statistics only on CUDA (SyncBatchNorm)"
               + (f" and not with {option('hessian', 'exact')}" if exact_hessian else "") if groups == 1 else multiple)
    elif groups >= world and groups % world:
        why = multiple
    if why and resumed:
        warning = (f"diffnas: warning: bn_groups {groups} cannot be used with {world} processes ({why}); "
                   f"batch norm uses per-rank statistics (bn_groups {world}) from here on")
        if said is not None:
            said.append(warning)
        elif is_main():   # every rank resolves bn_groups; one says so
            say(warning)
        groups = world
    elif why:
        raise ConfigError(f"bn_groups: {groups} with {world} processes: {why}")
    if batch_size % groups:
        auto = " (auto: one per process)" if requested == 0 else ""
        raise ConfigError(f"bn_groups: {groups}{auto} does not divide the batch size {batch_size}")
    return groups


class _Slice:
    """Which of the `parts` contiguous slices of the global batch the running code computes:
    rank * groups + group of world * groups. Set by `GroupedForward` around each group."""

    group, groups = 0, 1


def batch_mask(shape: torch.Size | tuple[int, ...], keep: float, like: torch.Tensor) -> torch.Tensor:
    """A Bernoulli(keep) mask of `shape` for this slice of the batch ((B / parts, ...)): the mask of
    the whole global batch (B, ...) is drawn from the RNG, whose state is the same on every rank
    and in every group, and this slice's rows are kept. One process with one group (parts = 1)
    draws exactly `empty(shape).bernoulli_(keep)`."""
    rank, world = rank_world()
    parts, pos = world * _Slice.groups, rank * _Slice.groups + _Slice.group
    b = shape[0]
    full = torch.empty((b * parts, *shape[1:]), device=like.device, dtype=like.dtype).bernoulli_(keep)
    return full[pos * b:(pos + 1) * b] if parts > 1 else full


class BatchDropout(nn.Dropout):
    """nn.Dropout with its mask from `batch_mask` (the arithmetic of F.dropout on CPU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return x * batch_mask(x.shape, 1 - self.p, x).div_(1 - self.p)


def _cat(outs: list[Any]) -> Any:
    if isinstance(outs[0], torch.Tensor):
        return torch.cat(outs)
    return type(outs[0])(None if o[0] is None else torch.cat(list(o)) for o in zip(*outs))  # (logits, aux)


def buffer_slots(module: nn.Module) -> list[tuple[nn.Module, str]]:
    """(owner, name) of every buffer of `module`: where to find it again after GroupedForward has put
    new tensors in place of the old ones."""
    return [(m, name) for m in module.modules() for name, b in m._buffers.items() if b is not None]


def _buffer(m: nn.Module, name: str) -> torch.Tensor:
    """The buffer at a slot of buffer_slots: one that was not None (torch types _buffers' values Optional)."""
    return cast(torch.Tensor, m._buffers[name])


@contextlib.contextmanager
def buffers_restored(module: nn.Module) -> Iterator[None]:
    """The module's buffers (BN running statistics) as they were before the block. Found again by
    owner and name (GroupedForward replaces them), written through `.data`: a graph still to be
    differentiated may hold them (BN's backward takes them; it does not read them in training), and
    `.data` leaves their autograd version alone."""
    slots = buffer_slots(module)
    saved = [_buffer(m, name).clone() for m, name in slots]
    try:
        yield
    finally:
        for (m, name), value in zip(slots, saved):
            _buffer(m, name).data.copy_(value)


class GroupedForward:
    """A module's forward, in training, run on `groups` contiguous slices of the batch one after
    the other, each as one rank would run it: from the same batch-norm running statistics and RNG
    state, normalised with its own batch statistics, its dropout/drop-path rows cut from the global
    mask. The outputs are concatenated; the running statistics become the mean of the groups' (what
    averaging the ranks' buffers gives: the update is linear); the RNG ends where every group left
    it. Batch norm is the only layer that mixes samples, so this is exactly `groups` ranks' maths.
    Works whatever computes the batch norm (modules, or diffnas.fused on their buffers)."""

    def __init__(self, module: nn.Module, forward: Any, groups: int) -> None:
        self.module, self.forward, self.groups = module, forward, groups

    def __call__(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if not self.module.training or self.groups == 1:
            return self.forward(x, *args, **kwargs)
        n = x.shape[0]
        bounds = [g * n // self.groups for g in range(self.groups + 1)]  # data.Batches' rank slices
        owners = buffer_slots(self.module)
        with torch.no_grad():
            start = [_buffer(m, name).clone() for m, name in owners]
        rng = device_rng.get_state(x.device)
        outs, ends = [], []
        try:
            for g, (a, b) in enumerate(zip(bounds, bounds[1:])):
                if g:
                    # fresh buffers, not an in-place restore: batch norm saves its running
                    # statistics for backward, and the earlier groups' graphs hold theirs
                    for (m, name), s in zip(owners, start):
                        m._buffers[name] = s.clone()
                    device_rng.set_state(rng, x.device)
                _Slice.group, _Slice.groups = g, self.groups
                outs.append(self.forward(x[a:b], *args, **kwargs))
                ends.append([_buffer(m, name) for m, name in owners])
        finally:
            _Slice.group, _Slice.groups = 0, 1
        with torch.no_grad():
            for i, (m, name) in enumerate(owners):
                # integer buffers (batches tracked) moved alike in every group
                m._buffers[name] = (torch.stack([e[i] for e in ends]).mean(0) if ends[0][i].is_floating_point()
                                    else ends[-1][i])
        return _cat(outs)


M = TypeVar("M", bound=nn.Module)


def prepare(module: M, bn_groups: int) -> M:
    """Batch norm and in-network randomness for `bn_groups` (see bn_groups_for); returns the module.

    bn_groups == 1 with several ranks: SyncBatchNorm, statistics over the global batch (CUDA).
    bn_groups = k * world: each rank runs its part as k groups (GroupedForward; k == 1: as it is).
    Dropout draws its mask for the global batch (BatchDropout) whenever there are several slices.
    """
    _, world = rank_world()
    if bn_groups == 1 and world > 1:
        # the same module with its batch norms replaced (a new one only for a bare BatchNorm, no network)
        module = cast(M, nn.SyncBatchNorm.convert_sync_batchnorm(module))
        # a module that computes batch norm itself from the modules' buffers (diffnas.fused) would
        # bypass SyncBatchNorm: it must go through its modules
        for m in module.modules():
            if isinstance(getattr(m, "fused", None), bool):
                m.fused = False  # type: ignore[assignment]  # a bool attribute (checked above), not a Module
    if bn_groups > 1 or world > 1:
        _replace_dropout(module)
    k = bn_groups // world if bn_groups >= world else 1
    if k > 1:
        module.forward = GroupedForward(module, module.forward, k)
    return module


def _replace_dropout(module: nn.Module) -> None:
    for name, child in module.named_children():
        if type(child) is nn.Dropout:
            new = BatchDropout(child.p)
            new.train(child.training)
            module.add_module(name, new)
        else:
            _replace_dropout(child)


def wrap(module: nn.Module, device: torch.device | None = None) -> nn.Module:
    """DDP around `module` under torchrun (the module itself otherwise).

    Buffers are not broadcast from rank 0 at each forward: each rank's batch-norm running
    statistics follow its own slice and `sync_buffers` averages them before they are read
    (validation, checkpoints), which keeps them equal to a single process with the same bn_groups.
    """
    if not is_distributed():
        return module
    kwargs: dict[str, Any] = {}
    if device is not None and device.type == "cuda":
        kwargs["device_ids"] = [device.index]
    if "forward_sync_buffers" in inspect.signature(nn.parallel.DistributedDataParallel).parameters:
        kwargs["forward_sync_buffers"] = False     # torch >= 2.12 spelling
    else:
        kwargs["broadcast_buffers"] = False
    # The weight gradient of a 1x1 convolution can come back with strides (16, 1, 16, 16) for a
    # (16, 16, 1, 1) weight: the same memory layout as (16, 1, 1, 1), since a size-1 dimension's stride
    # is never used, but DDP compares strides literally and warns (twice a run) of a slow copy of a
    # few hundred numbers. Nothing to act on, so not said.
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    return nn.parallel.DistributedDataParallel(module, **kwargs)


def sync_buffers(module: nn.Module) -> None:
    """Average the floating-point buffers (batch-norm running statistics) across ranks."""
    if is_distributed():
        average([b for b in module.buffers() if b.is_floating_point()])


# --- collectives ------------------------------------------------------------------------------

def average(tensors: list[torch.Tensor]) -> None:
    """Average tensors (gradients, buffers) across ranks in place: one all-reduce per device and
    dtype over the tensors flattened together (a supernet has hundreds of small tensors; one call
    each would cost hundreds of round trips a step)."""
    if not is_distributed() or not tensors:
        return
    world = dist.get_world_size()
    groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.device, t.dtype), []).append(t)
    for ts in groups.values():
        flat = torch.cat([t.reshape(-1) for t in ts])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat.div_(world)
        offset = 0
        for t in ts:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()


def sum_tensor(t: torch.Tensor) -> None:
    if is_distributed():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)


def sum_list(values: list[float]) -> list[float]:
    """Element-wise sums over the ranks (float64 on the CPU: gloo carries it, also beside NCCL)."""
    if not is_distributed():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def stop_together(stop: Any) -> bool:
    """Whether any rank was asked to stop (a `signals.StopRequested`); if so every rank's `stop` is
    set too, so all ranks leave the loop after the same step and save the same position."""
    if not is_distributed():
        return bool(stop)
    flag = torch.tensor([stop.signum or 0], dtype=torch.int64)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    if flag.item() and not stop:
        stop.signum = int(flag.item())
    return bool(flag.item())


# how gloo says that the process at the other end of a collective is gone (killed, out of memory)
_PEER_LOST = ("Connection closed by peer", "Connection reset by peer", "Broken pipe")


def peer_lost(e: BaseException) -> bool:
    """Whether `e`, raised by a collective, says that another process of the run is gone."""
    return is_distributed() and isinstance(e, RuntimeError) and any(s in str(e) for s in _PEER_LOST)


class PeerLost(DiffnasError):
    """Another process of the run ended mid-run (gloo's "Connection closed by peer")."""


class PeerFailed(DiffnasError):
    """Another rank's error (said by that rank), raised on this one by `together`."""


_FAILED, _INTERRUPTED, _TERMINATED = 1, 2, 3   # what `together` tells the other ranks, worst last


@contextlib.contextmanager
def together() -> Iterator[None]:
    """Around work some ranks do alone or at their own pace (rank 0 making and locking the run folder,
    a resume's checks): an error or stop on any rank is raised on every rank as it leaves the block,
    so that none goes on into a collective the failed one never reaches (gloo's "Connection closed
    by peer" traceback, or a hang). No collective may run inside. The ranks agree in one all-reduce:
    a Ctrl-C that arrives while a rank waits in it is raised once it returns, with every rank past it
    (all_gather_object's two collectives could be left between them)."""
    if not is_distributed():
        yield
        return
    failure: BaseException | None = None
    try:
        yield
    except BaseException as e:   # told to the others first: a KeyboardInterrupt too
        failure = e
    code = (0 if failure is None else _INTERRUPTED if isinstance(failure, KeyboardInterrupt)
            else _TERMINATED if isinstance(failure, Terminated) else _FAILED)
    said = torch.tensor([code, int(getattr(failure, "signum", 0) or 0), dist.get_rank() if code else -1],
                        dtype=torch.int64)
    dist.all_reduce(said, op=dist.ReduceOp.MAX)
    if failure is not None:
        raise failure
    worst, signum, rank = (int(v) for v in said)
    if worst == _INTERRUPTED:
        raise KeyboardInterrupt
    if worst == _TERMINATED:
        raise Terminated(signum)
    if worst == _FAILED:   # the failed rank says why
        raise PeerFailed(f"rank {rank} could not go on (its error says why)")


# config values that may differ between the processes of one run: where each machine keeps the data
# (a relative folder made absolute from each one's working directory), where rank 0 writes
_PER_MACHINE = ("data_dir", "run_dir")


def check_same_config(values: dict[str, Any]) -> None:
    """A ConfigError on every rank when the ranks were started with different configs (README's
    multi-node recipe types the command on each machine): a seed that differed ran silently on
    different alphas per rank, other layers were DDP's traceback. Fields of _PER_MACHINE aside."""
    if not is_distributed():
        return
    mine = {k: v for k, v in values.items() if k not in _PER_MACHINE}
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, mine)
    first = gathered[0]
    for rank, other in enumerate(gathered[1:], start=1):
        for key in first:
            if other.get(key) != first[key]:
                raise ConfigError(f"{key}: rank {rank} was started with {other.get(key)!r}, rank 0 with "
                                  f"{first[key]!r}; every process of a run takes the same command and config")


def broadcast_object(obj: Any) -> Any:
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if is_distributed():
        dist.barrier()
