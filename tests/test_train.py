"""The training loop: exact resume, the run folder, NaN handling, the train/evaluate commands."""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
import shutil
import signal

import pytest
import torch

from formats_fixtures import write_image_folder
from progress_helpers import bars_from_the_start, check_aligned, redraw_every_step, shown

from diffnas import checkpoint, cli
from diffnas import genotype as G
from diffnas.config import TrainConfig, from_dict, train_config
from diffnas.errors import CheckpointError, ConfigError, DataError, GenotypeError, NumericalError
from diffnas.evaluate import evaluate
from diffnas.genotype import Cell, CellwiseGenotype, load
from diffnas.scoring import score_network
from diffnas.train import drop_path_at, lr_at, train

# the package re-exports the function `train`, which hides the module attribute
train_mod = importlib.import_module("diffnas.train")

# synthetic: 64 + 64 images of 3x16x16; 3 cells of 4 channels keep a step in milliseconds
TINY = dict(dataset="synthetic", layers=3, channels=4, batch_size=16, epochs=2, max_steps=3, plots=False,
            drop_path=0.3, genotype="PC_DARTS_CIFAR")


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


class TwoHeads(torch.nn.Module):
    """A linear classifier with a linear auxiliary head: forward(x, drop_prob) -> (logits, aux)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.main, self.aux = torch.nn.Linear(6, 4), torch.nn.Linear(6, 4)

    def forward(self, x, drop_prob=0.0):
        return self.main(x), (self.aux(x) if self.training else None)


def smoothed_ce(logits, y, eps):
    """Label-smoothed cross-entropy by its definition: (1 - eps) * -log p_y + eps * mean_k -log p_k."""
    logp = logits.double().log_softmax(1)
    return ((1 - eps) * -logp.gather(1, y[:, None])[:, 0] + eps * -logp.mean(1)).mean()


@pytest.mark.parametrize("clip", [0.0, 0.05])
def test_train_step_is_main_plus_weighted_aux_loss_smoothed_and_clipped(clip):
    model, x, y = TwoHeads(), torch.randn(5, 6), torch.tensor([0, 1, 2, 3, 1])
    cfg = from_dict(TrainConfig, {"auxiliary": 0.4, "label_smoothing": 0.1, "grad_clip": clip})
    ref = TwoHeads()
    total = smoothed_ce(ref.main(x), y, 0.1) + 0.4 * smoothed_ce(ref.aux(x), y, 0.1)
    grads = torch.autograd.grad(total, list(ref.parameters()))
    norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))
    scale = min(1.0, clip / float(norm)) if clip > 0 else 1.0
    assert clip == 0 or scale < 0.5   # the clip binds
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    loss, correct = train_mod.train_step(model, model, opt, x, y, 0.0, cfg)
    assert float(loss) == pytest.approx(float(smoothed_ce(ref.main(x), y, 0.1).detach()), rel=1e-6)   # main head
    assert int(correct) == int((ref.main(x).detach().argmax(1) == y).sum())
    for p, r, g in zip(model.parameters(), ref.parameters(), grads):
        torch.testing.assert_close(p.detach(), (r - 0.5 * scale * g).detach(), rtol=1e-5, atol=1e-6)


def test_score_is_the_mean_over_every_image_including_a_short_last_batch():
    class Fixed:   # the Batches interface score() reads: 3 batches of 4, 4 and 2 images
        device = torch.device("cpu")
        xs = [torch.randn(n, 6) for n in (4, 4, 2)]
        ys = [torch.randint(0, 4, (n,)) for n in (4, 4, 2)]

        def __len__(self):
            return 3

        def epoch(self, _):
            return zip(self.xs, self.ys)

    model, batches = TwoHeads(), Fixed()
    loss, acc = score_network(model, batches)
    x, y = torch.cat(Fixed.xs), torch.cat(Fixed.ys)
    logits = model.main(x).detach()
    assert loss == pytest.approx(float(smoothed_ce(logits, y, 0.0)), rel=1e-6)
    assert acc == pytest.approx(float((logits.argmax(1) == y).double().mean()))
    assert model.training   # put back in the mode it was in


def test_score_runs_batch_norm_on_its_running_statistics():
    """The test pass scores in eval mode (DARTS train.py `infer`): batch norm by its running statistics,
    not the batch's; TwoHeads has none, so a score in training mode passed the test above."""
    class Normed(TwoHeads):
        def __init__(self):
            super().__init__()
            self.bn = torch.nn.BatchNorm1d(6)
            self.bn.running_mean.uniform_(-1, 1)
            self.bn.running_var.uniform_(0.5, 2)

        def forward(self, x, drop_prob=0.0):
            return super().forward(self.bn(x), drop_prob)

    class Batch:
        device = torch.device("cpu")
        x, y = torch.randn(8, 6) * 3 + 1, torch.randint(0, 4, (8,))

        def __len__(self):
            return 1

        def epoch(self, _):
            return [(self.x, self.y)]

    model = Normed()
    before = model.bn.running_mean.clone()
    loss, _ = score_network(model, Batch())
    normed = (Batch.x - before) / torch.sqrt(model.bn.running_var + model.bn.eps)
    expected = smoothed_ce(model.main(normed), Batch.y, 0.0)
    assert loss == pytest.approx(float(expected), rel=1e-5)
    assert torch.equal(model.bn.running_mean, before) and model.training   # statistics untouched, mode back


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
    # one batch of 64 holds the whole test split, so the test pass max_steps=1 allows covers it
    r = train(tiny(tmp_path, "run", epochs=1, max_steps=1, batch_size=64))
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
    assert result["device_seconds"] == pytest.approx(result["seconds"]) and r.seconds > 0   # one process
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
    # the network trained is the per-cell one: its weights, counted here from the cells (no aux head)
    from diffnas.network import build_network

    built = build_network(cells, channels=4, classes=10, auxiliary=False)
    assert r.params == sum(p.numel() for p in built.parameters())
    assert r.params != sum(p.numel() for p in build_network(load("PC_DARTS_CIFAR"), channels=4, layers=3,
                                                            classes=10, auxiliary=False).parameters())


@pytest.mark.parametrize("given", ["DARTS_V1", "object", "text"])
def test_the_config_records_the_genotype_trained_not_the_configs_default(tmp_path, given):
    """train(cfg, genotype) trained `genotype` but config.json said cfg.genotype (PC_DARTS_CIFAR here):
    `diffnas train --config RUN/config.json` would have trained another network. A name or notation
    is taken as well as a genotype object (a name was an AttributeError)."""
    trained = load("random:5") if given != "DARTS_V1" else load("DARTS_V1")
    genotype = {"DARTS_V1": "DARTS_V1", "object": trained, "text": str(trained)}[given]
    assert train(tiny(tmp_path, "run", epochs=1, max_steps=1), genotype).exit_code == 0
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["genotype"]
    assert load(recorded) == trained == load(str(tmp_path / "run" / "genotype.json"))
    if given == "DARTS_V1":
        assert recorded == "DARTS_V1"   # a name stays a name


def test_the_configs_own_genotype_given_again_keeps_its_spec(tmp_path):
    assert train(tiny(tmp_path, "run", epochs=1, max_steps=1), load("PC_DARTS_CIFAR")).exit_code == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["genotype"] == "PC_DARTS_CIFAR"


def test_drop_path_reaches_the_cells_on_the_ramp_of_the_original(tmp_path, monkeypatch):
    """The probability each training step's cells drop paths with: drop_path * epoch / epochs
    (quark0/darts train.py: model.drop_path_prob = args.drop_path_prob * epoch / args.epochs), on every
    non-identity op of the genotype, and none at test time. A training that passed 0 still logged the ramp."""
    import diffnas.network as network

    real, seen = network.drop_path, []

    def recording(x, drop_prob):
        seen.append(drop_prob)
        return real(x, drop_prob)

    monkeypatch.setattr(network, "drop_path", recording)
    cfg = tiny(tmp_path, "run", epochs=4, max_steps=1, genotype="DARTS_V2", auxiliary=0.0)
    epochs_seen = []
    real_begin = train_mod.Loop.begin_epoch

    def begin(self):
        epochs_seen.append(len(seen))
        return real_begin(self)

    monkeypatch.setattr(train_mod.Loop, "begin_epoch", begin)
    train(cfg)
    epochs_seen.append(len(seen))
    # per training forward: every gene of the 3 cells but the skip connections (identities at stride 1;
    # DARTS_V2's reduction cell reads its skips from node 2, so they are identities too)
    per_forward = sum(sum(op != "skip_connect" for op, _ in cell.genes) for cell in load("DARTS_V2").cells(3))
    counts = [b - a for a, b in zip(epochs_seen, epochs_seen[1:])]
    assert counts == [0, per_forward, per_forward, per_forward]   # epoch 0: probability 0; tests drop none
    for e in (1, 2, 3):
        ps = seen[sum(counts[:e]):sum(counts[:e + 1])]
        assert ps == [pytest.approx(0.3 * e / 4)] * per_forward


