"""Data parallelism on PyTorch's own engine: torchrun launches the processes, DDP averages the
weight gradients, torch.distributed collectives average the architecture gradients.

Single-process runs go through the same functions, which then do nothing.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def setup() -> tuple[int, int]:
    """(rank, world size); initialises the process group when launched by torchrun."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ and not is_distributed():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    if is_distributed():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def device_for(device: torch.device) -> torch.device:
    """Under torchrun each process takes the GPU of its local rank."""
    if is_distributed() and device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return device


def wrap(module: nn.Module) -> nn.Module:
    if not is_distributed():
        return module
    return nn.parallel.DistributedDataParallel(module, broadcast_buffers=False)


def average(tensors: list[torch.Tensor]) -> None:
    """Average gradients across ranks in place."""
    if not is_distributed() or not tensors:
        return
    world = dist.get_world_size()
    for t in tensors:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t.div_(world)


def sum_tensor(t: torch.Tensor) -> None:
    if is_distributed():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)


def sum_list(values: list[float]) -> list[float]:
    if not is_distributed():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu().tolist()


def broadcast_object(obj: Any) -> Any:
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if is_distributed():
        dist.barrier()
