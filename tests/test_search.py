import importlib
import json
import os
import signal

import pytest
import torch

from diffnas.config import search_config
from diffnas.search import lr_at, search

# the package re-exports the function `search`, which hides the module attribute
search_mod = importlib.import_module("diffnas.search")

TINY = dict(dataset="synthetic", layers=3, channels=4, nodes=2, batch_size=8, epochs=2, max_steps=3,
            plots=False, deterministic=True)


def final_state(run_dir):
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)["state"]
    return state["supernet"], state["arch"]


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


@pytest.mark.parametrize("preset", ["darts", "dnas"])
def test_resume_after_mid_epoch_signal_is_exact(tmp_path, monkeypatch, preset):
    cfg = search_config(preset, **TINY, warmup_epochs=0, run_dir=str(tmp_path / "full"))
    full = search(cfg)
    assert not full.interrupted

    calls = {"n": 0}
    real = search_mod.search_step

    def step_then_signal(*args, **kwargs):
        out = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 4:  # epoch 2, step 1 of 3
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    monkeypatch.setattr(search_mod, "search_step", step_then_signal)
    cut = search(search_config(preset, **TINY, warmup_epochs=0, run_dir=str(tmp_path / "cut")))
    assert cut.interrupted and cut.exit_code == 128 + signal.SIGTERM
    monkeypatch.setattr(search_mod, "search_step", real)
    resumed = search(search_config(preset, **TINY, warmup_epochs=0), resume=tmp_path / "cut")
    assert not resumed.interrupted
    for a, b in zip(final_state(tmp_path / "full"), final_state(tmp_path / "cut")):
        assert_same(a, b)
    torch.testing.assert_close(full.history, resumed.history, rtol=0, atol=0)
    rows = [json.loads(line) for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    full_rows = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert rows[1]["train_loss"] == pytest.approx(full_rows[1]["train_loss"], rel=1e-12)


def test_run_folder_contents(tmp_path):
    r = search(search_config("darts-1st", **TINY, run_dir=str(tmp_path)))
    for name in ("config.json", "metrics.jsonl", "alphas.pt", "genotype.json", "genotypes.jsonl", "checkpoint.pt"):
        assert (tmp_path / name).is_file(), name
    assert any((tmp_path / "tb").iterdir())
    alphas = torch.load(tmp_path / "alphas.pt", weights_only=True)
    assert alphas["history"].shape == (3, 3, 5, 8)  # epochs + 1, layers, edges, ops
    torch.testing.assert_close(alphas["history"][-1], r.history[-1])
    assert len((tmp_path / "genotypes.jsonl").read_text().splitlines()) == 2
    row = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "w_lr", "alpha_lr", "seconds"):
        assert key in row


@pytest.mark.parametrize("order", ["first", "second", "one-level"])
def test_every_order_updates_alpha_and_weights(tmp_path, order):
    torch.manual_seed(TINY_SEED := 2)
    cfg = search_config("darts", **{**TINY, "epochs": 1, "max_steps": 2}, order=order, run_dir=str(tmp_path))
    r = search(cfg)
    assert not torch.equal(r.history[0], r.history[-1])
    init = search_mod.build(cfg, 3, 10)[0]  # same seed -> same initial weights
    weights, _ = final_state(tmp_path)
    assert any(not torch.equal(init.state_dict()[k], weights[k]) for k in weights if k.endswith("weight"))


def test_warmup_keeps_alpha_fixed(tmp_path):
    r = search(search_config("darts-1st", **TINY, warmup_epochs=1, run_dir=str(tmp_path)))
    torch.testing.assert_close(r.history[0], r.history[1])
    assert not torch.equal(r.history[1], r.history[2])


def test_cosine_schedule_endpoints():
    cfg = search_config("darts", epochs=10)
    assert lr_at(0, cfg) == pytest.approx(0.025)
    assert lr_at(10, cfg) == pytest.approx(0.001)
    assert lr_at(5, cfg) == pytest.approx((0.025 + 0.001) / 2)