def test_bf16_autocast_trains(tmp_path, monkeypatch):
    dtypes = []
    build = train_mod.build_network

    def recording(*args, **kwargs):   # the classifier's output dtype in every forward
        net = build(*args, **kwargs)
        net.classifier.register_forward_hook(lambda module, inputs, out: dtypes.append(out.dtype))
        return net

    monkeypatch.setattr(train_mod, "build_network", recording)
    r = train(tiny(tmp_path, "bf16", epochs=1, max_steps=1, precision="bf16"))
    assert math.isfinite(r.metrics[0]["train_loss"])
    assert dtypes and set(dtypes) == {torch.bfloat16}   # the forward ran in bf16, training and test
    assert all(v.dtype == torch.float32 for k, v in weights(tmp_path / "bf16").items() if v.is_floating_point())


def poison_fourth_step(monkeypatch):
    """The 4th training forward (epoch 2 step 1 of TINY) gives NaN logits, once."""
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


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    poison_fourth_step(monkeypatch)
    ckpt = tmp_path / "nan" / "checkpoint.pt"
    with pytest.raises(NumericalError, match="epoch 2 step 1.*last good checkpoint") as info:
        train(tiny(tmp_path, "nan"))
    assert str(info.value).endswith(f"; run stopped, last good checkpoint: {ckpt} (after epoch 1)")  # as the search says
    saved = torch.load(tmp_path / "nan" / "checkpoint.pt", weights_only=True)["state"]
    assert saved["epoch"] == 1 and all(torch.isfinite(v).all() for v in saved["model"].values()
                                       if v.is_floating_point())


def test_nan_rollback_reloads_and_continues_with_half_the_lr(tmp_path, monkeypatch, capsys):
    poison_fourth_step(monkeypatch)
    r = train(tiny(tmp_path, "rollback", nan_rollback=1))
    err = capsys.readouterr().err
    # the search's words (diffnas.recovery): the epoch is the checkpoint's, epochs done
    assert "non-finite loss at epoch 2 step 1; rolled back to the start of epoch 2 with lr x0.5" in err
    assert [row["epoch"] for row in r.metrics] == [1, 2]
    assert r.metrics[1]["lr"] == pytest.approx(lr_at(1, tiny(tmp_path, "x")) / 2) and math.isfinite(r.test_loss)
    saved = torch.load(tmp_path / "rollback" / "checkpoint.pt", weights_only=True)["state"]
    assert (saved["rollbacks"], saved["lr_scale"]) == (1, 0.5)


class Killed(BaseException):
    """What SIGKILL leaves: the process stops where it is, nothing runs after."""


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_over(tmp_path, monkeypatch, capsys):
    full = train(tiny(tmp_path, "full", epochs=1, max_steps=2))

    def kill(*args, **kwargs):
        raise Killed

    monkeypatch.setattr(checkpoint, "save", kill)  # killed as the first checkpoint is written
    with pytest.raises(Killed):
        train(tiny(tmp_path, "killed", epochs=1, max_steps=2))
    monkeypatch.undo()
    run = tmp_path / "killed"
    assert not (run / "checkpoint.pt").exists() and len((run / "metrics.jsonl").read_text().splitlines()) == 1
    capsys.readouterr()

    done = train(TrainConfig(), resume=run)
    assert f"{run} has no checkpoint yet (stopped during its first epoch); starting it over" in capsys.readouterr().err
    a, b = weights(tmp_path / "full"), weights(run)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1]  # the killed epoch's row is not left beside the new one
    assert without_seconds(rows) == without_seconds(done.metrics) == without_seconds(full.metrics)


def test_resume_refuses_a_checkpoint_that_does_not_fit_the_network(tmp_path, capsys):
    run = tmp_path / "run"
    assert train(tiny(tmp_path, "run"), stop_after=1).exit_code == 143
    good = run / "checkpoint.pt"
    shutil.copy(good, tmp_path / "good.pt")

    # genotype.json of the folder swapped for another: the config matches, the network does not
    (run / "genotype.json").write_text(json.dumps(load("DARTS_V2").to_dict()))
    with pytest.raises(CheckpointError, match=r"'model' weights do not fit this run's network \(\d+ missing"):
        train(TrainConfig(), resume=run)
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"diffnas: error: {good}: the checkpoint's 'model' weights")
    assert "another genotype or size" in err

    # the genotype back, one tensor of the checkpoint edited to another shape
    (run / "genotype.json").write_text(json.dumps(load("PC_DARTS_CIFAR").to_dict()))
    blob = torch.load(good, weights_only=True)
    key = next(k for k, v in blob["state"]["model"].items() if v.dim() == 4)
    blob["state"]["model"][key] = torch.zeros(1, 1, 1, 1)
    torch.save(blob, good)
    with pytest.raises(CheckpointError, match=f"1 of another shape, first '{key}'"):
        train(TrainConfig(), resume=run)
    assert good.is_file() and (run / "config.json").is_file()  # a refused resume keeps the folder

    shutil.copy(tmp_path / "good.pt", good)  # the untouched checkpoint still resumes
    assert train(TrainConfig(), resume=run).exit_code == 0


def test_python_resume_refuses_another_genotype_even_with_the_same_weights(tmp_path):
    """train(cfg, genotype, resume=run) with a cell whose max pools are avg pools: the checkpoint's weights
    fit (pools have none), and the run trained the other network on, with genotype.json naming the first."""
    run = tmp_path / "run"
    first = load("DARTS_V2")
    assert train(tiny(tmp_path, "run"), first, stop_after=1).exit_code == 143
    (tmp_path / "swapped.json").write_text(json.dumps(first.to_dict()).replace("max_pool_3x3", "avg_pool_3x3"))
    swapped = load(str(tmp_path / "swapped.json"))
    assert swapped.to_dict() != first.to_dict()
    before = (run / "checkpoint.pt").read_bytes()
    with pytest.raises(CheckpointError, match=r"genotype: not the one the run in .* trains"):
        train(TrainConfig(), swapped, resume=run)
    assert (run / "checkpoint.pt").read_bytes() == before
    assert train(TrainConfig(), load(str(run / "genotype.json")), resume=run).exit_code == 0   # its own resumes


def test_python_train_takes_a_per_cell_genotypes_depth_unless_layers_is_given(tmp_path, monkeypatch, capsys):
    """train(train_config(...), genotype) after a dnas search failed: the network had the setting's 20
    cells, the genotype 4, and the message named a command-line flag. Another depth asked for is
    refused before the data is read."""
    train_module = importlib.import_module("diffnas.train")   # the package's `train` is the function
    cells = CellwiseGenotype(tuple(Cell((("sep_conv_3x3", 0), ("skip_connect", 1)), (2,), k in (1, 2))
                                   for k in range(4)))
    values = dict(dataset="synthetic", channels=4, epochs=1, max_steps=1, batch_size=8, plots=False)
    result = train(train_config("cifar", run_dir=str(tmp_path / "own"), **values), cells)
    assert json.loads((result.run_dir / "config.json").read_text())["layers"] == 4
    assert "training a network of 4 cells (not the setting's 20)" in capsys.readouterr().err
    loads = []
    monkeypatch.setattr(train_module, "load_dataset", lambda *a, **k: loads.append(a))
    with pytest.raises(GenotypeError) as info:
        train(train_config("cifar", layers=6, run_dir=str(tmp_path / "typed"), **values), cells)
    assert str(info.value).endswith("train it at 4 cells (layers=4 or no layers value at all)") and loads == []


