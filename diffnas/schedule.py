"""Learning-rate schedules of `diffnas train` as pure functions of (epoch, config).

The lr is set once per epoch, before its first step, as torch's schedulers stepped once per epoch
do. cosine: quark0/darts cnn/train.py, CosineAnnealingLR(T_max=epochs, eta_min=lr_min). step:
quark0/darts cnn/train_imagenet.py, StepLR(step_size=1, gamma=0.97), whose `scheduler.step()` at the
top of each epoch (PyTorch 0.3 semantics) gives epoch e the lr lr * gamma^e, epoch 0 the initial lr.
"""

from __future__ import annotations

import math

from .config import TrainConfig


def lr_at(epoch: int, cfg: TrainConfig) -> float:
    """The lr of epoch `epoch` (0-based) under cfg.lr_schedule."""
    if cfg.lr_schedule == "step":
        # StepLR(step_size=1, gamma): no floor, lr_min plays no part
        return cfg.lr * cfg.lr_gamma ** epoch
    # cosine annealing from lr (epoch 0) towards lr_min (reached at epoch == epochs)
    return cfg.lr_min + (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * epoch / cfg.epochs)) / 2
