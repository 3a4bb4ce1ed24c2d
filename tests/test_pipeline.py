"""`diffnas run`: the pipeline keeps its whole configuration (RUN/config.json) and resumes with it,
points interrupted users at `diffnas run --resume`, never writes into an existing run, reports a
complete one, decides the quick sizes by the dataset named, and its folder serves `evaluate` and
`train --genotype`."""

from __future__ import annotations

import functools
import importlib
import json
import os
import shutil
import signal
from pathlib import Path

import pytest
import torch
from cli_helpers import fails

from diffnas import checkpoint
from diffnas import cli, distributed
from diffnas import genotype as G
from diffnas.config import to_dict

pipeline = importlib.import_module("diffnas.pipeline")
search_mod = importlib.import_module("diffnas.search")   # diffnas.search is also the function

SEARCH = ["--preset", "darts-1st", "--layers", "3", "--channels", "4", "--nodes", "2", "--epochs", "1",
          "--max-steps", "1", "--batch-size", "4", "--no-plots"]
TRAIN = ["--train-epochs", "1", "--train-layers", "3", "--train-channels", "4", "--train-max-steps", "1",
         "--train-batch-size", "4"]
TINY = [*SEARCH, "--dataset", "synthetic", *TRAIN]
# the same sizes as config values
SEARCH_VALUES = {"preset": "darts-1st", "layers": 3, "channels": 4, "nodes": 2, "epochs": 1, "max_steps": 1,
                 "batch_size": 4, "plots": False}
TRAIN_VALUES = {"epochs": 1, "layers": 3, "channels": 4, "max_steps": 1, "batch_size": 4}


class Recorded(Exception):
    """Raised by `record_train` in place of training."""


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Default run folders (runs/...) land in the test's folder, never in the repository."""
    monkeypatch.chdir(tmp_path)


def guard_training(monkeypatch) -> None:
    """The pipeline's training must get the tiny sizes asked for: a config that fell back to the
    paper's (20 cells, 36 channels, 600 epochs) fails at once instead of training for hours."""
    real = pipeline.train

    def guarded(cfg, *args, **kwargs):
        assert cfg.layers <= 3 and cfg.channels <= 4 and 0 < cfg.max_steps <= 2 and cfg.epochs <= 2, cfg
        return real(cfg, *args, **kwargs)

    monkeypatch.setattr(pipeline, "train", guarded)


@pytest.fixture(autouse=True)
def tiny_training_only(monkeypatch):
    guard_training(monkeypatch)


