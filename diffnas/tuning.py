"""Device-dependent choices that change speed, not what is computed: the memory format of the
weights (and with it of every activation) and whether the supernet's mixed edges run batched.

Measured on CPU (benchmarks/NOTES.md, "Memory format and edges on CPU"): per-op edges are faster
there than the batched ones, so "auto" edges are plain on CPU and batched on CUDA. channels_last
makes a CPU search step up to 1.7x faster (oneDNN's depthwise convolutions), but torch's CPU batch
norm in that format is 10-30x less accurate in fp32 (one BN after every op of the supernet: psi
gradients off by ~5e-3 relative instead of ~2e-4), and bf16 autocast with channels_last gives
non-finite depthwise weight gradients on CPU (torch 2.13). Numbers first: "auto" is contiguous on
every device, and channels_last is there to choose.

Both choices are free to change between a run and its resume: the function and the parameters are
the same, only float rounding may differ.
"""

from __future__ import annotations

import torch
from torch import nn

from .errors import check_choice
from .notices import option

MEMORY_FORMATS = ("auto", "channels_last", "contiguous")
EDGES = ("auto", "fused", "plain")


def memory_format(choice: str, device: torch.device) -> torch.memory_format:
    """The memory format for `choice` ("auto": contiguous, on every device for now)."""
    check_choice("memory_format", choice, MEMORY_FORMATS)
    return torch.channels_last if choice == "channels_last" else torch.contiguous_format


def caution(choice: str, precision: str, device: torch.device) -> str | None:
    """A warning for a combination known to go wrong: bf16 autocast with channels_last on CPU gives
    non-finite depthwise weight gradients for some shapes (torch 2.13), which a run reports as a
    non-finite gradient, as if it diverged."""
    if choice == "channels_last" and precision == "bf16" and device.type == "cpu":
        return ("memory_format: channels_last with bf16 on CPU can give non-finite depthwise-conv gradients "
                f"(a torch CPU kernel, not divergence); {option('memory_format', 'contiguous')} avoids it")
    return None


def fused_edges(choice: str, device: torch.device) -> bool:
    """Whether mixed edges run batched (diffnas.fused) for `choice` ("auto": not on CPU)."""
    check_choice("edges", choice, EDGES)
    fused = device.type != "cpu" if choice == "auto" else choice == "fused"
    if fused:
        from .fused import check_pointwise

        check_pointwise()
    return fused


def apply_memory_format(module: nn.Module, choice: str, device: torch.device) -> nn.Module:
    """`module` with its 4-d weights in the chosen format; convolutions then produce activations in
    it whatever the input's format (their output follows the weight), so batches need no change."""
    return module.to(memory_format=memory_format(choice, device))  # type: ignore[call-overload]  # stubs omit it
