"""Learning-rate schedules of `diffnas train` as pure functions of (epoch, config).

The lr is set once per epoch, before its first step, as torch's schedulers stepped once per epoch
do. cosine: quark0/darts cnn/train.py, CosineAnnealingLR(T_max=epochs, eta_min=lr_min). step:
quark0/darts cnn/train_imagenet.py, StepLR(step_size=1, gamma=0.97), whose `scheduler.step()` at the
top of each epoch (PyTorch 0.3 semantics) gives epoch e the lr lr * gamma^e, epoch 0 the initial lr.
"""

from __future__ import annotations

import math

from .config import TrainConfig


def cosine(epoch: int, epochs: int, lr: float, lr_min: float) -> float:
    """Cosine annealing from lr (epoch 0) towards lr_min (reached at epoch == epochs), as
    CosineAnnealingLR(T_max=epochs, eta_min=lr_min) stepped once per epoch."""
    return lr_min + (lr - lr_min) * (1 + math.cos(math.pi * epoch / epochs)) / 2


def lr_at(epoch: int, cfg: TrainConfig) -> float:
    """The lr of epoch `epoch` (0-based) under cfg.lr_schedule."""
    if cfg.lr_schedule == "step":
        # StepLR(step_size=1, gamma): no floor, lr_min plays no part
        return cfg.lr * cfg.lr_gamma ** epoch
    return cosine(epoch, cfg.epochs, cfg.lr, cfg.lr_min)
