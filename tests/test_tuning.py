"""diffnas.tuning: the memory format and the batched edges change speed, not what a run computes."""

import copy
import importlib
import os
import signal

import pytest
import torch

from diffnas import fused as fused_lib
from diffnas import tuning
from diffnas.config import from_dict, search_config
from diffnas.errors import ConfigError
from diffnas.search import search
from diffnas.supernet import Supernet
from diffnas.train import TrainConfig, train

search_mod = importlib.import_module("diffnas.search")   # the package re-exports the function `search`

SEARCH = dict(dataset="synthetic", layers=3, channels=8, nodes=2, batch_size=8, epochs=1, max_steps=3,
              plots=False, deterministic=True, warmup_epochs=0)
TRAIN = dict(dataset="synthetic", layers=3, channels=4, batch_size=16, epochs=1, max_steps=3, plots=False,
             genotype="DARTS_V2")


def checkpoint_state(run_dir):
    return torch.load(run_dir / "checkpoint.pt", weights_only=True)["state"]


def is_channels_last(w: torch.Tensor) -> bool:
    return w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()


def assert_close_overall(got: dict, want: dict, rtol: float) -> None:
    """Largest difference over all floating tensors within rtol of the largest value: single tensors
    such as the stem BN's bias have gradients that nearly cancel, so their own relative error is noise."""
    keys = [k for k, v in want.items() if v.is_floating_point()]
    diff = max((got[k] - want[k]).abs().max().item() for k in keys)
    scale = max(want[k].abs().max().item() for k in keys)
    assert diff <= rtol * scale, f"largest difference {diff:.3g}, largest value {scale:.3g}"


def test_auto_means_contiguous_everywhere_and_plain_edges_on_cpu_only():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert tuning.memory_format("auto", cpu) == torch.contiguous_format
    assert tuning.memory_format("auto", cuda) == torch.contiguous_format
    assert tuning.memory_format("contiguous", cpu) == torch.contiguous_format
    assert tuning.memory_format("channels_last", cuda) == torch.channels_last
    assert not tuning.fused_edges("auto", cpu) and tuning.fused_edges("auto", cuda)
    assert tuning.fused_edges("fused", cpu) and not tuning.fused_edges("plain", cuda)
    # one line, from Python too
    with pytest.raises(ConfigError, match="memory_format: 'channels_first' is not one of"):
        tuning.memory_format("channels_first", cpu)


def test_a_bad_value_is_a_config_error_with_a_suggestion():
    with pytest.raises(ConfigError, match="channels_last"):
        search_config("darts", memory_format="channels-last")
    with pytest.raises(ConfigError, match="edges"):
        search_config("darts", edges="batched")


@pytest.mark.parametrize("partial", [1, 4])
def test_the_supernet_in_channels_last_computes_the_same_function(partial):
    # float64, so that what is compared is the function, not float32 rounding (which channels_last
    # makes larger on CPU: its batch norm is ~10x less accurate, benchmarks/NOTES.md)
    torch.manual_seed(0)
    ref = Supernet(channels=8, layers=3, nodes=2, partial=partial, fused=True).double()
    psi = torch.softmax(torch.randn(3, 5, 8, dtype=torch.float64), -1)
    edge = torch.rand(3, 5, dtype=torch.float64) if partial > 1 else None   # weights the bypassed channels
    x = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    results = []
    for fmt, fused in ((torch.contiguous_format, True), (torch.channels_last, False), (torch.channels_last, True)):
        net = copy.deepcopy(ref).set_fused(fused).to(memory_format=fmt)
        p = psi.clone().requires_grad_()
        e = None if edge is None else edge.clone().requires_grad_()
        y = net(x, p, e)
        (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)).sum().backward()
        grads = torch.cat([w.grad.flatten() for w in net.parameters()])
        results.append((y, p.grad, grads, torch.cat([b.flatten() for b in net.buffers() if b.is_floating_point()]))
                       + (() if e is None else (e.grad,)))
    assert is_channels_last(net.stem[0].weight)
    for got in results[1:]:
        for a, b in zip(got, results[0]):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-10 * b.abs().max().item())


