"""diffnas.schedule against torch's own schedulers, stepped once per epoch."""

from __future__ import annotations

import pytest
import torch

from diffnas.config import TrainConfig, from_dict
from diffnas.errors import ConfigError
from diffnas.schedule import lr_at


def torch_lrs(cfg: TrainConfig, make_scheduler) -> list[float]:
    """The lr each epoch trains with when the scheduler steps once after every epoch."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr, momentum=cfg.momentum)
    scheduler = make_scheduler(opt)
    lrs = []
    for _ in range(cfg.epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize("epochs, lr, lr_min", [(10, 0.025, 0.0), (7, 0.1, 0.02), (600, 0.025, 0.001)])
def test_cosine_is_cosine_annealing_lr(epochs, lr, lr_min):
    cfg = from_dict(TrainConfig, {"epochs": epochs, "lr": lr, "lr_min": lr_min})
    assert cfg.lr_schedule == "cosine"  # the default
    expected = torch_lrs(cfg, lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs, eta_min=lr_min))
    assert [lr_at(e, cfg) for e in range(epochs)] == pytest.approx(expected, rel=1e-9, abs=1e-15)
    assert lr_at(0, cfg) == lr and lr_at(epochs, cfg) == pytest.approx(lr_min)


@pytest.mark.parametrize("epochs, lr, gamma", [(5, 0.1, 0.97), (250, 0.1, 0.97), (12, 0.05, 0.5)])
def test_step_is_step_lr_every_epoch(epochs, lr, gamma):
    cfg = from_dict(TrainConfig, {"epochs": epochs, "lr": lr, "lr_schedule": "step", "lr_gamma": gamma,
                                  "lr_min": 0.01})  # lr_min: not a floor for the step decay
    expected = torch_lrs(cfg, lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=gamma))
    assert [lr_at(e, cfg) for e in range(epochs)] == pytest.approx(expected, rel=1e-12)
    assert lr_at(0, cfg) == lr


def test_gamma_one_is_constant():
    cfg = from_dict(TrainConfig, {"epochs": 4, "lr_schedule": "step", "lr_gamma": 1})
    assert isinstance(cfg.lr_gamma, float) and [lr_at(e, cfg) for e in range(4)] == [cfg.lr] * 4


@pytest.mark.parametrize("values, match", [
    ({"lr_schedule": "steps"}, "lr_schedule: 'steps' is not one of cosine, step .did you mean 'step'"),
    ({"lr_gamma": 0.0}, "lr_gamma: must be > 0.0"),
    ({"lr_gamma": 1.5}, "lr_gamma: must be <= 1.0"),
])
def test_schedule_fields_are_validated(values, match):
    with pytest.raises(ConfigError, match=match):
        from_dict(TrainConfig, values)