@pytest.fixture
def record_train(monkeypatch):
    """Record the training config the pipeline builds, and stop there (Recorded)."""
    seen = []

    def record(cfg, *args, **kwargs):
        seen.append(cfg)
        raise Recorded

    monkeypatch.setattr(pipeline, "train", record)
    return seen


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A complete tiny pipeline; tests that change it work on a copy."""
    run = tmp_path_factory.mktemp("pipeline") / "run"
    assert cli.main(["run", *TINY, "--run-dir", str(run)]) == 0
    return run


def copy(run: Path, to: Path) -> Path:
    return Path(shutil.copytree(run, to))


def files(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def signal_during_search(monkeypatch, signum: int = signal.SIGINT) -> None:
    """The user presses Ctrl-C during the first search step."""
    real = search_mod.search_step

    def step_then_signal(*args, **kwargs):
        out = real(*args, **kwargs)
        os.kill(os.getpid(), signum)
        return out

    monkeypatch.setattr(search_mod, "search_step", step_then_signal)


def train_config_of(run: Path) -> dict:
    return json.loads((run / "train" / "config.json").read_text())


# ---------------------------------------------------------------------------------------------
# 1, 2: interrupted pipelines resume with their own configuration, and say how

def test_resume_after_interrupted_search_trains_with_the_values_given_at_start(tmp_path, monkeypatch, capsys):
    run = tmp_path / "p"
    signal_during_search(monkeypatch)
    assert cli.main(["run", *TINY, "--run-dir", str(run)]) == 128 + signal.SIGINT
    err = capsys.readouterr().err.strip().splitlines()
    # one way to go on, the pipeline's: resuming RUN/search alone would never train or summarise
    assert [line for line in err if "--resume" in line] == [
        f"diffnas: interrupted at epoch 1 step 1; checkpoint saved; resume the pipeline with: "
        f"diffnas run --resume {run}"], err
    saved = json.loads((run / "config.json").read_text())
    assert saved["command"] == "pipeline" and saved["search"]["layers"] == 3 and saved["train"]["layers"] == 3
    monkeypatch.undo()   # the signal (and the guard, set again)
    guard_training(monkeypatch)

    # evaluate before any training says how to go on, not "no checkpoint there"
    assert cli.main(["evaluate", str(run)]) == 2
    assert f"continue it with `diffnas run --resume {run}`" in capsys.readouterr().err
    assert cli.main(["run", "--resume", str(run)]) == 0
    trained = train_config_of(run)
    assert {k: trained[k] for k in TRAIN_VALUES} == TRAIN_VALUES
    assert (run / "summary.json").is_file()


def term_after_the_last_save_of(monkeypatch, stage: str):
    """SIGTERM right after the checkpoint of the last epoch of the pipeline's `stage` ("search" or "train",
    one epoch each in TINY) is written; returns the real checkpoint.save."""
    real_save, epochs = checkpoint.save, {"search": SEARCH_VALUES["epochs"], "train": TRAIN_VALUES["epochs"]}
    saves = []

    def save_then_term(path, *args, **kwargs):
        real_save(path, *args, **kwargs)
        if Path(path).parent.name == stage:
            saves.append(path)
            if len(saves) == epochs[stage]:
                os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(checkpoint, "save", save_then_term)
    return real_save


def test_a_stop_while_the_search_saves_its_last_epoch_stops_the_pipeline_before_training(
        tmp_path, monkeypatch, capsys):
    """SIGTERM during the search's last checkpoint write: the search is complete, but the pipeline must
    not go on to train as if nothing was asked (it did: the stop was lost between the stages)."""
    run = tmp_path / "p"
    real_save = term_after_the_last_save_of(monkeypatch, "search")
    assert cli.main(["run", *TINY, "--run-dir", str(run)]) == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert f"diffnas: stopped after the search (it is complete and saved); resume the pipeline with: " \
           f"diffnas run --resume {run}" in err, err
    assert (run / "search" / "genotype.json").is_file() and not (run / "train").exists()
    monkeypatch.setattr(checkpoint, "save", real_save)
    assert cli.main(["run", "--resume", str(run)]) == 0
    assert (run / "summary.json").is_file()


def test_a_stop_as_the_training_finishes_reports_the_pipeline_and_exits_with_the_stop(tmp_path, monkeypatch, capsys):
    """SIGTERM during the training's last checkpoint write: the pipeline is complete (summary.json), but
    `diffnas run ... && next` went on: it exited 0."""
    run = tmp_path / "p"
    real_save = term_after_the_last_save_of(monkeypatch, "train")
    assert cli.main(["run", *TINY, "--run-dir", str(run)]) == 128 + signal.SIGTERM
    out, err = capsys.readouterr()
    assert "test error" in out and f"stopped after the training finished (the pipeline is complete and saved: {run})" \
        in err, (out, err)
    assert (run / "summary.json").is_file()
    monkeypatch.setattr(checkpoint, "save", real_save)
    assert cli.main(["run", "--resume", str(run)]) == 0   # complete: nothing to do


def test_interrupted_training_says_resume_the_pipeline_and_that_writes_the_summary(tmp_path, monkeypatch, capsys):
    run = tmp_path / "p"
    monkeypatch.setattr(pipeline, "train", functools.partial(pipeline.train, stop_after=1))
    assert cli.main(["run", *TINY, "--train-epochs", "2", "--run-dir", str(run)]) == 128 + signal.SIGTERM
    err = capsys.readouterr().err.strip().splitlines()
    # the training's own notice names the pipeline: resuming RUN/train alone would never summarise
    assert [line for line in err if "--resume" in line] == [
        f"diffnas: interrupted at epoch 1 step 1; checkpoint saved; resume the pipeline with: "
        f"diffnas run --resume {run}"], err
    assert not (run / "summary.json").exists()
    monkeypatch.undo()   # stop_after (and the guard, set again)
    guard_training(monkeypatch)

    # the search is finished, and its genotype's training started but not finished: said as it is
    fails(capsys, ["run", "--resume", str(run), "--epochs", "2"],
          f"epochs: the search of the pipeline in {run} is finished and the training of its genotype has "
          f"started (0 of 2 epochs done); start a new pipeline to search longer")
    assert cli.main(["run", "--resume", str(run)]) == 0
    err = capsys.readouterr().err
    # the finished search is not offered more epochs: inside a pipeline the training comes next
    assert f"diffnas: {run / 'search'} is complete (1/1 epochs)\n" in err and "--epochs" not in err, err
    assert json.loads((run / "summary.json").read_text())["params_m"] > 0
    assert [json.loads(r)["epoch"] for r in (run / "train" / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_the_summary_is_the_trained_networks_test_error_and_size(finished):
    """summary.json's test error and millions of parameters, against what they summarise: the training's
    last test accuracy, and the weights of the network its genotype builds (counted here, aux head
    left out as the papers count)."""
    from diffnas.network import build_network

    summary = json.loads((finished / "summary.json").read_text())
    last = json.loads((finished / "train" / "metrics.jsonl").read_text().splitlines()[-1])
    assert summary["test_acc"] == last["test_acc"] and summary["test_error"] == pytest.approx(1 - last["test_acc"])
    net = build_network(G.load(str(finished / "search" / "genotype.json")), channels=4, layers=3, classes=10,
                        auxiliary=False)
    assert summary["params_m"] == pytest.approx(sum(p.numel() for p in net.parameters()) / 1e6, rel=1e-12)


def test_a_test_error_on_capped_batches_says_how_many_images_it_covers(finished, tmp_path, capsys):
    """--train-max-steps 1 with batch 4: the test error of 4 of the 64 synthetic test images."""
    summary = json.loads((finished / "summary.json").read_text())
    assert (summary["test_images"], summary["test_images_total"]) == (4, 64)
    assert cli.main(["run", "--resume", str(copy(finished, tmp_path / "p"))]) == 0
    assert f"test error   {100 * summary['test_error']:.2f} % (on 4 of 64 test images)\n" in capsys.readouterr().out


def test_each_stage_cost_is_counted_in_hours_of_its_own_device(finished):
    """A search on the GPU and a training on the CPU ([train] device = "cpu"): the table said GPU-hours
    for both, from the search's device."""
    summary = json.loads((finished / "summary.json").read_text())
    assert (summary["device"], summary["train_device"]) == ("cpu", "cpu") and "train_cpu_hours" in summary
    mixed = {**summary, "device": "cuda", "train_device": "cpu", "search_gpu_hours": 0.5, "train_cpu_hours": 2.0}
    table = pipeline.summary_table(mixed)
    assert "search cost  0.5000 GPU-hours" in table and "train cost   2.0000 CPU-hours" in table
    older = {k: v for k, v in summary.items() if k != "train_device"}   # a summary written before the key
    assert "train cost" in pipeline.summary_table(older) and "CPU-hours" in pipeline.summary_table(older)
    # a few seconds' stage (a dry run) read "0.0000 CPU-hours": its seconds are said too
    quick = pipeline.summary_table({**mixed, "search_gpu_hours": 7.6 / 3600, "train_cpu_hours": 0.1})
    assert "search cost  0.0021 GPU-hours (7.6 s)" in quick and quick.endswith("train cost   0.1000 CPU-hours")
    for accelerator in ("mps", "xpu"):   # an Apple or Intel GPU's hours are GPU-hours too
        table = pipeline.summary_table({**summary, "device": accelerator, "train_device": accelerator,
                                        "search_gpu_hours": 0.5, "train_gpu_hours": 2.0})
        assert "search cost  0.5000 GPU-hours" in table and "train cost   2.0000 GPU-hours" in table
    # a complete MPS pipeline's summary from before: its CPU-hours, read as written (a resume crashed on it)
    older = pipeline.summary_table({**summary, "device": "mps", "train_device": "mps",
                                    "search_cpu_hours": 0.5, "train_cpu_hours": 2.0})
    assert "search cost  0.5000 CPU-hours" in older and "train cost   2.0000 CPU-hours" in older