def count_batched_edges(monkeypatch) -> dict:
    calls = {"n": 0}
    real = fused_lib.edge_forward

    def counted(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(fused_lib, "edge_forward", counted)
    return calls


@pytest.mark.parametrize("preset", ["darts-1st", "darts", "pc-darts", "dnas"])
def test_search_in_channels_last_with_plain_edges_equals_contiguous_with_fused_edges(tmp_path, monkeypatch,
                                                                                      preset):
    calls = count_batched_edges(monkeypatch)
    states = {}
    # DNAS's skip dropout draws its masks in memory order, so the two layouts drop different
    # elements: without it, the comparison is of the computation alone
    extra = {"skip_dropout": 0.0} if preset == "dnas" else {}
    for fmt, edges in (("channels_last", "plain"), ("contiguous", "fused")):
        before = calls["n"]
        search(search_config(preset, **SEARCH, **extra, memory_format=fmt, edges=edges, run_dir=str(tmp_path / fmt)))
        assert (calls["n"] > before) == (edges == "fused")
        states[fmt] = checkpoint_state(tmp_path / fmt)
    # channels=8: with 4, PC-DARTS edges carry one channel, whose 1x1 conv weights a following BN
    # makes scale-free; their gradients are rounding noise, which three steps amplify to 1e-2
    cl, nchw = states["channels_last"], states["contiguous"]
    assert is_channels_last(cl["supernet"]["stem.0.weight"])
    assert nchw["supernet"]["stem.0.weight"].is_contiguous()
    # the same function (float64 test above); float32 rounding differs, channels_last's BN being less
    # accurate, and three steps grow it: weights to ~3e-4 of their largest value, alpha (which starts
    # at 1e-3 * N(0, 1) and moves ~alpha_lr = 3e-4 a step) to ~2e-3 of its largest value
    assert_close_overall(cl["supernet"], nchw["supernet"], 3e-3)
    if preset in ("darts-1st", "pc-darts"):
        # second order (finite differences divide rounding by 2r) and DNAS (near-zero gradients of the
        # zero-one loss) hand Adam gradients whose sign is rounding noise: alpha may then differ by up to
        # alpha_lr a step whatever the layout, so only the first-order alphas are compared
        assert_close_overall(cl["arch"], nchw["arch"], 2e-2)


def test_the_default_on_cpu_runs_contiguous_without_batched_edges(tmp_path, monkeypatch):
    calls = count_batched_edges(monkeypatch)
    search(search_config("darts-1st", **SEARCH, run_dir=str(tmp_path / "run")))
    assert calls["n"] == 0
    assert checkpoint_state(tmp_path / "run")["supernet"]["stem.0.weight"].is_contiguous()


def test_training_in_channels_last_equals_contiguous_and_auto_is_contiguous_on_cpu(tmp_path):
    states = {}
    for fmt in ("auto", "channels_last"):
        train(from_dict(TrainConfig, {**TRAIN, "memory_format": fmt, "run_dir": str(tmp_path / fmt)}))
        states[fmt] = checkpoint_state(tmp_path / fmt)["model"]
    assert is_channels_last(states["channels_last"]["stem.0.weight"])
    assert states["auto"]["stem.0.weight"].is_contiguous()
    assert_close_overall(states["channels_last"], states["auto"], 3e-3)


def interrupted_search(run, monkeypatch, **values):
    """A 2-epoch search stopped by SIGINT after its second step (checkpoint saved)."""
    real = search_mod.search_step
    steps = {"n": 0}

    def step_then_stop(*args, **kwargs):
        out = real(*args, **kwargs)
        steps["n"] += 1
        if steps["n"] == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(search_mod, "search_step", step_then_stop)
    cut = search(search_config("darts-1st", **{**SEARCH, "epochs": 2}, run_dir=str(run), **values),
                 raise_on_stop=False)
    monkeypatch.setattr(search_mod, "search_step", real)
    assert cut.interrupted


def test_a_resume_may_change_the_memory_format_and_edges(tmp_path, monkeypatch):
    run = tmp_path / "run"
    interrupted_search(run, monkeypatch, memory_format="contiguous", edges="fused")
    resumed = search(search_config("darts-1st", memory_format="channels_last", edges="plain"), resume=run)
    assert not resumed.interrupted
    state = checkpoint_state(run)
    assert state["epoch"] == 2
    assert is_channels_last(state["supernet"]["stem.0.weight"])


def spy_formats(monkeypatch) -> list:
    """The memory format each run applies (tuning.apply_memory_format's choice), in order."""
    seen = []
    real = tuning.apply_memory_format

    def spy(module, choice, device):
        seen.append(choice)
        return real(module, choice, device)

    monkeypatch.setattr(tuning, "apply_memory_format", spy)
    return seen


def test_auto_typed_on_resume_replaces_a_saved_explicit_format(tmp_path, monkeypatch):
    """`--memory-format auto` is the default value; typed on resume it still replaces the run's saved
    'channels_last' (it was ignored: only values away from the defaults were taken)."""
    from diffnas.cli import main

    run = tmp_path / "run"
    interrupted_search(run, monkeypatch, memory_format="channels_last", edges="fused")
    seen = spy_formats(monkeypatch)
    calls = count_batched_edges(monkeypatch)
    assert main(["search", "--resume", str(run), "--memory-format", "auto", "--edges", "auto", "--no-plots"]) == 0
    assert seen == ["auto"] and calls["n"] == 0
    assert checkpoint_state(run)["supernet"]["stem.0.weight"].is_contiguous()


def test_a_resume_without_the_flag_keeps_the_saved_format(tmp_path, monkeypatch):
    from diffnas.cli import main

    run = tmp_path / "run"
    interrupted_search(run, monkeypatch, memory_format="channels_last")
    seen = spy_formats(monkeypatch)
    assert main(["search", "--resume", str(run), "--no-plots"]) == 0
    assert seen == ["channels_last"]
    assert is_channels_last(checkpoint_state(run)["supernet"]["stem.0.weight"])


def test_the_python_api_takes_given_fields_on_resume_and_otherwise_those_off_the_defaults(tmp_path, monkeypatch):
    for name in ("a", "b"):
        interrupted_search(tmp_path / name, monkeypatch, memory_format="channels_last")
    seen = spy_formats(monkeypatch)
    again = search_config("darts-1st", memory_format="auto")
    # without `given`, "auto" (the default) cannot be told from "not set": the saved value stays
    search(again, resume=tmp_path / "a")
    search(again, resume=tmp_path / "b", given={"memory_format"})
    assert seen == ["channels_last", "auto"]


def test_auto_typed_on_a_training_resume_replaces_a_saved_explicit_format(tmp_path, monkeypatch):
    from diffnas.cli import main

    run = tmp_path / "run"
    cut = train(from_dict(TrainConfig, {**TRAIN, "epochs": 2, "memory_format": "channels_last", "run_dir": str(run)}),
                stop_after=2)
    assert cut.exit_code
    seen = spy_formats(monkeypatch)
    assert main(["train", "--resume", str(run), "--memory-format", "auto", "--no-plots"]) == 0
    assert main(["train", "--resume", str(run), "--epochs", "3", "--no-plots"]) == 0
    assert seen == ["auto", "channels_last"]   # typed: taken; not typed: the run's saved value


def test_bf16_with_channels_last_on_cpu_is_cautioned_and_nothing_else_is():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert "non-finite" in tuning.caution("channels_last", "bf16", cpu)
    for args in (("auto", "bf16", cpu), ("contiguous", "bf16", cpu), ("channels_last", "fp32", cpu),
                 ("channels_last", "bf16", cuda)):
        assert tuning.caution(*args) is None, args
