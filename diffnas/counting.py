"""Parameter and multiply-add counts of a network.

Parameters: the convention of quark0/darts utils.count_parameters_in_MB, every parameter except
the auxiliary head's (it is dropped after training). Multiply-adds: one forward pass in eval mode
(so no auxiliary head) with hooks on `nn.Conv2d` and `nn.Linear`; a conv output element costs
(C_in / groups) * kH * kW multiply-adds, a linear output element `in_features`. Pooling, BN,
ReLU, additions and concatenation are not counted. This gives 528M for DARTS_V2 on CIFAR (FairDARTS's
genotypes.py says "528M") but 530M for DARTS's ImageNet mobile network, 8% below the paper's 574M, whose
counter was not released (quark0/darts issue #46 finds 523M counting as here): figures for papers'
tables are this counter's, not the papers'.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def count_params(model: nn.Module, exclude_aux: bool = True) -> int:
    """Number of parameters, without those under `auxiliary_head` when exclude_aux."""
    return sum(p.numel() for name, p in model.named_parameters()
               if not (exclude_aux and name.split(".")[0] == "auxiliary_head"))


def count_madds(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-adds of one image of `input_shape` (C, H, W) through `model` in eval mode."""
    total = 0

    def conv_hook(module: nn.Conv2d, inputs: tuple, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += out[0].numel() * (module.in_channels // module.groups) * kh * kw

    def linear_hook(module: nn.Linear, inputs: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += out[0].numel() * module.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    device = next(model.parameters()).device
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return int(total)
