"""Device-dependent choices that change speed, not what is computed: the memory format of the
weights (and with it of every activation) and whether the supernet's mixed edges run batched.

Measured on CPU (benchmarks/NOTES.md, "Memory format on CPU"): oneDNN's depthwise convolutions, the
bulk of a DARTS step there, run 1.4-3x faster on channels_last tensors, while the batched edges'
concatenations along the channel dimension become strided copies in that format. So "auto" on CPU
means channels_last with plain per-op edges. On CUDA it keeps what the fast path was built for
(contiguous, batched edges) until the H100 figures say otherwise.

Both choices are free to change between a run and its resume: the function and the parameters are
the same, only float rounding may differ.
"""

from __future__ import annotations

import torch
from torch import nn

MEMORY_FORMATS = ("auto", "channels_last", "contiguous")
EDGES = ("auto", "fused", "plain")


def memory_format(choice: str, device: torch.device) -> torch.memory_format:
    """The memory format for `choice` ("auto": channels_last on CPU, contiguous elsewhere)."""
    if choice not in MEMORY_FORMATS:
        raise ValueError(f"memory format {choice!r} is not one of {', '.join(MEMORY_FORMATS)}")
    if choice == "auto":
        choice = "channels_last" if device.type == "cpu" else "contiguous"
    return torch.channels_last if choice == "channels_last" else torch.contiguous_format


def fused_edges(choice: str, device: torch.device) -> bool:
    """Whether mixed edges run batched (diffnas.fused) for `choice` ("auto": not on CPU)."""
    if choice not in EDGES:
        raise ValueError(f"edges {choice!r} is not one of {', '.join(EDGES)}")
    if choice == "auto":
        return device.type != "cpu"
    return choice == "fused"


def apply_memory_format(module: nn.Module, choice: str, device: torch.device) -> nn.Module:
    """`module` with its 4-d weights in the chosen format; convolutions then produce activations in
    it whatever the input's format (their output follows the weight), so batches need no change."""
    return module.to(memory_format=memory_format(choice, device))