def test_resume_refuses_changes_a_resumed_stage_cannot_take(finished, tmp_path, capsys):
    run = copy(finished, tmp_path / "p")
    before = files(run)
    cfg = tmp_path / "more.json"
    cfg.write_text(json.dumps({"train": {"channels": 8}}))
    # a value is named as it was given (a flag, or the config file's [train] key), and what may change
    # is listed by the flags that set it for the stage
    for argv, expected in ((["--train-layers", "5"], "error: --train-layers: 5 given, but the pipeline in"),
                           (["--train-layers", "5"], "(only --train-epochs, --device, --no-plots, --no-compile, "
                                                     "train.detect_anomaly (--config file), "),
                           (["--config", str(cfg)], "error: train.channels: 8 given"),
                           (["--layers", "4"], "error: --layers: 4 given"),
                           (["--layers", "4"], "(only --epochs, --device, --data-dir, "),
                           (["--preset", "darts"], "preset: 'darts' given"),
                           (["--epochs", "2"], "start a new pipeline to search longer"),
                           (["--train-epochs", "0"], "error: --train-epochs: must be >= 1, got 0")):
        assert cli.main(["run", "--resume", str(run), *argv]) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err, (argv, err)
    assert files(run) == before


# ---------------------------------------------------------------------------------------------
# 3: a new pipeline never writes into a run; a complete one is reported