def test_python_resume_of_a_per_cell_training_under_the_imagenet_setting(tmp_path):
    """The new run took the genotype's 3 cells; the resume compared train_config("imagenet")'s 14 with
    TrainConfig()'s 20, took 14 for a typed value and refused it against the run's 3."""
    cells = CellwiseGenotype(tuple(Cell((("sep_conv_3x3", 0), ("skip_connect", 1)), (2,), k in (1, 2))
                                   for k in range(3)))
    write_image_folder(tmp_path / "data", classes=("a", "b"), per_class=4, size=(32, 32))
    cfg = train_config("imagenet", dataset="imagefolder", data_dir=str(tmp_path / "data"), channels=4, batch_size=4,
                       epochs=2, max_steps=1, random_resized_crop=32, plots=False, run_dir=str(tmp_path / "run"))
    first = train(cfg, cells, stop_after=1)
    assert first.exit_code and json.loads((first.run_dir / "config.json").read_text())["layers"] == 3
    resumed = train(cfg, cells, resume=first.run_dir)
    assert resumed.exit_code == 0 and len(resumed.metrics) == 2


def test_a_per_cell_genotype_sets_the_depth_unless_layers_is_given(tmp_path, capsys):
    from diffnas.genotype import to_json

    cells = CellwiseGenotype(tuple(Cell((("sep_conv_3x3", 0), ("skip_connect", 1)), (2,), k in (1, 2))
                                   for k in range(4)))
    spec = tmp_path / "g.json"
    spec.write_text(to_json(cells))
    argv = ["train", "--genotype", str(spec), "--dataset", "synthetic", "--channels", "4", "--epochs", "1",
            "--max-steps", "1", "--batch-size", "8", "--no-plots"]
    assert cli.main([*argv, "--run-dir", str(tmp_path / "own")]) == 0
    assert "per-cell genotype has 4 cells: training a network of 4 cells (not the setting's 20)" in \
        capsys.readouterr().err
    assert json.loads((tmp_path / "own" / "config.json").read_text())["layers"] == 4
    assert cli.main([*argv, "--layers", "3", "--run-dir", str(tmp_path / "typed")]) == 2   # typed: checked
    assert "train it at 4 cells (--layers 4" in capsys.readouterr().err
    # typed as the setting's own 20: refused too (the library takes the genotype's depth for the default)
    assert cli.main([*argv, "--layers", "20", "--run-dir", str(tmp_path / "typed20")]) == 2
    assert "per-cell genotype has 4 cells but the network has 20" in capsys.readouterr().err
    assert not (tmp_path / "typed20").exists()
    assert cli.main(["params", "--genotype", str(spec), "--channels", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["layers"] == 4 and out["genotype"] == cells.to_dict()   # an object, not JSON text in JSON
    assert cli.main(["evaluate", str(tmp_path / "own"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["genotype"] == cells.to_dict()


def test_a_run_that_fails_to_start_leaves_no_folder(tmp_path, capsys):
    with pytest.raises(DataError, match="cifar10: .*/nonexistent"):
        train(tiny(tmp_path, "new/run", dataset="cifar10", data_dir="/nonexistent"))
    one_cell = CellwiseGenotype((Cell((("sep_conv_3x3", 0), ("skip_connect", 1)), (2,)),))
    with pytest.raises(GenotypeError, match=r"1 cell but the network has 3: .* \(layers=1 or no layers value at "
                                            r"all\)$"):
        train(tiny(tmp_path, "new/run"), one_cell)
    assert not (tmp_path / "new").exists()
    assert cli.main(["train", "--dataset", "cifar10", "--data-dir", "/nonexistent", "--run-dir",
                     str(tmp_path / "X")]) == 2
    assert "cifar10: " in capsys.readouterr().err and not (tmp_path / "X").exists()
    # a folder of the user's stays, with what it held
    (tmp_path / "mine").mkdir()   # a folder of hidden files only is taken (one of other files is refused)
    (tmp_path / "mine" / ".keep").write_text("keep")
    with pytest.raises(GenotypeError):
        train(tiny(tmp_path, "mine"), one_cell)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == [".keep"]


def test_images_unfit_for_the_setting(tmp_path):
    with pytest.raises(DataError, match="3 channels"):
        train(train_config("imagenet", dataset="digits", run_dir=str(tmp_path / "x")))
    with pytest.raises(DataError, match="at least 32x32"):  # synthetic images are 16x16
        train(train_config("imagenet", dataset="synthetic", layers=3, channels=4, run_dir=str(tmp_path / "y")))


def test_imagenet_recipe_step_lr_resized_crops_and_matching_evaluation(tmp_path, capsys):
    """The imagenet setting trains with StepLR(1, 0.97) (lr of each epoch checked against torch's
    scheduler), random-resized crops and colour jitter, and tests with resize + centre crop; `evaluate`
    must use that same test transform and count multiply-adds at the crop size."""
    write_image_folder(tmp_path / "data", per_class=8, size=(40, 36))
    cfg = train_config("imagenet", data_dir=str(tmp_path / "data"), layers=3, channels=4, batch_size=8, epochs=3,
                       max_steps=2, random_resized_crop=32, plots=False, genotype="PC_DARTS_CIFAR",
                       run_dir=str(tmp_path / "r"))
    assert cfg.dataset == "imagefolder"
    aug = train_mod.augment_for(importlib.import_module("diffnas.data").load_dataset("imagefolder", cfg.data_dir), cfg)
    assert (aug.resized_crop, aug.crop_padding, aug.flip) == (32, 0, True)
    assert (aug.brightness, aug.contrast, aug.saturation, aug.hue) == (0.4, 0.4, 0.4, 0.2)
    result = train(cfg)
    assert "upsample" not in capsys.readouterr().err
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.97)
    expected = []
    for _ in range(3):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert [row["lr"] for row in result.metrics] == pytest.approx(expected, rel=1e-12)
    r = evaluate(tmp_path / "r")
    assert r["test_loss"] == pytest.approx(result.test_loss, rel=1e-5)
    assert r["test_acc"] == pytest.approx(result.test_acc)
    network = importlib.import_module("diffnas.network")
    counting = importlib.import_module("diffnas.counting")
    model = network.build_network(load("PC_DARTS_CIFAR"), "imagenet", 4, 3, 2, 3)
    assert r["madds"] == counting.count_madds(model, (3, 32, 32)) != counting.count_madds(model, (3, 40, 36))
    # crops larger than the stored images are allowed, with a notice
    train(from_dict(TrainConfig, {**dataclasses.asdict(cfg), "random_resized_crop": 48, "epochs": 1,
                                  "run_dir": str(tmp_path / "up")}))
    assert "random-resized crops of 48x48 from 40x36 images upsample every crop" in capsys.readouterr().err


def test_resume_of_a_run_saved_before_a_config_field_existed(tmp_path):
    """A checkpoint whose config lacks a field added later (here the lr schedule fields) resumes: the
    missing field counts as its default, the behaviour of the diffnas that wrote it."""
    part = train(tiny(tmp_path, "old"), stop_after=2)
    assert part.exit_code == 143
    path = tmp_path / "old" / "checkpoint.pt"
    blob = torch.load(path, weights_only=True)
    for key in ("lr_schedule", "lr_gamma"):
        del blob["config"][key]
    torch.save(blob, path)
    assert train(TrainConfig(), resume=tmp_path / "old").exit_code == 0
    # a field that differs from its default is still a different configuration
    part = train(tiny(tmp_path, "other", lr_schedule="step"), stop_after=2)
    blob = torch.load(tmp_path / "other" / "checkpoint.pt", weights_only=True)
    del blob["config"]["lr_schedule"]
    torch.save(blob, tmp_path / "other" / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="lr_schedule: checkpoint 'cosine', now 'step'"):
        train(TrainConfig(), resume=tmp_path / "other")


# ---------------------------------------------------------------------------------------------
# command line

def test_cli_train_then_evaluate_on_digits(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    code = cli.main(["train", "--genotype", "DARTS_V2", "--epochs", "1", "--max-steps", "2", "--layers", "5",
                     "--channels", "8", "--run-dir", str(run), "--no-plots"])
    assert code == 0, capsys.readouterr().err
    assert "test accuracy" in capsys.readouterr().out
    cfg = json.loads((run / "config.json").read_text())
    assert (cfg["dataset"], cfg["layers"], cfg["channels"], cfg["epochs"]) == ("digits", 5, 8, 1)
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
    bars_from_the_start(monkeypatch)
    assert cli.main(["evaluate", str(run / "checkpoint.pt"), "--json"]) == 0
    out, err = capsys.readouterr()
    r = json.loads(out)
    assert r["params"] == json.loads((run / "result.json").read_text())["params"]
    assert "evaluate" in err   # the progress bar while the test split is scored (stdout stays JSON)
    # a data folder for a network trained on the embedded digits: warned, as search and train warn it
    assert cli.main(["evaluate", str(run), "--data-dir", str(tmp_path), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["test_acc"] == r["test_acc"]
    assert f"diffnas: warning: data_dir: {str(tmp_path)!r} has no effect: the network was trained on digits" in err
    # any batch size scores the same (eval mode); one that is not a count is refused by name
    assert cli.main(["evaluate", str(run), "--batch-size", "7", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_acc"] == r["test_acc"]
    assert cli.main(["evaluate", str(run), "--batch-size", "0"]) == 2
    assert "--batch-size: must be >= 1, got 0" in capsys.readouterr().err
    from diffnas.evaluate import evaluate
    with pytest.raises(ConfigError, match=r"^batch_size: expected an integer >= 1, got 2.5$"):
        evaluate(run, batch_size=2.5)
    # a second run into the same folder is refused, not overwritten
    assert cli.main(["train", "--run-dir", str(run), "--epochs", "1"]) == 2
    assert "--resume" in capsys.readouterr().err


@pytest.mark.parametrize("genotype,message", [
    ("{not json", "malformed"),
    ("Genotype(normal=[('sep_conv_9x9', 0), ('skip_connect', 1)], normal_concat=[2], "
     "reduce=[('max_pool_3x3', 0), ('skip_connect', 1)], reduce_concat=[2])", "unknown op"),
    ("Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 4)], normal_concat=[2], "
     "reduce=[('max_pool_3x3', 0), ('skip_connect', 1)], reduce_concat=[2])", "reads state 4"),
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


def test_cli_lr_schedule_and_augmentation_flags(tmp_path, capsys):
    run = tmp_path / "run"
    code = cli.main(["train", "--dataset", "synthetic", "--layers", "3", "--channels", "4", "--batch-size", "16",
                     "--epochs", "2", "--max-steps", "1", "--lr-schedule", "step", "--lr-gamma", "0.5",
                     "--color-jitter", "0.2", "--run-dir", str(run), "--no-plots"])
    assert code == 0, capsys.readouterr().err
    cfg = json.loads((run / "config.json").read_text())
    assert (cfg["lr_schedule"], cfg["lr_gamma"], cfg["color_jitter"]) == ("step", 0.5, 0.2)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in rows] == pytest.approx([0.025, 0.0125])
    capsys.readouterr()
    assert cli.main(["train", "--dataset", "synthetic", "--lr-schedule", "linear", "--run-dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--lr-schedule: 'linear' is not one of cosine, step" in err[0] and not (tmp_path / "x").exists()


# ---------------------------------------------------------------------------------------------
# the test pass, finished runs, run folders in the way

def count_eval_forwards(monkeypatch, signal_at=None):
    """Count the network's evaluation forwards; with signal_at=n, SIGINT arrives during the n-th."""
    import os
    import signal

    calls = {"eval": 0}
    build = train_mod.build_network

    def counted(*args, **kwargs):
        net = build(*args, **kwargs)

        def hook(module, inputs):
            if not module.training:
                calls["eval"] += 1
                if calls["eval"] == signal_at:
                    os.kill(os.getpid(), signal.SIGINT)

        net.register_forward_pre_hook(hook)
        return net

    monkeypatch.setattr(train_mod, "build_network", counted)
    return calls


def test_max_steps_caps_the_test_pass_with_a_bar_and_a_stop_during_it_resumes_exactly(tmp_path, monkeypatch,
                                                                                       capsys):
    # the synthetic test split holds 64 images: 4 batches of 16, of which max_steps=3 are scored
    bars_from_the_start(monkeypatch)
    calls = count_eval_forwards(monkeypatch)
    full = train(tiny(tmp_path, "full"))
    assert calls["eval"] == 2 * TINY["max_steps"]
    err = capsys.readouterr().err
    assert "test 1/2" in err and "test 2/2" in err   # the test pass's progress bar

    # SIGINT during the first test batch of epoch 1: abandoned at once, the epoch's steps kept
    calls = count_eval_forwards(monkeypatch, signal_at=1)
    cut = train(tiny(tmp_path, "cut"), raise_on_stop=False)
    assert cut.exit_code == 130 and calls["eval"] == 1   # 128 + SIGINT
    assert "interrupted at epoch 1 during the test pass (its 3 steps are done); checkpoint saved; resume with: " \
           f"diffnas train --resume {tmp_path / 'cut'}" in capsys.readouterr().err
    state = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)["state"]
    assert (state["epoch"], state["step"]) == (0, TINY["max_steps"])

    calls = count_eval_forwards(monkeypatch)
    done = train(TrainConfig(), resume=tmp_path / "cut")
    assert done.exit_code == 0 and calls["eval"] == 2 * TINY["max_steps"]
    assert f"resuming {tmp_path / 'cut'} at epoch 1 test" in capsys.readouterr().err
    a, b = weights(tmp_path / "full"), weights(tmp_path / "cut")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert without_seconds(done.metrics) == without_seconds(full.metrics)


def test_resuming_a_finished_run_says_so_and_extending_it_says_the_schedule_changes(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    first = train(tiny(tmp_path, "run"))
    capsys.readouterr()
    steps = {"n": 0}
    real = train_mod.train_step

    def counted(*args, **kwargs):
        steps["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(train_mod, "train_step", counted)
    again = train(TrainConfig(), resume=run)
    assert capsys.readouterr().err == (f"diffnas: {run} is complete (2/2 epochs); nothing to do — pass epochs=N to "
                                       f"extend it (N = 600, the default, is taken only when named in given, the "
                                       f"fields to take from cfg: given={{'epochs'}})\n")
    assert steps["n"] == 0 and again.exit_code == 0
    assert (again.test_acc, again.test_loss, again.params) == (first.test_acc, first.test_loss, first.params)
    assert without_seconds(again.metrics) == without_seconds(first.metrics)

    longer = train(from_dict(TrainConfig, {"epochs": 3}), resume=run)
    assert ("diffnas: epochs changed from 2 to 3: the cosine lr schedule and the drop-path ramp are recomputed "
            "for 3 epochs from epoch 3 on (the epochs run so far followed the 2-epoch schedule)"
            ) in capsys.readouterr().err
    assert steps["n"] == TINY["max_steps"] and [r["epoch"] for r in longer.metrics] == [1, 2, 3]
    assert json.loads((run / "config.json").read_text())["epochs"] == 3   # a later resume knows
    train(TrainConfig(), resume=run)
    assert "is complete (3/3 epochs)" in capsys.readouterr().err
    # a run stopped in epoch 2 of 3 cannot be cut to 1 epoch: refused, nothing changed
    part = train(tiny(tmp_path, "part", epochs=3), stop_after=TINY["max_steps"] + 1)
    assert part.exit_code == 143
    with pytest.raises(ConfigError, match=f"^epochs: 1 given, but {tmp_path / 'part'} has run 1 of its 3 epochs "
                                          "and started epoch 2; a resume can change the total, but not to fewer "
                                          "than the 2 epochs begun$"):
        train(from_dict(TrainConfig, {"epochs": 1}), resume=tmp_path / "part")
    assert json.loads((tmp_path / "part" / "config.json").read_text())["epochs"] == 3
    # down to the 2 epochs begun is a shorter total, as the message says: epoch 2 is finished, and that is all
    done = train(from_dict(TrainConfig, {"epochs": 2}), resume=tmp_path / "part")
    assert done.exit_code == 0 and [row["epoch"] for row in done.metrics] == [1, 2]
    assert json.loads((tmp_path / "part" / "config.json").read_text())["epochs"] == 2


def test_a_run_dir_that_is_a_file_is_a_config_error(tmp_path, capsys):
    from diffnas.errors import ConfigError

    path = tmp_path / "taken"
    path.write_text("mine")
    for run_dir in (path, path / "sub"):
        with pytest.raises(ConfigError, match=f"^run_dir: {path} is a file, not a folder$"):
            train(tiny(tmp_path, "x", run_dir=str(run_dir)))
    assert cli.main(["train", "--run-dir", str(path), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err == f"diffnas: error: --run-dir: {path} is a file, not a folder\n"
    assert path.read_text() == "mine" and [p.name for p in tmp_path.iterdir()] == ["taken"]


def test_a_signal_after_the_last_epoch_is_saved_finishes_the_run(tmp_path, monkeypatch):
    """All epochs are done once the last checkpoint is written: a stop arriving then must not leave the
    run 'interrupted' without result.json; the result says it came (late_stop), as the search's does."""
    real = checkpoint.save
    saves = {"n": 0}

    def save_then_signal(*args, **kwargs):
        real(*args, **kwargs)
        saves["n"] += 1
        if saves["n"] == TINY["epochs"]:   # the last epoch's checkpoint
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(checkpoint, "save", save_then_signal)
    result = train(tiny(tmp_path, "r"), raise_on_stop=False)
    assert result.exit_code == 0 and result.late_stop == 128 + signal.SIGTERM
    assert len(result.metrics) == TINY["epochs"]
    assert json.loads((tmp_path / "r" / "result.json").read_text())["test_acc"] == result.test_acc


def test_the_progress_bar_shows_the_loss_of_the_steps_it_counts(tmp_path, monkeypatch, capsys):
    """tqdm counts a step when the next one is asked for: a postfix drawn at once would show the loss
    of step k+1 beside the count k (the same value at 0/2, 1/2 and 2/2 of a short epoch)."""
    losses = []
    real = train_mod.train_step

    def recorded(forward, model, opt, x, y, *args, **kwargs):
        loss, correct = real(forward, model, opt, x, y, *args, **kwargs)
        losses.append((float(loss), len(y)))
        return loss, correct

    monkeypatch.setattr(train_mod, "train_step", recorded)
    redraw_every_step(monkeypatch)
    r = train(tiny(tmp_path, "bar", epochs=1))
    err = capsys.readouterr().err
    check_aligned(shown(err, "train 1/1"), losses)
    row = r.metrics[0]
    assert (f"train epoch 1/1  train loss {row['train_loss']:.3f} acc {100 * row['train_acc']:.1f}%  test loss "
            f"{row['test_loss']:.3f} acc {100 * row['test_acc']:.1f}%  lr {row['lr']:.4g}  ") in err


def test_a_capped_test_pass_samples_the_test_split_instead_of_taking_its_first_images(tmp_path, monkeypatch):
    """An image folder lists its test images class by class: with --max-steps, the test pass took the
    first batches, all of one class (a user saw 'test error 0.00 %' that was 90% on the whole set)."""
    from formats_fixtures import write_image_folder

    from diffnas.data import Batches

    write_image_folder(tmp_path / "data", classes=("a", "b", "c", "d"), per_class=8, size=(8, 8))
    seen = []

    class Recording(Batches):
        def __init__(self, split, *args, **kwargs):
            if kwargs.get("shuffle") is False:   # the test pass
                seen.append(split.labels.tolist())
            super().__init__(split, *args, **kwargs)

    monkeypatch.setattr(train_mod, "Batches", Recording)
    result = train(tiny(tmp_path, "run", dataset="imagefolder", data_dir=str(tmp_path / "data"), batch_size=4,
                        max_steps=2, epochs=1))
    [labels] = seen
    assert len(labels) == 8 and len(set(labels)) > 1, labels   # file order: the first 8 are all class 0
    assert (result.test_images, result.test_images_total) == (8, 32)


def test_evaluate_refuses_an_image_folder_whose_classes_are_not_the_trained_ones(tmp_path):
    """No class names were kept: with a class folder renamed, evaluate scored the outputs against
    shifted labels (30.8% instead of 49.2% for a user) without a word."""
    import shutil

    from formats_fixtures import write_image_folder

    write_image_folder(tmp_path / "data", classes=("bird", "cat", "dog"), per_class=4, size=(8, 8))
    run = train(tiny(tmp_path, "run", dataset="imagefolder", data_dir=str(tmp_path / "data"), batch_size=4,
                     epochs=1, max_steps=1)).run_dir
    assert evaluate(run)["test_images"] == 12
    shutil.copytree(tmp_path / "data", tmp_path / "renamed")
    for part in ("train", "test"):
        (tmp_path / "renamed" / part / "bird").rename(tmp_path / "renamed" / part / "zebra")
    with pytest.raises(DataError) as info:
        evaluate(run, data_dir=tmp_path / "renamed")
    assert str(info.value) == (f"{tmp_path / 'renamed' / 'test' / 'zebra'}: class 'zebra' is not among the training "
                               f"classes ['bird', 'cat', 'dog']")


def test_evaluate_normalises_as_the_training_did_and_needs_only_the_test_folder(tmp_path, monkeypatch):
    """The per-channel mean and std of an image folder come from its training images: evaluate uses
    the ones the network trained with (another folder's train/ changed the inputs it was scored on),
    so a folder holding only test/ (read by the class names the network learnt) is enough."""
    import shutil

    from formats_fixtures import write_image_folder
    from PIL import Image

    write_image_folder(tmp_path / "data", classes=("bird", "cat", "dog"), per_class=4, size=(8, 8))
    run = train(tiny(tmp_path, "run", dataset="imagefolder", data_dir=str(tmp_path / "data"), batch_size=4,
                     epochs=1, max_steps=1)).run_dir
    first = evaluate(run)
    saved = checkpoint.load(run / "checkpoint.pt")
    assert len(saved["mean"]) == len(saved["std"]) == 3
    # the same test images beside other training images (all black): the same scores
    shutil.copytree(tmp_path / "data", tmp_path / "other")
    for image in (tmp_path / "other" / "train").glob("*/*.png"):
        Image.new("RGB", (8, 8)).save(image)
    other = evaluate(run, data_dir=tmp_path / "other")
    assert (other["test_loss"], other["test_acc"]) == (first["test_loss"], first["test_acc"])
    # test/ is read alone: an unreadable training image (truncated) stopped the scoring
    broken = sorted((tmp_path / "other" / "train").glob("*/*.png"))[0]
    broken.write_bytes(broken.read_bytes()[:20])
    other = evaluate(run, data_dir=tmp_path / "other")
    assert (other["test_loss"], other["test_acc"]) == (first["test_loss"], first["test_acc"])
    # a run trained on the default ./data (its config has no data_dir) too
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    shutil.copytree(tmp_path / "data", tmp_path / "cwd" / "data")
    default = train(tiny(tmp_path, "default", dataset="imagefolder", batch_size=4, epochs=1, max_steps=1))
    assert json.loads((default.run_dir / "config.json").read_text())["data_dir"] is None
    broken = sorted((tmp_path / "cwd" / "data" / "train").glob("*/*.png"))[1]
    broken.write_bytes(broken.read_bytes()[:20])
    assert evaluate(default.run_dir)["test_images"] == 12
    with pytest.raises(DataError, match=r"has no test/ .*; this looks like the test/ folder itself: pass data_dir='"):
        evaluate(run, data_dir=tmp_path / "data" / "test")
    # only test/: the same scores; with a class left out, the others keep their trained labels
    shutil.copytree(tmp_path / "data" / "test", tmp_path / "testonly" / "test")
    alone = evaluate(run, data_dir=tmp_path / "testonly")
    assert (alone["test_loss"], alone["test_acc"], alone["test_images"]) == \
        (first["test_loss"], first["test_acc"], 12)
    shutil.rmtree(tmp_path / "testonly" / "test" / "bird")
    assert evaluate(run, data_dir=tmp_path / "testonly")["test_images"] == 8
    assert cli.main(["evaluate", str(run), "--data-dir", str(tmp_path / "testonly")]) == 0


def test_evaluate_names_a_search_run_and_a_json_file_for_what_they_are(tmp_path):
    from diffnas.config import search_config
    from diffnas.search import search

    s = search(search_config("darts-1st", dataset="synthetic", layers=3, channels=4, nodes=2, batch_size=8, epochs=1,
                             max_steps=1, plots=False, warmup_epochs=0, run_dir=str(tmp_path / "s")))
    with pytest.raises(CheckpointError) as info:
        evaluate(s.run_dir)
    # said as a Python caller runs it (the command line's words are test_cli_errors')
    assert str(info.value) == (f"{s.run_dir}: a search run; evaluate trains nothing: train its genotype with "
                               f"`train(train_config(genotype={str(s.run_dir)!r}, ...))`, then evaluate that run")
    with pytest.raises(CheckpointError) as info:
        evaluate(s.run_dir / "genotype.json")
    assert str(info.value) == (f"{s.run_dir / 'genotype.json'}: a JSON file, not a checkpoint; evaluate takes a "
                               f"training run folder or its checkpoint.pt")
    # one that has not finished has no genotype to train yet: finish it first (train --genotype would fail)
    (s.run_dir / "genotype.json").unlink()
    with pytest.raises(CheckpointError) as info:
        evaluate(s.run_dir)
    assert str(info.value) == (f"{s.run_dir}: a search run that has not finished; evaluate trains nothing: finish "
                               f"it with `search(cfg, resume={str(s.run_dir)!r})`, then train its genotype with "
                               f"`train(train_config(genotype={str(s.run_dir)!r}, ...))` and evaluate that run")
    from diffnas.config import train_config
    from diffnas.train import train

    with pytest.raises(CheckpointError, match=rf"a search run folder, not a training run folder; train the cell it "
                                              rf"found with `train\(train_config\(genotype='{s.run_dir}', \.\.\.\)\)`, or "
                                              rf"resume the search with `search\(cfg, resume='{s.run_dir}'\)`$"):
        train(train_config(dataset="synthetic"), resume=s.run_dir)   # a search's folder resumed as a training


def test_evaluate_says_which_weight_of_an_edited_checkpoint_does_not_fit(tmp_path):
    """evaluate reads a checkpoint through the same check as a resume: the first tensor of another shape
    by name, on one line (it said only torch's first line of a load_state_dict error)."""
    run = train(tiny(tmp_path, "run", epochs=1)).run_dir
    blob = torch.load(run / "checkpoint.pt", weights_only=True)
    key = next(k for k, v in blob["state"]["model"].items() if v.dim() == 4)
    blob["state"]["model"][key] = torch.zeros(1, 1, 1, 1)
    torch.save(blob, run / "checkpoint.pt")
    with pytest.raises(CheckpointError, match=f"'model' weights do not fit this run's network \\(1 of another "
                                              f"shape, first '{key}'\\)") as info:
        evaluate(run)
    assert "\n" not in str(info.value)


def test_ctrl_c_in_a_python_script_raises_once_the_training_is_saved(tmp_path, monkeypatch, capsys):
    """From Python a stopped training raised nothing: a script went on as if it had finished."""
    calls = count_eval_forwards(monkeypatch, signal_at=1)
    with pytest.raises(KeyboardInterrupt):
        train(tiny(tmp_path, "cut"))
    assert calls["eval"] == 1 and (tmp_path / "cut" / "checkpoint.pt").is_file()
    assert f"diffnas train --resume {tmp_path / 'cut'}" in capsys.readouterr().err


@pytest.mark.parametrize("dataset", ["cifar10", "svhn", "mnist", "fashion-mnist", "tiny-imagenet"])
def test_evaluate_needs_only_the_test_files(tmp_path, capsys, dataset):
    """A machine with only the test files (CIFAR's test_batch, SVHN's test_32x32.mat, MNIST's t10k files,
    Tiny-ImageNet's val/) could not evaluate: the whole dataset was read, and the training files were
    missing. The figures equal those from the full folder."""
    import shutil

    from formats_fixtures import write_cifar10, write_mnist, write_svhn, write_tiny_imagenet

    full, only_test = tmp_path / "full", tmp_path / "test-only"
    extra: list[str] = []
    for folder in (full, only_test):
        if dataset == "cifar10":
            write_cifar10(folder, per_batch=4, test=6)
        elif dataset == "svhn":
            write_svhn(folder, train=8, test=6)
        elif dataset == "tiny-imagenet":
            write_tiny_imagenet(folder, per_class=3, val=6)
            extra = ["--image-size", "16"]   # the run's own size must reach the test-only decode
        else:
            write_mnist(folder / dataset, train=8, test=6)
    for leftover in [*(only_test / "cifar-10-batches-py").glob("data_batch_*"), only_test / "train_32x32.mat",
                     *(only_test / dataset).glob("train-*"), only_test / "tiny-imagenet-200" / "train"]:
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink(missing_ok=True)
    assert cli.main(["train", "--dataset", dataset, "--data-dir", str(full), "--layers", "3", "--channels", "4",
                     "--epochs", "1", "--batch-size", "4", "--max-steps", "1", "--no-plots", *extra,
                     "--run-dir", str(tmp_path / "t")]) == 0, capsys.readouterr().err
    capsys.readouterr()
    results = []
    for folder in (full, only_test):
        assert cli.main(["evaluate", str(tmp_path / "t"), "--data-dir", str(folder), "--json"]) == 0, \
            capsys.readouterr().err
        results.append(json.loads(capsys.readouterr().out))
    assert results[0]["test_images"] == 6 and results[0] == {**results[1], "checkpoint": results[0]["checkpoint"]}
    # a folder that is not there: said as search and train say it, with where to download the files
    assert cli.main(["evaluate", str(tmp_path / "t"), "--data-dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert f"{dataset}: --data-dir {tmp_path / 'nowhere'}: no such folder" in err
    assert f"try `diffnas download {dataset} --data-dir {tmp_path / 'nowhere'}`" in err
    if dataset == "tiny-imagenet":   # the val-only read still checks the wnids against the trained ones
        base = only_test / "tiny-imagenet-200"
        for listing in (base / "wnids.txt", base / "val" / "val_annotations.txt"):
            listing.write_text(listing.read_text().replace("n01", "n04"))
        assert cli.main(["evaluate", str(tmp_path / "t"), "--data-dir", str(only_test)]) == 2
        assert "the classes here are not those the network was trained on, label by label (0: n02 here, n01 in " \
               "training; 1: n03 here, n02 in training; 2: n04 here, n03 in training)" in capsys.readouterr().err


def test_a_finished_training_draws_what_diffnas_plot_draws(tmp_path, capsys):
    """The curves and the cell diagrams of the trained genotype (only the curves were drawn; `diffnas
    plot` on the same folder added the cells)."""
    result = train(tiny(tmp_path, "drawn", epochs=1, max_steps=1, plots=True), load("DARTS_V2"))
    names = {p.name for p in (result.run_dir / "figures").iterdir()}
    assert {"curves.png", "curves.svg", "cell_normal.dot", "cell_reduce.dot"} <= names, names


def test_a_stop_as_the_training_finishes_keeps_it_and_stops_what_comes_next(tmp_path, monkeypatch, capsys):
    """Ctrl-C while the finished training drew its figures, or SIGTERM while its last epoch was saved:
    the run is complete and reported, but the command exited 0 (`diffnas train ... && next` went on)
    and train(cfg) returned as if nothing had been asked."""
    import diffnas.run_figures as report   # where the run's end draws them from

    def interrupted(run_dir, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "plot_run", interrupted)
    result = train(tiny(tmp_path, "a", plots=True), raise_on_stop=False)
    assert result.exit_code == 0 and result.late_stop == 128 + signal.SIGINT and len(result.metrics) == 2
    assert "late_stop" not in json.loads((tmp_path / "a" / "result.json").read_text())   # the run's, not the call's
    with pytest.raises(KeyboardInterrupt):   # a Python script stops there, as on any Ctrl-C
        train(tiny(tmp_path, "b", plots=True))
    assert (tmp_path / "b" / "result.json").is_file()
    capsys.readouterr()
    args = ["train", "--dataset", "synthetic", "--layers", "3", "--channels", "4", "--batch-size", "16",
            "--epochs", "2", "--max-steps", "3", "--genotype", "PC_DARTS_CIFAR"]
    assert cli.main([*args, "--run-dir", str(tmp_path / "c")]) == 128 + signal.SIGINT
    out, err = capsys.readouterr()
    assert "test accuracy" in out and "stopped after the training finished" in err

    real_save, saves = checkpoint.save, []

    def save_then_term(*a, **kw):   # SIGTERM right after the last epoch's checkpoint
        real_save(*a, **kw)
        saves.append(1)
        if len(saves) == TINY["epochs"]:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(checkpoint, "save", save_then_term)
    assert cli.main([*args, "--run-dir", str(tmp_path / "d")]) == 128 + signal.SIGTERM
    out, err = capsys.readouterr()
    assert "test accuracy" in out and "figures not drawn (stopped)" in err
    assert (tmp_path / "d" / "result.json").is_file() and not (tmp_path / "d" / "figures").exists()


def test_a_resumed_run_counts_on_from_its_saved_device_seconds(tmp_path):
    """The saved device_seconds was dropped on load: a resume counted from seconds x the processes of now
    (wrong once the number of processes changed), and a complete run's resume reported seconds x 1."""
    first = train(tiny(tmp_path, "run", epochs=1))
    path = first.run_dir / "checkpoint.pt"
    raw = torch.load(path, weights_only=True)
    raw["state"]["device_seconds"] = 1000.0   # as if it had run on many processes
    torch.save(raw, path)
    assert train(tiny(tmp_path, "run", epochs=1), resume=first.run_dir).device_seconds == 1000.0   # complete
    resumed = train(tiny(tmp_path, "run", epochs=2), resume=first.run_dir)
    assert 1000.0 < resumed.device_seconds < 1000.0 + 60 and resumed.seconds > first.seconds


def test_a_checkpoint_saved_before_device_seconds_counts_its_time_with_the_processes_of_now(tmp_path):
    from diffnas.loop import Loop

    checkpoint.save(tmp_path / "checkpoint.pt", {"epoch": 1, "step": 0, "seconds": 10.0,
                                                 "rng": checkpoint.rng_state()}, {"a": 1})
    loop = Loop.__new__(Loop)   # Loop.load alone, as a resume under torchrun with 2 processes runs it
    loop.ckpt_path, loop.cfg_dict, loop.resumable, loop.defaults = tmp_path / "checkpoint.pt", {"a": 1}, (), {}
    loop.parts, loop.check_saved, loop.rank, loop.world = {}, lambda saved: None, 0, 2
    loop.state = {"epoch": 0, "step": 0, "seconds": 0.0, "device_seconds": 0.0}
    loop.load()
    assert (loop.state["epoch"], loop.state["seconds"], loop.state["device_seconds"]) == (1, 10.0, 20.0)


def test_resume_refuses_data_whose_classes_changed_since(tmp_path):
    """A class folder renamed between the stop and the resume (cat -> zebra: labels 1 and 2 swap places)
    trained on with wrong labels, without a word; one added failed as weights 'of another shape'."""
    data = tmp_path / "data"
    write_image_folder(data, classes=("bird", "cat", "dog"), per_class=4, size=(8, 8))
    first = train(tiny(tmp_path, "run", dataset="imagefolder", data_dir=str(data), batch_size=4, epochs=1))
    for part in ("train", "test"):
        (data / part / "cat").rename(data / part / "zebra")
    with pytest.raises(DataError, match=r"imagefolder: the classes here are not those the network was trained on, "
                                        r"label by label \(1: dog here, cat in training; 2: zebra here, dog in "
                                        r"training\): resuming would train on the wrong labels"):
        train(tiny(tmp_path, "run", dataset="imagefolder", data_dir=str(data), batch_size=4, epochs=2),
              resume=first.run_dir)
    for part in ("train", "test"):
        (data / part / "zebra").rename(data / part / "cat")
        shutil.copytree(data / part / "dog", data / part / "emu")
    with pytest.raises(DataError, match=r"imagefolder: 4 classes here, but the run in .* trained on 3 "
                                        r"\(bird, cat, dog\)"):
        train(tiny(tmp_path, "run", dataset="imagefolder", data_dir=str(data), batch_size=4, epochs=2),
              resume=first.run_dir)
    assert len((first.run_dir / "metrics.jsonl").read_text().splitlines()) == 1   # nothing trained meanwhile
    # another folder named on resume, of other classes, is refused, and config.json keeps the run's own
    shutil.copytree(data, tmp_path / "other")
    for part in ("train", "test"):
        shutil.rmtree(data / part / "emu")
    with pytest.raises(DataError, match="4 classes here"):
        train(tiny(tmp_path, "run", dataset="imagefolder", data_dir=str(tmp_path / "other"), batch_size=4, epochs=2),
              resume=first.run_dir)
    assert json.loads((first.run_dir / "config.json").read_text())["data_dir"] == str(data)
    # the run's classes again, but one test image replaced by another: not the data it trained on
    test_cat = sorted((data / "test" / "cat").iterdir())
    shutil.copy(test_cat[1], test_cat[0])
    with pytest.raises(DataError, match="as many images as the run in .* started on, but not the same ones"):
        train(tiny(tmp_path, "run", dataset="imagefolder", data_dir=str(data), batch_size=4, epochs=2),
              resume=first.run_dir)


def test_resume_after_the_data_moved_says_so_and_remembers_the_new_folder(tmp_path, capsys):
    """The data folder moved: the resume blamed a --data-dir the user never typed and offered to download
    into the old place; after `--resume RUN --data-dir NEW` config.json kept the old folder, so the next
    resume failed again."""
    data = tmp_path / "data"
    write_image_folder(data, classes=("bird", "cat"), per_class=4, size=(8, 8))
    run = train(tiny(tmp_path, "run", dataset="imagefolder", data_dir=str(data), batch_size=4, epochs=1)).run_dir
    data.rename(tmp_path / "moved")
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(run), "--epochs", "2"]) == 2
    assert capsys.readouterr().err == (
        f"diffnas: error: imagefolder: {data}, the folder the run in {run} read its data from, is not there "
        f"(moved or deleted?); resume with --data-dir DIR naming where it is now\n")
    assert cli.main(["train", "--resume", str(run), "--epochs", "2", "--data-dir", str(tmp_path / "moved")]) == 0
    assert json.loads((run / "config.json").read_text())["data_dir"] == str(tmp_path / "moved")
    assert cli.main(["train", "--resume", str(run), "--epochs", "3"]) == 0   # the new folder, not typed again
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3
    # moved once more and named on the resume of the complete run: evaluate finds it there too (the
    # checkpoint, not rewritten, still names the folder before)
    (tmp_path / "moved").rename(tmp_path / "again")
    assert cli.main(["train", "--resume", str(run), "--data-dir", str(tmp_path / "again")]) == 0
    capsys.readouterr()
    assert cli.main(["evaluate", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_images"] == 8


def test_a_resume_that_changes_bn_groups_records_them_in_config_json(tmp_path, capsys):
    """A torchrun resume that cannot use the saved bn_groups falls back to per-rank statistics, but
    config.json kept the old value (and a later resume went back to it); a value typed on resume too."""
    run = train(tiny(tmp_path, "run", epochs=1)).run_dir
    assert json.loads((run / "config.json").read_text())["bn_groups"] == 1
    assert cli.main(["train", "--resume", str(run), "--epochs", "2", "--bn-groups", "2"]) == 0
    assert json.loads((run / "config.json").read_text())["bn_groups"] == 2
    assert cli.main(["train", "--resume", str(run), "--epochs", "3"]) == 0   # goes on with 2, not typed again
    assert torch.load(run / "checkpoint.pt", weights_only=False)["config"]["bn_groups"] == 2


def test_evaluating_a_stopped_training_says_it_has_not_finished(tmp_path, capsys):
    """evaluate of a training stopped in its 2nd of 3 epochs printed '(epoch 1, ...)' and a test accuracy,
    as of a finished network."""
    stopped = train(tiny(tmp_path, "run", epochs=3), stop_after=4, raise_on_stop=False)   # 3 steps an epoch
    assert stopped.exit_code
    capsys.readouterr()
    assert cli.main(["evaluate", str(stopped.run_dir), "--json"]) == 0
    out, err = capsys.readouterr()
    r = json.loads(out)
    assert (r["epoch"], r["epochs"], r["step"], r["finished"]) == (1, 3, 1, False)
    assert (f"diffnas: note: the training has not finished (1 of 3 epochs and 1 step of epoch 2): these are its "
            f"weights so far; finish it with `diffnas train --resume {stopped.run_dir}`") in err
    assert cli.main(["evaluate", str(stopped.run_dir)]) == 0   # its heading said "(epoch 1 of 3, ...)"
    assert "(1 of 3 epochs and 1 step of epoch 2, synthetic, cifar setting)" in capsys.readouterr().out
    finished = train(tiny(tmp_path, "done", epochs=1))
    assert cli.main(["evaluate", str(finished.run_dir)]) == 0
    out, err = capsys.readouterr()
    assert "(1 of 1 epochs, synthetic, cifar setting)" in out and "not finished" not in err


def test_evaluate_decodes_test_images_of_another_size_at_the_trained_size_when_asked(tmp_path, capsys):
    """Test images of another size were refused with no way out: evaluate had no --image-size."""
    write_image_folder(tmp_path / "data", classes=("bird", "cat"), per_class=4, size=(8, 8))
    write_image_folder(tmp_path / "big", classes=("bird", "cat"), per_class=4, size=(12, 12))
    run = train(tiny(tmp_path, "run", dataset="imagefolder", data_dir=str(tmp_path / "data"), batch_size=4,
                     epochs=1)).run_dir
    capsys.readouterr()
    assert cli.main(["evaluate", str(run), "--data-dir", str(tmp_path / "big")]) == 2
    assert capsys.readouterr().err == (
        "diffnas: error: the network was trained on 3x8x8 images of 2 classes; imagefolder here has 3x12x12 images "
        "of 2 classes; decode them at the trained size with --image-size 8\n")
    assert cli.main(["evaluate", str(run), "--data-dir", str(tmp_path / "big"), "--image-size", "8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_images"] == 8


def test_evaluate_says_what_a_wrong_path_is(tmp_path, capsys):
    """'nowhere: no checkpoint there' for a path that does not exist, 'runs/checkpoint.pt: no checkpoint
    there' for the folder of runs, 'cut short or damaged' for a text file."""
    run = train(tiny(tmp_path / "runs", "t1", epochs=1)).run_dir
    capsys.readouterr()
    fails = [(tmp_path / "nowhere", f"{tmp_path / 'nowhere'}: no such file or folder"),
             (tmp_path / "runs", f"{tmp_path / 'runs'}: not a training run folder (no checkpoint.pt); it holds "
                                 f"runs: {run}"),
             (tmp_path / "notes.md", f"{tmp_path / 'notes.md'}: not a checkpoint (not a file torch.save writes)")]
    (tmp_path / "notes.md").write_text("# notes\n")
    started = tmp_path / "started"   # stopped before its first checkpoint
    started.mkdir()
    (started / "config.json").write_text(json.dumps({"command": "train"}))
    fails.append((started, f"{started}: a training run that has not saved a checkpoint yet (one is saved at the end "
                           f"of each epoch); go on with `diffnas train --resume {started}`"))
    for path, said in fails:
        assert cli.main(["evaluate", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"diffnas: error: {said}") and err.count("\n") == 1, err


def test_a_cutout_that_blanks_every_image_is_refused(tmp_path):
    """--cutout 100 on 16x16 images (a 50x50 square after scaling) zeroed every training image, silently."""
    with pytest.raises(ConfigError, match=r"cutout: 100 cuts a 50x50 square out of 16x16 images, which blanks every "
                                          r"training image whole"):
        train(tiny(tmp_path, "run", cutout=100))
    assert not (tmp_path / "run").exists()
    train(tiny(tmp_path, "ok", cutout=30, epochs=1))   # 15x15 on 16x16: parts of most images survive


def test_resume_refuses_data_of_another_image_size(tmp_path):
    """--resume RUN --data-dir BIG (48x48 images for a network trained on 32x32) went on without a word."""
    write_image_folder(tmp_path / "data", classes=("bird", "cat"), per_class=4, size=(8, 8))
    write_image_folder(tmp_path / "big", classes=("bird", "cat"), per_class=4, size=(12, 12))
    run = train(tiny(tmp_path, "run", dataset="imagefolder", data_dir=str(tmp_path / "data"), batch_size=4,
                     epochs=1)).run_dir
    with pytest.raises(DataError, match=r"imagefolder: images of 3x12x12 here, but the run in .* trained on 3x8x8; "
                                        r"resume it on data of that size"):
        train(tiny(tmp_path, "run", dataset="imagefolder", data_dir=str(tmp_path / "big"), batch_size=4, epochs=2),
              resume=run)


def test_train_has_a_dry_run_as_search_and_run_do(tmp_path, capsys):
    """`diffnas train --dry-run`: tiny sizes on synthetic images for the values not typed (search and run
    had it, train did not); a per-cell genotype keeps its depth; refused with --resume, and for the
    imagenet setting, whose network needs larger images than the synthetic ones."""
    per_cell = G.CellwiseGenotype(tuple(G.load("DARTS_V2").cells(5)))
    (tmp_path / "cells.txt").write_text(G.cell_lines(per_cell))
    for name, genotype, layers in (("plain", "DARTS_V2", 3), ("cells", str(tmp_path / "cells.txt"), 5)):
        run = tmp_path / name
        assert cli.main(["train", "--dry-run", "--genotype", genotype, "--channels", "6", "--no-plots",
                         "--run-dir", str(run)]) == 0, capsys.readouterr().err
        cfg = json.loads((run / "config.json").read_text())
        assert (cfg["dataset"], cfg["layers"], cfg["channels"], cfg["epochs"], cfg["max_steps"], cfg["batch_size"]) \
            == ("synthetic", layers, 6, 1, 2, 8)
    # a config file's sizes are replaced too (a training's config.json would have trained at full size)
    (tmp_path / "c.json").write_text('{"epochs": 3, "layers": 5, "dataset": "digits"}')
    assert cli.main(["train", "--dry-run", "--config", str(tmp_path / "c.json"), "--no-plots", "--run-dir",
                     str(tmp_path / "file")]) == 0
    cfg = json.loads((tmp_path / "file" / "config.json").read_text())
    assert (cfg["dataset"], cfg["layers"], cfg["epochs"]) == ("synthetic", 3, 1)
    capsys.readouterr()
    assert cli.main(["train", "--dry-run", "--resume", str(tmp_path / "plain")]) == 2
    assert "--dry-run starts a new training; it does not go with --resume" in capsys.readouterr().err
    assert cli.main(["train", "--dry-run", "--setting", "imagenet", "--run-dir", str(tmp_path / "in")]) == 2
    assert "--dry-run trains on 16x16 synthetic images" in capsys.readouterr().err
    assert not (tmp_path / "in").exists()


def test_a_relative_genotype_path_is_saved_absolute_and_read_from_another_folder(tmp_path, monkeypatch, capsys):
    """config.json kept `--genotype pipe/search` as typed, so `--config` of it from another working
    directory said "pipe/search: no such file"; data_dir was already saved absolute."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    G.save(load("DARTS_V2"), str(tmp_path / "a" / "cell.json"))
    monkeypatch.chdir(tmp_path / "a")
    tiny = ["--dry-run", "--no-plots"]
    assert cli.main(["train", *tiny, "--genotype", "cell.json", "--run-dir", "run"]) == 0
    saved = json.loads((tmp_path / "a" / "run" / "config.json").read_text())
    assert saved["genotype"] == str(tmp_path / "a" / "cell.json")
    # the same relative path typed on a resume is the run's genotype, not a change
    assert cli.main(["train", "--resume", "run", "--genotype", "cell.json", "--epochs", "2", "--no-plots"]) == 0
    monkeypatch.chdir(tmp_path / "b")
    assert cli.main(["train", *tiny, "--config", str(tmp_path / "a" / "run" / "config.json"), "--run-dir", "r2"]) == 0
    assert json.loads((tmp_path / "b" / "r2" / "config.json").read_text())["genotype"] == saved["genotype"]
    # a published name and notation stay as they are, also beside a folder of that name (a --run-dir)
    (tmp_path / "b" / "DARTS_V2").mkdir()
    assert train_config(genotype="DARTS_V2").genotype == "DARTS_V2"
    with pytest.raises(ConfigError, match="^genotype: an empty value"):   # refused, not the current folder
        train_config(genotype="")
    notation = repr(load("DARTS_V2"))   # longer than a file name may be: Path.exists() raises on it
    assert len(notation) > 255 and load(notation) == load("DARTS_V2")
    assert train_config(genotype=notation).genotype == notation
