"""The training loop: exact resume, the run folder, NaN handling, the train/evaluate commands."""

from __future__ import annotations

import importlib
import json
import math

import pytest
import torch

from diffnas import cli
from diffnas.config import TrainConfig, from_dict
from diffnas.errors import DataError, NumericalError
from diffnas.evaluate import evaluate
from diffnas.genotype import Cell, CellwiseGenotype, load
from diffnas.train import drop_path_at, lr_at, train, train_config

# the package re-exports the function `train`, which hides the module attribute
train_mod = importlib.import_module("diffnas.train")

# synthetic: 64 + 64 images of 3x16x16; 3 cells of 4 channels keep a step in milliseconds
TINY = dict(dataset="synthetic", layers=3, channels=4, batch_size=16, epochs=2, max_steps=3, plots=False,
            drop_path=0.3, genotype="PC_DARTS_CIFAR")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(tmp_path, name, **kw):
    return from_dict(TrainConfig, {**TINY, "run_dir": str(tmp_path / name), **kw})


def weights(run_dir):
    return torch.load(run_dir / "checkpoint.pt", weights_only=True)["state"]["model"]


def without_seconds(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_schedules_are_pure_functions():
    cfg = from_dict(TrainConfig, {"epochs": 10, "lr": 0.1, "lr_min": 0.02, "drop_path": 0.2})
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(5, cfg) == pytest.approx(0.06)
    assert lr_at(10, cfg) == pytest.approx(0.02)
    assert [drop_path_at(e, cfg) for e in (0, 5)] == pytest.approx([0.0, 0.1])
    imagenet = train_config("imagenet")
    assert (imagenet.layers, imagenet.channels, imagenet.label_smoothing) == (14, 48, 0.1)


def test_resume_mid_epoch_ends_with_identical_weights(tmp_path, capsys):
    full = train(tiny(tmp_path, "full"))
    assert full.exit_code == 0 and len(full.metrics) == 2
    # stopped after 2 of epoch 1's 3 steps; resumed and stopped again after epoch 2's first step; finished
    part = train(tiny(tmp_path, "part"), stop_after=2)
    assert part.exit_code == 143  # 128 + SIGTERM
    assert "resume with: diffnas train --resume" in capsys.readouterr().err
    assert train(TrainConfig(), resume=tmp_path / "part", stop_after=2).exit_code == 143
    done = train(TrainConfig(), resume=tmp_path / "part")
    a, b = weights(tmp_path / "full"), weights(tmp_path / "part")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert without_seconds(done.metrics) == without_seconds(full.metrics)
    rows = [json.loads(line) for line in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert without_seconds(rows) == without_seconds(full.metrics)


def test_run_folder_contents(tmp_path):
    r = train(tiny(tmp_path, "run", epochs=1, max_steps=1))
    run = tmp_path / "run"
    for name in ("config.json", "genotype.json", "metrics.jsonl", "result.json", "checkpoint.pt"):
        assert (run / name).is_file(), name
    assert json.loads((run / "config.json").read_text())["command"] == "train"
    assert load(str(run / "genotype.json")) == load("PC_DARTS_CIFAR")
    row = json.loads((run / "metrics.jsonl").read_text())
    assert set(row) == {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "drop_path", "seconds"}
    result = json.loads((run / "result.json").read_text())
    assert result["test_acc"] == r.test_acc and 0.0 <= r.test_acc <= 1.0
    assert result["params"] == r.params > 0 and r.aux_params > 0
    # evaluating the checkpoint reproduces the last test accuracy
    ev = evaluate(run)
    assert ev["test_acc"] == pytest.approx(r.test_acc) and ev["params"] == r.params
    assert ev["test_error"] == pytest.approx(1 - r.test_acc) and ev["madds"] > 0


def test_per_cell_genotype_trains(tmp_path):
    genes = [("sep_conv_3x3", 0), ("none", 1), ("dil_conv_3x3", 2), ("skip_connect", 1)]
    cells = CellwiseGenotype((Cell(tuple(genes), (2, 3)), Cell((("max_pool_3x3", 0), ("skip_connect", 1)), (2,), True),
                              Cell(tuple(reversed(genes[:2])), (2,), True)))
    r = train(tiny(tmp_path, "cellwise", epochs=1, max_steps=2), cells)
    assert math.isfinite(r.test_loss)
    assert load(str(tmp_path / "cellwise" / "genotype.json")) == cells


def test_bf16_autocast_trains(tmp_path):
    r = train(tiny(tmp_path, "bf16", epochs=1, max_steps=1, precision="bf16"))
    assert math.isfinite(r.metrics[0]["train_loss"])
    assert all(v.dtype == torch.float32 for k, v in weights(tmp_path / "bf16").items() if v.is_floating_point())


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    build = train_mod.build_network

    def poisoned(*args, **kwargs):
        net = build(*args, **kwargs)
        calls = {"n": 0}

        def hook(module, inputs, out):
            calls["n"] += module.training
            return out * float("nan") if module.training and calls["n"] == 4 else out

        net.classifier.register_forward_hook(hook)
        return net

    monkeypatch.setattr(train_mod, "build_network", poisoned)
    with pytest.raises(NumericalError, match="epoch 2 step 1.*last good checkpoint"):
        train(tiny(tmp_path, "nan"))
    saved = torch.load(tmp_path / "nan" / "checkpoint.pt", weights_only=True)["state"]
    assert saved["epoch"] == 1 and all(torch.isfinite(v).all() for v in saved["model"].values()
                                       if v.is_floating_point())


def test_images_unfit_for_the_setting(tmp_path):
    with pytest.raises(DataError, match="3 channels"):
        train(train_config("imagenet", dataset="digits", run_dir=str(tmp_path / "x")))
    with pytest.raises(DataError, match="at least 32x32"):  # synthetic images are 16x16
        train(train_config("imagenet", dataset="synthetic", layers=3, channels=4, run_dir=str(tmp_path / "y")))


# ---------------------------------------------------------------------------------------------
# command line

def test_cli_train_then_evaluate_on_digits(tmp_path, capsys):
    run = tmp_path / "run"
    code = cli.main(["train", "--genotype", "DARTS_V2", "--epochs", "1", "--max-steps", "2", "--layers", "5",
                     "--channels", "8", "--run-dir", str(run), "--no-plots"])
    assert code == 0, capsys.readouterr().err
    assert "test accuracy" in capsys.readouterr().out
    cfg = json.loads((run / "config.json").read_text())
    assert (cfg["dataset"], cfg["layers"], cfg["channels"], cfg["epochs"]) == ("digits", 5, 8, 1)
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
    assert cli.main(["evaluate", str(run / "checkpoint.pt"), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["params"] == json.loads((run / "result.json").read_text())["params"]
    # a second run into the same folder is refused, not overwritten
    assert cli.main(["train", "--run-dir", str(run), "--epochs", "1"]) == 2
    assert "--resume" in capsys.readouterr().err


@pytest.mark.parametrize("genotype,message", [
    ("{not json", "malformed"),
    ("Genotype(normal=[('sep_conv_9x9', 0), ('skip_connect', 1)], normal_concat=[2], "
     "reduce=[('max_pool_3x3', 0), ('skip_connect', 1)], reduce_concat=[2])", "unknown op"),
    ("Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 4)], normal_concat=[2], "
     "reduce=[('max_pool_3x3', 0), ('skip_connect', 1)], reduce_concat=[2])", "input 4"),
])
def test_cli_bad_genotype_is_one_line_exit_2(tmp_path, capsys, genotype, message):
    path = tmp_path / "g.txt"
    path.write_text(genotype)
    assert cli.main(["train", "--genotype", str(path), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("diffnas: error:") and message in err
    assert not (tmp_path / "run").exists()


def test_cli_wrong_images_for_setting_exit_2(tmp_path, capsys):
    assert cli.main(["train", "--setting", "imagenet", "--dataset", "digits", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "3 channels" in err