def test_new_pipeline_in_a_pipeline_folder_is_refused_before_anything_is_touched(finished, tmp_path, capsys):
    run = copy(finished, tmp_path / "p")
    before = files(run)
    argv = ["run", *TINY, "--preset", "pc-darts", "--run-dir", str(run)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"{run} holds a run already; continue it with `diffnas run --resume {run}`" in err
    assert files(run) == before
    # a search run folder is refused the same way, naming its own command
    search_run = tmp_path / "s"
    assert cli.main(["search", "--dry-run", "--no-plots", "--run-dir", str(search_run)]) == 0
    capsys.readouterr()
    assert cli.main(["run", *TINY, "--run-dir", str(search_run)]) == 2
    assert f"continue it with `diffnas search --resume {search_run}`" in capsys.readouterr().err


def test_resuming_a_complete_pipeline_reports_it_and_runs_nothing(finished, tmp_path, monkeypatch, capsys):
    run = copy(finished, tmp_path / "p")
    before = files(run)

    def nothing(*args, **kwargs):
        raise AssertionError("a complete pipeline ran a stage again")

    monkeypatch.setattr(pipeline, "search", nothing)
    monkeypatch.setattr(pipeline, "train", nothing)
    assert cli.main(["run", "--resume", str(run)]) == 0
    out, err = capsys.readouterr()
    assert "is complete" in err and "test error" in out and "genotype: Genotype(" in out
    assert files(run) == before


def test_pipeline_that_fails_to_start_leaves_no_folder(tmp_path, capsys):
    """The configuration is written first; a pipeline whose search cannot start takes it away again."""
    run = tmp_path / "new" / "p"
    assert cli.main(["run", *TINY, "--dataset", "cifar10", "--data-dir", str(tmp_path / "none"),
                     "--run-dir", str(run)]) == 2
    assert not (tmp_path / "new").exists()


# ---------------------------------------------------------------------------------------------
# 1, 4: --config holds the training values too; quick sizes follow the dataset named

def test_config_file_train_table_and_a_pipeline_config_start_a_new_pipeline(finished, tmp_path, record_train):
    toml = tmp_path / "run.toml"
    toml.write_text("\n".join([f"{k} = {json.dumps(v).lower()}" for k, v in SEARCH_VALUES.items()]
                              + ['dataset = "synthetic"', "[train]"]
                              + [f"{k} = {v}" for k, v in TRAIN_VALUES.items()]) + "\n")
    with pytest.raises(Recorded):
        cli.main(["run", "--config", str(toml), "--train-channels", "2", "--run-dir", str(tmp_path / "a")])
    got = record_train[-1]
    assert (got.epochs, got.layers, got.channels, got.max_steps, got.batch_size) == (1, 3, 2, 1, 4)

    # the finished pipeline's config.json, as --config: the same configuration in the new folder
    with pytest.raises(Recorded):
        cli.main(["run", "--config", str(finished / "config.json"), "--run-dir", str(tmp_path / "b")])
    saved = json.loads((finished / "config.json").read_text())
    assert json.loads((tmp_path / "b" / "config.json").read_text()) == saved
    got = {k: v for k, v in to_dict(record_train[-1]).items() if k not in pipeline.DERIVED_TRAIN}
    assert got == saved["train"]

    # shared flags typed beside it are meant for the training too: the config.json's training table
    # (which holds every field) took precedence over them
    assert saved["train"]["nan_rollback"] == 0 and saved["train"]["precision"] == "fp32"
    with pytest.raises(Recorded):
        cli.main(["run", "--config", str(finished / "config.json"), "--nan-rollback", "2", "--precision", "bf16",
                  "--run-dir", str(tmp_path / "c")])
    got = record_train[-1]
    assert (got.nan_rollback, got.precision) == (2, "bf16")
    assert json.loads((tmp_path / "c" / "config.json").read_text())["train"]["nan_rollback"] == 2


def test_train_keys_at_the_top_of_a_config_file_are_refused_with_the_layout(tmp_path, capsys):
    cfg = tmp_path / "run.json"
    cfg.write_text(json.dumps({"train_epochs": 2}))
    assert cli.main(["run", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'train_epochs: training values go in a "train" table' in err


def test_quick_training_sizes_follow_the_dataset_named_not_the_config_file(tmp_path, record_train):
    cfg = tmp_path / "run.json"
    for extra, expected in (({}, (20, 8, 16)),                                # embedded digits: quick
                            ({"train": {"layers": 3}}, (20, 3, 16)),          # the file's value wins
                            # a dataset named: the paper's (a batch of 96 is more than synthetic's 64 images)
                            ({"dataset": "synthetic", "train": {"batch_size": 32}}, (600, 20, 36))):
        cfg.write_text(json.dumps({**SEARCH_VALUES, **extra}))
        with pytest.raises(Recorded):
            cli.main(["run", "--config", str(cfg), "--run-dir", str(tmp_path / f"r{len(record_train)}")])
        got = record_train[-1]
        assert (got.epochs, got.layers, got.channels) == expected, extra


# ---------------------------------------------------------------------------------------------
# 5: a pipeline folder where a run is expected

def test_evaluate_takes_a_pipeline_folder(finished, capsys):
    assert cli.main(["evaluate", str(finished), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["checkpoint"] == str(finished / "train" / "checkpoint.pt") and r["params"] > 0


def test_train_genotype_takes_a_pipeline_folder(finished, tmp_path):
    argv = ["train", "--genotype", str(finished), "--dataset", "synthetic", "--layers", "3", "--channels", "4",
            "--epochs", "1", "--max-steps", "1", "--batch-size", "4", "--no-plots", "--run-dir", str(tmp_path / "t")]
    assert cli.main(argv) == 0
    assert G.load(str(tmp_path / "t" / "genotype.json")) == G.load(str(finished / "search" / "genotype.json"))


def test_bare_cutout_flag_means_16_in_run_as_in_train():
    from diffnas.cli import build_parser
    from diffnas.cli.run import train_flag_values

    parser = build_parser()
    for argv, expected in ((["run", "--cutout"], 16), (["run", "--cutout", "8"], 8), (["run"], None)):
        assert train_flag_values(parser.parse_args(argv)).get("cutout") == expected
    assert parser.parse_args(["train", "--cutout"]).cutout == 16


def test_a_run_dir_that_is_a_file_is_one_line(tmp_path, capsys):
    path = tmp_path / "taken"
    path.write_text("mine")
    assert cli.main(["run", *TINY, "--run-dir", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"diffnas: error: --run-dir: {path} is a file, not a folder\n" and path.read_text() == "mine"


def test_a_typo_in_the_train_table_names_the_table(tmp_path, capsys):
    (tmp_path / "c.toml").write_text("epochs = 1\n[train]\nepoch = 3\n")
    assert cli.main(["run", "--config", str(tmp_path / "c.toml"), "--dataset", "synthetic",
                     "--run-dir", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err == (f"diffnas: error: {tmp_path / 'c.toml'}: train: unknown config key 'epoch' "
                                       f"(did you mean 'epochs'?)\n")
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------------------------------
# 6: a stage resumed on its own with --epochs: the pipeline goes on with the stage's total

def epochs_run(run_dir: Path) -> list[int]:
    return [json.loads(r)["epoch"] for r in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_search_extended_on_its_own_keeps_its_epochs_when_the_pipeline_resumes(tmp_path, monkeypatch, capsys):
    run = tmp_path / "p"
    signal_during_search(monkeypatch)
    assert cli.main(["run", *TINY, "--run-dir", str(run)]) == 128 + signal.SIGINT
    monkeypatch.undo()   # the signal (and the guard, set again)
    guard_training(monkeypatch)
    # `diffnas run --resume RUN --epochs 2` stopped before its search recorded 2: the pipeline's word stands
    stopped = copy(run, tmp_path / "q")
    config = json.loads((stopped / "config.json").read_text())
    (stopped / "config.json").write_text(json.dumps({**config, "search": {**config["search"], "epochs": 2}}))
    assert cli.main(["run", "--resume", str(stopped)]) == 0
    assert "resumed on its own" not in capsys.readouterr().err
    assert epochs_run(stopped / "search") == [1, 2]

    assert cli.main(["search", "--resume", str(run / "search"), "--epochs", "2"]) == 0
    capsys.readouterr()
    assert cli.main(["run", "--resume", str(run)]) == 0
    err = capsys.readouterr().err
    assert err.count(f"diffnas: {run / 'search'} was resumed on its own with 2 epochs (the pipeline's "
                     f"config.json says 1); the pipeline goes on with 2") == 1, err
    assert epochs_run(run / "search") == [1, 2]
    assert json.loads((run / "config.json").read_text())["search"]["epochs"] == 2
    assert (run / "summary.json").is_file()


def test_a_training_extended_on_its_own_after_the_summary_is_summarised_again(finished, tmp_path, capsys):
    run = copy(finished, tmp_path / "p")
    before = json.loads((run / "summary.json").read_text())
    assert cli.main(["train", "--resume", str(run / "train"), "--epochs", "2"]) == 0
    capsys.readouterr()
    assert cli.main(["run", "--resume", str(run)]) == 0
    err = capsys.readouterr().err
    assert "(summary.json); nothing to resume" not in err
    assert err.count(f"{run / 'train'} was resumed on its own with 2 epochs") == 1, err
    assert json.loads((run / "config.json").read_text())["train"]["epochs"] == 2
    assert json.loads((run / "summary.json").read_text())["train_cpu_hours"] > before["train_cpu_hours"]
    # now the summary is of the training there: reported, nothing runs
    assert cli.main(["run", "--resume", str(run)]) == 0
    err = capsys.readouterr().err
    assert "(summary.json); nothing to resume" in err and "resumed on its own" not in err


def test_a_complete_pipeline_resumed_with_more_training_epochs_trains_on_and_summarises_again(
        finished, tmp_path, capsys):
    run = copy(finished, tmp_path / "p")
    before = json.loads((run / "summary.json").read_text())
    search_before = files(run / "search")
    if not torch.cuda.is_available():   # a resume refused at its start changes nothing
        kept = files(run)
        assert cli.main(["run", "--resume", str(run), "--train-epochs", "2", "--device", "cuda"]) == 2
        capsys.readouterr()
        assert files(run) == kept
    assert cli.main(["run", "--resume", str(run), "--train-epochs", "2"]) == 0
    err = capsys.readouterr().err
    assert "nothing to resume" not in err and f"resuming {run / 'train'} at epoch 2" in err, err
    assert epochs_run(run / "train") == [1, 2]
    assert json.loads((run / "config.json").read_text())["train"]["epochs"] == 2
    assert json.loads((run / "train" / "config.json").read_text())["epochs"] == 2
    assert json.loads((run / "summary.json").read_text())["train_cpu_hours"] > before["train_cpu_hours"]
    assert files(run / "search") == search_before   # the search is not run again
    # the same total again: complete, reported
    assert cli.main(["run", "--resume", str(run), "--train-epochs", "2"]) == 0
    assert "(summary.json); nothing to resume" in capsys.readouterr().err


def test_a_search_extended_on_its_own_after_its_genotype_was_trained_is_refused(finished, tmp_path, capsys):
    run = copy(finished, tmp_path / "p")
    # the complete search's hint leads to a new pipeline, not to --epochs N, which leads here
    assert cli.main(["search", "--resume", str(run / "search")]) == 0
    assert (f"is complete (1/1 epochs); nothing to do — it is the search of the pipeline in {run}, which has "
            f"trained its genotype: search longer in a new pipeline (`diffnas run --config {run / 'config.json'} "
            f"--epochs N`)") in capsys.readouterr().err
    assert cli.main(["search", "--resume", str(run / "search"), "--epochs", "2"]) == 0
    capsys.readouterr()
    before = files(run)
    assert cli.main(["run", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "was resumed on its own to 2 epochs after the pipeline trained" in err, err
    assert f"`diffnas train --genotype {run / 'search'}`" in err
    assert files(run) == before


def test_a_per_cell_search_trains_a_network_of_its_own_depth(tmp_path, capsys):
    """global / dnas give each searched cell its own architecture: the training has that many cells
    (the quick digits sizes would otherwise train 8 cells of a 5-cell genotype and fail after the
    search); a different --train-layers is refused before anything runs."""
    no_layers = [a for i, a in enumerate(TRAIN) if a != "--train-layers" and TRAIN[i - 1] != "--train-layers"]
    run = tmp_path / "g"
    assert cli.main(["run", *SEARCH, "--preset", "global", "--dataset", "synthetic", *no_layers,
                     "--run-dir", str(run)]) == 0
    capsys.readouterr()
    assert json.loads((run / "train" / "config.json").read_text())["layers"] == 3 == len(
        json.loads((run / "search" / "genotype.json").read_text())["cells"])
    assert cli.main(["run", *SEARCH, "--preset", "dnas", "--dataset", "synthetic", *no_layers, "--train-layers", "2",
                     "--run-dir", str(tmp_path / "d")]) == 2
    assert "error: --train-layers: 2 given, but the dnas search gives each of its 3 cells" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_a_pipeline_stopped_from_python_raises_after_saying_how_to_resume(tmp_path, monkeypatch, capsys):
    from diffnas.config import TrainConfig, search_config
    from diffnas.pipeline import run_pipeline

    signal_during_search(monkeypatch)
    search_cfg = search_config("darts-1st", dataset="synthetic", layers=3, channels=4, nodes=2, batch_size=8,
                               epochs=1, max_steps=1, plots=False)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(search_cfg, TrainConfig(layers=3, channels=4, epochs=1, batch_size=8, max_steps=1, plots=False),
                     tmp_path / "p")
    assert f"resume the pipeline with: diffnas run --resume {tmp_path / 'p'}" in capsys.readouterr().err


def test_a_training_value_that_changes_nothing_is_said_once(tmp_path, capsys, recwarn):
    """[train] lr_gamma with the cosine schedule: `diffnas run` printed the warning, then the training
    warned it again as a Python UserWarning; from Python each stage warns its own such values."""
    from diffnas.config import TrainConfig, search_config
    from diffnas.pipeline import run_pipeline

    config = tmp_path / "p.toml"
    config.write_text('[search]\nxi = 0.1\n[train]\nlr_gamma = 0.5\n')
    assert cli.main(["run", *TINY, "--config", str(config), "--run-dir", str(tmp_path / "cli")]) == 0
    err = capsys.readouterr().err
    assert err.count("lr_gamma: 0.5 has no effect") == 1 and err.count("xi: 0.1 has no effect") == 1
    assert "warning: xi: 0.1 has no effect" in err   # set in the file: named by its key there, not --xi
    # diffnas run has no --lr-schedule: the training's line names its config key
    assert ('diffnas: warning: lr_gamma: 0.5 has no effect with the cosine lr schedule ([train] lr_schedule = '
            '"step" uses it)') in err
    assert not [w for w in recwarn if "has no effect" in str(w.message)]

    search_cfg = search_config("darts-1st", dataset="synthetic", layers=3, channels=4, nodes=2, batch_size=8,
                               epochs=1, max_steps=1, plots=False, xi=0.1)
    train_cfg = TrainConfig(layers=3, channels=4, epochs=1, batch_size=8, max_steps=1, plots=False, lr_gamma=0.5)
    with pytest.warns(UserWarning) as caught:
        run_pipeline(search_cfg, train_cfg, tmp_path / "py")
    said = [str(w.message) for w in caught if "has no effect" in str(w.message)]
    assert len(said) == 2 and any("xi: 0.1" in m for m in said) and any("lr_gamma: 0.5" in m for m in said)
    # each is the caller's line's (it was pipeline.py's), in diffnas's own category for a filter
    from diffnas import DiffnasWarning

    ours = [w for w in caught if "has no effect" in str(w.message)]
    assert {w.filename for w in ours} == {__file__} and all(w.category is DiffnasWarning for w in ours)


def test_a_search_value_at_the_top_level_and_in_the_search_table_is_refused(tmp_path, capsys):
    """epochs = 1 at the top and epochs = 2 in [search]: the table won, silently."""
    config = tmp_path / "p.toml"
    config.write_text("epochs = 1\n[search]\nepochs = 2\n")
    fails(capsys, ["run", *TINY, "--config", str(config), "--run-dir", str(tmp_path / "r")],
          "epochs: given at the top level (1) and in the \"search\" table (2); keep one")
    assert not (tmp_path / "r").exists()


def test_a_resumed_pipeline_whose_training_starts_now_warns_nothing_again(tmp_path, monkeypatch, capsys, recwarn):
    """Said when the pipeline started; `diffnas run --resume` then warned the training's value again as a
    Python UserWarning when the training began."""
    config = tmp_path / "p.toml"
    config.write_text('[train]\nlr_gamma = 0.5\n')
    signal_during_search(monkeypatch)
    assert cli.main(["run", *TINY, "--config", str(config), "--run-dir", str(tmp_path / "r")]) == 130
    assert capsys.readouterr().err.count("lr_gamma: 0.5 has no effect") == 1
    monkeypatch.undo()
    assert cli.main(["run", "--resume", str(tmp_path / "r")]) == 0
    assert "has no effect" not in capsys.readouterr().err
    assert not [w for w in recwarn if "has no effect" in str(w.message)]


def test_a_training_value_the_data_cannot_take_fails_before_the_search_and_can_change_until_training(
        tmp_path, monkeypatch, capsys):
    """--train-batch-size 100 on 64 training images failed only after the whole search, and the resume
    refused the fix (a resumed run keeps its configuration): the pipeline was dead."""
    run = tmp_path / "p"
    fails(capsys, ["run", *TINY, "--train-batch-size", "100", "--run-dir", str(run)],
          "error: --train-batch-size: 100 is more than the 64 training images; pass --train-batch-size 64 or less")
    # from the config file's [train] table it is the training's field, never the search's --batch-size typed
    (tmp_path / "big.toml").write_text("[train]\nbatch_size = 100\n")
    untyped = TINY[:TINY.index("--train-batch-size")]   # --batch-size 4 (the search's) typed, the training's not
    err = fails(capsys, ["run", *untyped, "--config", str(tmp_path / "big.toml"), "--run-dir", str(run)],
                "error: train.batch_size: 100 is more than the 64 training images")
    assert "--batch-size" in untyped and "error: --batch-size" not in err
    assert not run.exists()
    # under torchrun, a training batch that does not split over its processes (2, faked): before the search too
    from diffnas import distributed

    with monkeypatch.context() as m:
        m.setattr(distributed, "rank_world", lambda: (0, 2))
        fails(capsys, ["run", *TINY[:-1], "5", "--run-dir", str(run)],
              "error: --train-batch-size: 5 images do not split evenly over 2 processes")
    assert not run.exists()
    signal_during_search(monkeypatch)   # a pipeline stopped in its search: its training has not started
    assert cli.main(["run", *TINY, "--run-dir", str(run)]) == 128 + signal.SIGINT
    monkeypatch.undo()
    guard_training(monkeypatch)
    capsys.readouterr()
    # the setting is not among them: the saved values are its recipe (a switch trained a mix of both)
    (tmp_path / "imagenet.toml").write_text('[train]\nsetting = "imagenet"\n')
    fails(capsys, ["run", "--resume", str(run), "--config", str(tmp_path / "imagenet.toml")],
          "[train] setting: 'imagenet' given, but the pipeline in")
    # a search value refused lists what may change, the training's too (only the search's were listed)
    fails(capsys, ["run", "--resume", str(run), "--layers", "4"],
          "error: --layers: 4 given", "--edges may change; and, until the training starts, the training's values: "
          "--train-epochs, --train-layers, --train-batch-size, ..., not its setting)")
    assert cli.main(["run", "--resume", str(run), "--train-batch-size", "2"]) == 0
    assert ("diffnas: the training has not started; the values typed now replace the saved ones "
            "(--train-batch-size 2, was 4)") in capsys.readouterr().err
    assert train_config_of(run)["batch_size"] == 2
    assert json.loads((run / "config.json").read_text())["train"]["batch_size"] == 2
    # once the training has started, its values are the run's
    fails(capsys, ["run", "--resume", str(run), "--train-batch-size", "4"], "error: --train-batch-size: 4 given")


def test_a_pipeline_resumed_after_its_data_moved_says_so_and_goes_on_with_the_new_folder(
        tmp_path, monkeypatch, capsys):
    """It said 'imagefolder: --data-dir /old: no such folder', naming a flag the user never typed."""
    from formats_fixtures import write_image_folder

    data = tmp_path / "data"
    write_image_folder(data, classes=("bird", "cat"), per_class=4, size=(8, 8))
    run = tmp_path / "p"
    signal_during_search(monkeypatch)
    assert cli.main(["run", *SEARCH, "--dataset", "imagefolder", "--data-dir", str(data), *TRAIN,
                     "--run-dir", str(run)]) == 128 + signal.SIGINT
    monkeypatch.undo()
    guard_training(monkeypatch)
    data.rename(tmp_path / "moved")
    capsys.readouterr()
    fails(capsys, ["run", "--resume", str(run)],
          f"imagefolder: {data}, the folder the run in {run} read its data from, is not there (moved or deleted?); "
          f"resume with --data-dir DIR naming where it is now")
    assert cli.main(["run", "--resume", str(run), "--data-dir", str(tmp_path / "moved")]) == 0
    assert (run / "summary.json").is_file()


def test_a_pipeline_reads_its_data_once(tmp_path, monkeypatch):
    """The training's checks before the search, the search and the training each read the dataset: three
    decodes of the same files (an image folder without the cache: three times the time)."""
    import dataclasses

    from diffnas.data import datasets

    reads = []
    entry = datasets.DATASETS["synthetic"]

    def counted(*args, **kwargs):
        reads.append(args)
        return entry.load(*args, **kwargs)

    monkeypatch.setitem(datasets.DATASETS, "synthetic", dataclasses.replace(entry, load=counted))
    assert cli.main(["run", *TINY, "--run-dir", str(tmp_path / "p")]) == 0
    assert len(reads) == 1
    datasets.load_dataset("synthetic")   # outside a pipeline, a read is a read
    assert len(reads) == 2


def test_ctrl_c_between_the_stages_says_how_to_resume_the_pipeline(tmp_path, monkeypatch, capsys):
    """Ctrl-C while the training was being set up (its data read: minutes for a large folder) said only
    'diffnas: interrupted', though the search was complete and `diffnas run --resume` goes on."""
    train_mod = importlib.import_module("diffnas.train")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "load_dataset", interrupted)
    run = tmp_path / "p"
    assert cli.main(["run", *TINY, "--run-dir", str(run)]) == 128 + signal.SIGINT
    err = capsys.readouterr().err
    assert (f"diffnas: stopped before the training started (the search is complete and saved); resume the pipeline "
            f"with: diffnas run --resume {run}\n") in err, err
    monkeypatch.setattr(train_mod, "load_dataset", importlib.import_module("diffnas.data").load_dataset)
    # once the training has written its config, before its first step: said too (it was 'interrupted' alone);
    # its new folder is removed again (nothing was trained), so the training has not started
    real_describe = train_mod.describe
    monkeypatch.setattr(train_mod, "describe", interrupted)
    assert cli.main(["run", "--resume", str(run)]) == 130
    err = capsys.readouterr().err
    assert not (run / "train").exists()
    assert (f"diffnas: stopped before the training started (the search is complete and saved); resume the "
            f"pipeline with: diffnas run --resume {run}\n") in err, err
    monkeypatch.setattr(train_mod, "describe", real_describe)
    # a training stopped after its first step (saved), then stopped again while it sets up on resume
    real_step = train_mod.train_step

    def step_then_ctrl_c(*args, **kwargs):
        out = real_step(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(train_mod, "train_step", step_then_ctrl_c)
    assert cli.main(["run", "--resume", str(run)]) == 130 and (run / "train" / "checkpoint.pt").is_file()
    monkeypatch.setattr(train_mod, "train_step", real_step)
    monkeypatch.setattr(train_mod, "load_dataset", interrupted)
    capsys.readouterr()
    assert cli.main(["run", "--resume", str(run)]) == 130
    assert (f"diffnas: stopped while the training set up (the search is complete and saved); resume the "
            f"pipeline with: diffnas run --resume {run}\n") in capsys.readouterr().err
    assert (run / "train" / "checkpoint.pt").is_file()   # a started training's folder stays
    monkeypatch.setattr(train_mod, "load_dataset", importlib.import_module("diffnas.data").load_dataset)
    assert cli.main(["run", "--resume", str(run)]) == 0 and (run / "summary.json").is_file()


def test_sigterm_as_the_training_sets_up_says_how_to_resume_the_pipeline(tmp_path, monkeypatch, capsys):
    """SIGTERM between the stages (the search done, the training building) ended the process without a
    word; now it says, as Ctrl-C does, that the search is kept and how to go on."""
    run = tmp_path / "p"
    real_train = pipeline.train

    def term_then_train(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(pipeline, "train", term_then_train)
    assert cli.main(["run", *TINY, "--run-dir", str(run)]) == 128 + signal.SIGTERM
    err = capsys.readouterr().err.splitlines()
    assert err[-2:] == [f"diffnas: stopped before the training started (the search is complete and saved); resume "
                        f"the pipeline with: diffnas run --resume {run}", "diffnas: terminated (SIGTERM)"]
    monkeypatch.setattr(pipeline, "train", real_train)
    assert cli.main(["run", "--resume", str(run)]) == 0 and (run / "summary.json").is_file()


def test_a_resume_from_python_refuses_what_the_command_line_refuses(finished, tmp_path):
    """`run_pipeline(..., resume=True)` with more search epochs on a complete pipeline returned the old
    summary without a word (the checks were in the command line's resume only); fewer training epochs
    than it trained and another setting likewise."""
    from diffnas.config import search_config
    from diffnas.errors import ConfigError

    run = copy(finished, tmp_path / "p")
    before = files(run)
    saved_search, saved_train = pipeline.saved_config(run)
    search_cfg = search_config(**saved_search)
    train_cfg = pipeline.stage_train_config(search_cfg, saved_train)
    assert pipeline.run_pipeline(search_cfg, train_cfg, run, resume=True).complete_before   # unchanged: as it was
    longer = search_config(**{**saved_search, "epochs": 2})
    with pytest.raises(ConfigError, match=f"^epochs: the pipeline in {run} is complete; start a new pipeline"):
        pipeline.run_pipeline(longer, train_cfg, run, resume=True)
    saved_train["epochs"] = 2   # as if it trained 2: asked for 1 now
    (run / "train" / "config.json").write_text(json.dumps({**train_config_of(run), "epochs": 2}))
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "train": {**config["train"], "epochs": 2}}))
    with pytest.raises(ConfigError, match=r"^epochs: 1 given, but the pipeline in .* trained its genotype for 2 "
                                          r"epochs; on resume the training can only be extended"):
        pipeline.run_pipeline(search_cfg, train_cfg, run, resume=True)
    assert {k: v for k, v in files(run).items() if "config.json" not in k} == \
        {k: v for k, v in before.items() if "config.json" not in k}


def test_a_resumed_pipeline_keeps_each_stages_batch_norm_groups(tmp_path, monkeypatch, capsys):
    """A torchrun pipeline (2 CPU processes: its stages resolved bn_groups auto to 2) resumed in one
    process went on with bn_groups 1, other maths without a word (review): the pipeline's saved auto
    was passed on as given and resolved anew. Made here by writing 2 where torchrun would have."""
    from diffnas.config import search_config

    run = tmp_path / "p"
    monkeypatch.setattr(pipeline, "train", functools.partial(pipeline.train, stop_after=1))
    assert cli.main(["run", *TINY, "--train-epochs", "2", "--run-dir", str(run)]) == 128 + signal.SIGTERM
    monkeypatch.undo()
    guard_training(monkeypatch)
    # the training's auto, resolved for this launch (one process: 1) and saved before the search
    assert json.loads((run / "config.json").read_text())["train"]["bn_groups"] == 1
    for stage in ("search", "train"):
        path = run / stage / "config.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "bn_groups": 2}))
    capsys.readouterr()
    assert cli.main(["run", "--resume", str(run)]) == 0
    assert "bn_groups" not in capsys.readouterr().err
    assert train_config_of(run)["bn_groups"] == 2
    # a value asked for now (not the saved auto) is passed on, for the stage's resume to take or refuse
    saved_search, saved_train = pipeline.saved_config(run)
    search_cfg = search_config(**{**saved_search, "bn_groups": 1})
    train_cfg = pipeline.stage_train_config(search_cfg, saved_train)
    search_given, train_given = pipeline.stage_given((saved_search, saved_train), search_cfg, train_cfg)
    assert "bn_groups" in search_given and "bn_groups" not in train_given and "device" in train_given


def test_the_training_keeps_the_batch_norm_groups_its_pipeline_started_with(monkeypatch, capsys):
    """A torchrun pipeline (2 CPU processes) stopped before its training and resumed in one process
    trained with bn_groups 1, the whole batch's statistics, where the uninterrupted run had per-rank
    ones (a helper saw 70.6% -> 75.6% test error): the training's auto was saved unresolved and
    resolved anew. The pipeline now resolves it before the search (check_training_data) and saves it;
    a saved value this launch cannot realise falls back with a warning, as a stage's resume does."""
    from diffnas.config import train_config
    from diffnas.errors import ConfigError

    cfg = train_config("cifar", dataset="synthetic", batch_size=8)
    assert pipeline.check_training_data(cfg) == 1                 # one process: the global batch
    monkeypatch.setattr(distributed, "rank_world", lambda: (0, 2))   # as torchrun's 2 processes would
    assert pipeline.check_training_data(cfg) == 2                 # CPU ranks: per-rank statistics
    shared = train_config("cifar", dataset="synthetic", batch_size=8, bn_groups=1)
    capsys.readouterr()
    assert pipeline.check_training_data(shared, saved_bn_groups=1) == 2   # a resume's saved 1: falls back
    assert "warning: bn_groups 1 cannot be used with 2 processes" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="bn_groups: 1 with 2 processes"):   # asked for now: refused
        pipeline.check_training_data(shared, saved_bn_groups=0)


def test_run_pipeline_refuses_swapped_configs_and_training_values_it_sets_itself(tmp_path):
    """The configs swapped were a TypeError from a dataclass; a training genotype, data or folder was
    silently replaced by the search's (a config file's [train] table refuses them)."""
    from diffnas.config import search_config, train_config
    from diffnas.errors import ConfigError
    from diffnas.pipeline import run_pipeline

    s_cfg, t_cfg = search_config("darts-1st", dataset="synthetic"), train_config("cifar")
    with pytest.raises(ConfigError, match="^run_pipeline: expected a SearchConfig and a TrainConfig, in that order .* "
                                          "got TrainConfig and SearchConfig$"):
        run_pipeline(t_cfg, s_cfg, tmp_path / "p")
    for key, value in (("genotype", "DARTS_V1"), ("run_dir", str(tmp_path / "elsewhere")), ("dataset", "mnist")):
        with pytest.raises(ConfigError, match=f"^train_cfg.{key}: a pipeline sets it"):
            run_pipeline(s_cfg, train_config("cifar", **{key: value}), tmp_path / "p")
    assert not (tmp_path / "p").exists() and not (tmp_path / "elsewhere").exists()

