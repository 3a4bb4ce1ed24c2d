"""What the commands print around a run, checked without running one: the search, the training and
the pipeline are replaced by fakes that record the config they get. Warnings for values that do
nothing, a run's own config.json as --config, help texts that say what a plain command runs, the
wall time of the whole command, and notices from rank 0 only."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from cli_helpers import fails

from diffnas import cli, fastpath
from diffnas import genotype as G
from diffnas.config import SearchConfig, TrainConfig, search_config, to_dict
from diffnas.pipeline import PipelineResult
from diffnas.search import SearchResult
from diffnas.train import TrainResult, autocast_for

search_mod = importlib.import_module("diffnas.search")   # the package re-exports the functions
train_mod = importlib.import_module("diffnas.train")
pipeline_mod = importlib.import_module("diffnas.pipeline")


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def say(notices) -> None:
    """What the loops do with the command line's `notices` once a run has started."""
    for line in notices:
        print(line, file=sys.stderr)


@pytest.fixture
def fake_search(monkeypatch):
    """search() records its config and returns at once (after calling `during`, a run of 0.01 s)."""
    seen = []

    def fake(cfg, resume=None, *, notices=(), **kwargs):
        seen.append(cfg)
        say(notices)
        fake.during()
        return SearchResult(Path(cfg.run_dir or "runs/x"), G.load("DARTS_V2"), torch.zeros(1),
                            [{"epoch": 1, "val_loss": 1.1, "val_acc": 0.547}], 0.01)

    fake.during = lambda: None
    monkeypatch.setattr(search_mod, "search", fake)
    return fake, seen


@pytest.fixture
def fake_train(monkeypatch):
    seen = []

    def fake(cfg, genotype=None, *, notices=(), **kwargs):
        seen.append(cfg)
        say(notices)
        fake.during()
        return TrainResult(Path(cfg.run_dir or "runs/x"), 0.5, 1.0, 1000, 100, 0.01)

    fake.during = lambda: None
    monkeypatch.setattr(train_mod, "train", fake)
    return fake, seen


@pytest.fixture
def fake_pipeline(monkeypatch):
    seen = []

    def fake(search_cfg, train_cfg, run_dir=None, *, notices=(), **kwargs):
        seen.append((search_cfg, train_cfg))
        say(notices)
        return PipelineResult(Path(run_dir or "runs/x"), None, None, {}, exit_code=3)   # reports nothing

    monkeypatch.setattr(pipeline_mod, "run_pipeline", fake)
    return seen


def warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("diffnas: warning: ")]


# ---------------------------------------------------------------------------------------------
# values that do nothing: one warning each, once, from rank 0

# a value typed as a flag is named by it, as errors name it ("xi: 0.5" was the config key)
@pytest.mark.parametrize("flags, expected", [
    (["--order", "first", "--xi", "0.5"], "--xi: 0.5 has no effect with --order first"),
    (["--order", "one-level", "--xi", "0.5"], "--xi: 0.5 has no effect with --order one-level"),
    (["--order", "first", "--hessian", "exact"], "--hessian: 'exact' has no effect with --order first"),
    (["--threshold", "0.5"], "--threshold: 0.5 has no effect with --arch softmax"),
    (["--data-dir", "/X"], "--data-dir: '/X' has no effect with --dataset digits (no files are read; name the "
                           "dataset its files hold: --dataset cifar10 | cifar100 |"),   # relative: made absolute
    (["--warmup-epochs", "5", "--epochs", "1"], "--warmup-epochs: 5 warm-up epochs cover all 1 epochs"),
    (["--order", "one-level", "--train-portion", "0.9"], "--train-portion: 0.9 has no effect with --order one-level"),
    # silent before: second order at xi 0 (first order by another name), the zero-one loss on softmax
    # weights, skip-connection settings without skip_connect
    (["--order", "second", "--xi", "0"], "--xi: 0 with --order second is first order (the unrolled step"),
    (["--order", "second", "--xi", "0", "--hessian", "exact"], "--xi: 0 with --order second is first order"),
    (["--zero-one-weight", "10"], "--zero-one-weight: 10 has no effect with --arch softmax (the zero-one loss"),
    (["--ops", "sep_conv_3x3,max_pool_3x3", "--skip-dropout", "0.3"],
     "--skip-dropout: 0.3 has no effect: skip_connect is not among the ops"),
    (["--ops", "sep_conv_3x3,max_pool_3x3", "--max-skips", "1"],
     "--max-skips: 1 has no effect: skip_connect is not among the ops"),
])
def test_a_value_without_effect_is_warned_once(fake_search, capsys, flags, expected):
    assert cli.main(["search", "--dataset", "digits", *flags]) == 0
    found = warnings(capsys.readouterr().err)
    assert len(found) == 1 and f"warning: {expected}" in found[0], found


@pytest.mark.parametrize("flags, said", [
    (["--order", "first"], "fd_eps: 0.001 has no effect with --order first (only second order takes Hessian-vector "
                           "products; --hessian fd with --order second takes them)"),
    (["--order", "second", "--hessian", "exact"], "fd_eps: 0.001 has no effect with --hessian exact (the exact "
                                                  "Hessian-vector product takes no finite differences;"),
    (["--order", "second"], None),
])
def test_a_finite_difference_step_without_finite_differences_is_warned(fake_search, tmp_path, capsys, flags, said):
    """fd_eps (a config file's key) was greyed in the report of a first-order run but never warned of."""
    (tmp_path / "c.toml").write_text("fd_eps = 0.001\n")
    assert cli.main(["search", "--dataset", "digits", "--config", str(tmp_path / "c.toml"), *flags]) == 0
    found = warnings(capsys.readouterr().err)
    assert found == [] if said is None else (len(found) == 1 and f"warning: {said}" in found[0]), found


def test_values_with_effect_are_not_warned(fake_search, capsys):
    for argv in (["--order", "second", "--xi", "0.5", "--hessian", "exact"], ["--preset", "fair-darts",
                 "--threshold", "0.5"], ["--dataset", "synthetic"], ["--preset", "pc-darts", "--epochs", "20"]):
        assert cli.main(["search", "--dataset", "digits", *argv]) == 0
        assert warnings(capsys.readouterr().err) == [], argv


def test_the_pipeline_warns_once_for_both_stages(fake_pipeline, capsys):
    assert cli.main(["run", "--dataset", "digits", "--data-dir", "X", "--order", "first", "--xi", "0.1"]) == 3
    found = warnings(capsys.readouterr().err)
    assert len(found) == 2 and "warning: --data-dir: " in found[0] and "warning: --xi: 0.1" in found[1], found


def test_a_step_schedules_lr_min_is_warned_of_not_refused(fake_train, capsys):
    """--lr-min above --lr was refused under the step schedule, which never reads it."""
    assert cli.main(["train", "--dataset", "synthetic", "--lr-schedule", "step", "--lr-min", "0.5"]) == 0
    found = warnings(capsys.readouterr().err)
    assert len(found) == 1 and "warning: --lr-min: 0.5 has no effect with the step lr schedule" in found[0], found
    assert cli.main(["train", "--dataset", "synthetic", "--lr-min", "0.5"]) == 2   # the cosine's: refused
    assert "--lr-min: 0.5 is above lr 0.025" in capsys.readouterr().err


def test_train_warns_for_values_its_schedule_or_data_ignore(fake_train, capsys):
    assert cli.main(["train", "--dataset", "synthetic", "--data-dir", "X", "--lr-gamma", "0.5"]) == 0
    found = warnings(capsys.readouterr().err)
    assert len(found) == 2 and "warning: --data-dir: '" in found[0] and \
        "warning: --lr-gamma: 0.5 has no effect with the cosine" in found[1], found


def test_warnings_and_notes_come_from_rank_0_only(fake_search, monkeypatch, capsys):
    """Under torchrun each rank runs the CLI: what it says before setup() goes by RANK; the fast
    path's notices come after setup(), and go by the process group's rank."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank in (1, 0):
        monkeypatch.setenv("RANK", str(rank))
        assert cli.main(["search", "--order", "first", "--xi", "0.5"]) == 0   # the embedded-digits note, a warning
        with monkeypatch.context() as m:
            m.setattr(fastpath.dist, "is_initialized", lambda: True)
            m.setattr(fastpath.dist, "get_rank", lambda group=None: rank)
            fastpath.notice("fast path: anything")
            autocast_for(torch.device("meta"), "bf16")   # no bf16 there: the fp32 warning (after setup())
        err = capsys.readouterr().err
        if rank:
            assert err == ""
        else:
            assert "embedded digits dataset, quick search" in err and "diffnas: fast path: anything" in err
            assert [line.split(":")[2] for line in warnings(err)] == [" --xi",
                                                                      " bf16 is not supported on meta; running in fp32"]


def test_a_run_refused_at_its_start_says_only_why(tmp_path, capsys):
    """The warnings and the embedded-digits note wait until the run has started: an error stays one line."""
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "config.json").write_text("{}")
    (tmp_path / "taken" / "checkpoint.pt").write_bytes(b"")
    fails(capsys, ["search", "--data-dir", "X", "--order", "first", "--xi", "1", "--run-dir", str(tmp_path / "taken")],
          "holds a run already")
    fails(capsys, ["train", "--dataset", "synthetic", "--data-dir", "X", "--setting", "imagenet"],
          "the imagenet setting needs images of at least 32x32")


def test_a_resume_warns_about_nothing(fake_search, tmp_path, capsys):
    """On --resume the run's saved config counts, not the defaults the flags fall back to here (the
    embedded digits, with which --data-dir would do nothing)."""
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({**to_dict(search_config("darts", dataset="cifar10",
                                                                         data_dir="X")), "command": "search"}))
    assert cli.main(["search", "--resume", str(run), "--data-dir", "X"]) == 0
    assert warnings(capsys.readouterr().err) == []


# ---------------------------------------------------------------------------------------------
# a run's own config.json as --config: "command" must name the command it is given to

def saved_config(tmp_path: Path, command: str, **values) -> Path:
    base = to_dict(SearchConfig() if command == "search" else TrainConfig())
    path = tmp_path / f"{command}.json"
    path.write_text(json.dumps({**base, **values, "command": command, "run_dir": str(tmp_path / "old")}))
    return path


def test_a_search_runs_config_json_starts_a_new_search(fake_search, tmp_path):
    path = saved_config(tmp_path, "search", preset="darts-1st", order="first", layers=3)
    assert cli.main(["search", "--config", str(path), "--run-dir", str(tmp_path / "new")]) == 0
    cfg = fake_search[1][-1]
    assert (cfg.preset, cfg.order, cfg.layers, cfg.run_dir) == ("darts-1st", "first", 3, str(tmp_path / "new"))
    assert cli.main(["params", "--config", str(path), "--json"]) == 0   # params reads search configs too


def test_a_config_of_another_command_is_refused(tmp_path, capsys):
    train_json, search_json = saved_config(tmp_path, "train"), saved_config(tmp_path, "search")
    pipeline_json = tmp_path / "pipeline.json"
    pipeline_json.write_text(json.dumps({"command": "pipeline", "search": {}, "train": {}}))
    fails(capsys, ["search", "--config", str(train_json)],
          f"{train_json}: a train config (\"command\": \"train\"); `diffnas search --config` takes a search config")
    fails(capsys, ["params", "--config", str(train_json)], "a train config", "`diffnas params --config`")
    fails(capsys, ["search", "--config", str(pipeline_json)],
          "a pipeline config", "start a pipeline with `diffnas run --config")
    fails(capsys, ["train", "--config", str(search_json)],
          f"{search_json}: a search config (\"command\": \"search\"); `diffnas train --config` takes a train config")
    fails(capsys, ["run", "--config", str(train_json)], "a train config", "`diffnas run --config` takes")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"command": "plot"}))
    fails(capsys, ["search", "--config", str(other)], "command: 'plot'")


# ---------------------------------------------------------------------------------------------
# help texts say what a command with no dataset named runs

def help_text(capsys, command: str) -> str:
    assert cli.main([command, "--help"]) == 0
    return " ".join(capsys.readouterr().out.split())


def test_help_gives_the_quick_sizes_of_the_embedded_digits(capsys):
    text = help_text(capsys, "search")
    for flag, default, quick in (("--layers", 8, 5), ("--channels", 16, 8), ("--epochs", 50, 5),
                                 ("--batch-size", 64, 128)):
        assert re.search(rf"{flag} \S+ .*?default {default}.*?; {quick} when no dataset is named", text), flag
    text = help_text(capsys, "run")
    for flag, default, quick in (("--train-epochs", 600, 20), ("--train-layers", 20, 8),
                                 ("--train-channels", 36, 16), ("--layers", 8, 5)):
        assert re.search(rf"{flag} \S+ .*?default {default}.*?; {quick} when no dataset is named", text), flag


# ---------------------------------------------------------------------------------------------
# the time printed is the command's

def test_the_time_printed_is_the_whole_commands(fake_search, fake_train, capsys, monkeypatch):
    """The loops' own seconds (0.01 s here) leave out loading the data and building the network: the
    command's clock, from its start to its last line (a fake clock that the runs move 12.5 s)."""
    import types

    clock = [100.0]
    fake_time = types.SimpleNamespace(monotonic=lambda: clock[0], sleep=time.sleep, time=time.time)
    monkeypatch.setattr(importlib.import_module("diffnas.cli"), "time", fake_time)
    monkeypatch.setattr(importlib.import_module("diffnas.cli.options"), "time", fake_time)
    for fake in (fake_search[0], fake_train[0]):
        fake.during = lambda: clock.__setitem__(0, clock[0] + 12.5)
    for argv in (["search", "--dataset", "synthetic"], ["train", "--dataset", "synthetic"]):
        assert cli.main(argv) == 0
        out = capsys.readouterr().out
        assert re.search(r"run folder: \S+ +\(12\.5 s\)", out), out


def test_search_ends_with_its_validation_accuracy(fake_search, capsys):
    assert cli.main(["search", "--dataset", "synthetic"]) == 0
    assert "validation accuracy 54.70%, validation loss 1.1000" in capsys.readouterr().out


def test_a_quick_pc_darts_search_scales_its_warm_up_to_the_quick_epochs(fake_search, capsys):
    """With no dataset named the search runs 5 epochs; PC-DARTS's 15 warm-up epochs refused that
    ("leaves no architecture steps"). Its share of the paper's 50 is kept: 2 of 5."""
    _, seen = fake_search
    assert cli.main(["search", "--preset", "pc-darts"]) == 0
    assert (seen[-1].epochs, seen[-1].warmup_epochs, seen[-1].batch_size) == (5, 2, 128)
    err = capsys.readouterr().err
    assert "warmup_epochs 2); pass --layers 8 --channels 16 --epochs 50 --batch-size 256 --warmup-epochs 15" in err
    for typed in (["--warmup-epochs", "1"], ["--dataset", "synthetic"]):   # what is typed, or a dataset: as given
        assert cli.main(["search", "--preset", "pc-darts", "--epochs", "20", *typed]) == 0
        assert seen[-1].warmup_epochs == (1 if typed[0] == "--warmup-epochs" else 15)
    assert cli.main(["search", "--preset", "pc-darts", "--warmup-epochs", "1"]) == 0   # quick epochs, typed warm-up
    assert (seen[-1].epochs, seen[-1].warmup_epochs) == (5, 1)
    # epochs typed in a quick search: the share of those (README walk: `--epochs 5` kept 15 and was refused)
    for epochs, warmup in (("5", 2), ("20", 6), ("50", 15)):
        assert cli.main(["search", "--preset", "pc-darts", "--epochs", epochs]) == 0
        assert (seen[-1].epochs, seen[-1].warmup_epochs) == (int(epochs), warmup)
    assert cli.main(["search"]) == 0 and seen[-1].warmup_epochs == 0
    assert "--batch-size 64 for the paper's size" in capsys.readouterr().err


def test_a_bare_train_on_the_embedded_digits_is_quick_and_says_so(fake_train, capsys):
    """`diffnas train` with no dataset was the paper's 600 epochs of a 20-cell network on 749
    digits: hours, with no word of it. Now the quick sizes of `diffnas run`, said as the search says its."""
    _, seen = fake_train
    assert cli.main(["train"]) == 0
    assert (seen[-1].epochs, seen[-1].layers, seen[-1].channels, seen[-1].dataset) == (20, 8, 16, "digits")
    assert ("embedded digits dataset, quick training (epochs 20, layers 8, channels 16); pass --layers 20 "
            "--channels 36 --epochs 600 for the paper's size") in capsys.readouterr().err
    assert cli.main(["train", "--epochs", "3"]) == 0 and (seen[-1].epochs, seen[-1].layers) == (3, 8)
    assert "quick training (layers 8, channels 16)" in capsys.readouterr().err
    for named in (["--dataset", "synthetic"], ["--setting", "imagenet"], ["--dataset", "digits"]):
        assert cli.main(["train", *named]) == 0
        assert "quick training" not in capsys.readouterr().err
    assert seen[-3].layers == 20 and seen[-2].layers == 14 and seen[-1].epochs == 600


def test_a_bare_train_of_a_per_cell_genotype_takes_its_depth_not_the_quick_one(fake_train, tmp_path, capsys):
    """The quick 8 cells and the genotype's own depth were both said ('quick training (layers 8, ...)',
    then 'training a network of 4 cells (not the setting's 8)')."""
    cells = G.CellwiseGenotype(tuple(G.Cell((("sep_conv_3x3", 0), ("skip_connect", 1)), (2,), k in (1, 2))
                                     for k in range(4)))
    (tmp_path / "g.json").write_text(G.to_json(cells))
    _, seen = fake_train
    assert cli.main(["train", "--genotype", str(tmp_path / "g.json")]) == 0
    err = capsys.readouterr().err
    assert seen[-1].layers == 4 and (seen[-1].epochs, seen[-1].channels) == (20, 16)
    assert "quick training (epochs 20, channels 16)" in err
    assert "training a network of 4 cells (not the setting's 20)" in err
    # the paper's size without --layers 20, which this genotype refuses
    assert "pass --channels 36 --epochs 600 for the paper's size" in err and "--layers 20" not in err
    # a cell of the normal kind takes any depth: --layers 20 is offered even when --layers was typed
    assert cli.main(["train", "--genotype", "DARTS_V2", "--layers", "3"]) == 0
    assert "pass --layers 20 --channels 36 --epochs 600 for the paper's size" in capsys.readouterr().err


def test_the_fair_darts_note_covers_a_sigmoid_searchs_folder(fake_train, tmp_path, capsys):
    """`diffnas run` trains a sigmoid search's cell per node; `diffnas train --genotype` on that search
    said nothing of it (only published FAIR_DARTS_* names got the note)."""
    from runfolder_fixtures import write_search_run
    run = write_search_run(tmp_path / "s", nodes=4)
    note = "FairDARTS trained its cells with drop-path on each node's sum"
    for arch, said in (("softmax", False), ("sigmoid", True)):
        config = json.loads((run / "config.json").read_text())
        (run / "config.json").write_text(json.dumps({**config, "arch": arch}))
        for spec in (str(run), str(run / "genotype.json")):
            assert cli.main(["train", "--genotype", spec, "--dataset", "synthetic"]) == 0
            assert (note in capsys.readouterr().err) is said, (arch, spec)
    assert cli.main(["train", "--genotype", str(run), "--dataset", "synthetic", "--drop-path-per", "op"]) == 0
    assert note not in capsys.readouterr().err   # chosen: nothing to say
    assert cli.main(["train", "--genotype", "fair_darts_a", "--dataset", "synthetic"]) == 0   # any case
    assert note in capsys.readouterr().err


def test_training_a_pc_darts_cell_names_pc_darts_drop_path(fake_train, tmp_path, capsys):
    """PC-DARTS trained its CIFAR cells with drop-path 0.3 (its train.py), DARTS with 0.2: a PC-DARTS
    cell (published, or from a partial-channel search) trained with the default gets a note."""
    from runfolder_fixtures import write_search_run
    run = write_search_run(tmp_path / "s", nodes=4)
    note = "PC-DARTS trained its CIFAR cells with drop-path 0.3; --drop-path 0.3 does that"
    config = json.loads((run / "config.json").read_text())
    for spec, arch, said in (("PC_DARTS_CIFAR", None, True), ("pc-darts-cifar", None, True), ("DARTS_V2", None, False),
                             (str(run), "pc", True), (str(run), "softmax", False)):   # a name in any case too
        (run / "config.json").write_text(json.dumps({**config, "arch": arch or "softmax"}))
        assert cli.main(["train", "--genotype", spec, "--dataset", "synthetic"]) == 0
        assert (note in capsys.readouterr().err) is said, (spec, arch)
    assert cli.main(["train", "--genotype", "PC_DARTS_CIFAR", "--dataset", "synthetic", "--drop-path", "0.2"]) == 0
    assert note not in capsys.readouterr().err   # chosen: nothing to say
    assert cli.main(["train", "--genotype", "PC_DARTS_CIFAR", "--setting", "imagenet", "--dataset", "synthetic"]) == 0
    assert note not in capsys.readouterr().err   # the CIFAR recipe only


def test_training_a_searchs_genotype_on_other_data_says_how_to_use_the_searchs(fake_train, tmp_path, capsys):
    """`diffnas train --genotype RUN` of a search on an image folder trained on the embedded digits,
    and nothing said that the search's data (and its --image-size) had to be named again."""
    from runfolder_fixtures import write_search_run
    run = write_search_run(tmp_path / "s", nodes=4)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "dataset": "imagefolder", "data_dir": "/d",
                                                 "image_size": 16}))
    note = ("diffnas: note: the genotype was searched on imagefolder; this training uses digits (train on the "
            "search's data with --dataset imagefolder --data-dir /d --image-size 16)")
    for spec in (str(run), str(run / "genotype.json")):
        assert cli.main(["train", "--genotype", spec]) == 0
        assert note in capsys.readouterr().err, spec
    assert cli.main(["train", "--genotype", str(run), "--dataset", "synthetic"]) == 0   # chosen: nothing to say
    assert "searched on" not in capsys.readouterr().err
    assert cli.main(["train", "--genotype", "DARTS_V2"]) == 0   # no search behind it
    assert "searched on" not in capsys.readouterr().err


def test_a_runs_own_config_starts_a_new_run_in_a_new_folder(fake_search, fake_train, tmp_path, capsys):
    """`search --config runs/r2/config.json` reused the saved run_dir and was refused ("holds a run
    already"); the README says a run's own config.json works. A plain config file's run_dir counts."""
    _, searched = fake_search
    _, trained = fake_train
    saved = {**to_dict(search_config("darts-1st", dataset="synthetic", epochs=3)), "command": "search",
             "run_dir": str(tmp_path / "old")}
    (tmp_path / "s.json").write_text(json.dumps(saved))
    assert cli.main(["search", "--config", str(tmp_path / "s.json")]) == 0
    assert searched[-1].run_dir is None and searched[-1].epochs == 3 and searched[-1].order == "first"
    (tmp_path / "t.json").write_text(json.dumps({**to_dict(TrainConfig(dataset="synthetic", epochs=2)),
                                                 "command": "train", "run_dir": str(tmp_path / "old")}))
    assert cli.main(["train", "--config", str(tmp_path / "t.json")]) == 0
    assert trained[-1].run_dir is None and trained[-1].epochs == 2
    (tmp_path / "plain.json").write_text(json.dumps({"epochs": 4, "run_dir": str(tmp_path / "mine")}))
    assert cli.main(["search", "--config", str(tmp_path / "plain.json")]) == 0
    assert searched[-1].run_dir == str(tmp_path / "mine")


def test_a_log_level_set_before_diffnas_is_imported_is_kept():
    """`logging.getLogger("diffnas").setLevel(WARNING)` and then `import diffnas`: the import reset the
    level to INFO, so every note still printed (found by a user following the README)."""
    code = ("import logging, sys\n"
            "logging.getLogger('diffnas').setLevel(logging.WARNING)\n"
            "from diffnas.notices import say\n"
            "say('diffnas: a note')\n"
            "say('diffnas: warning: a warning')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "diffnas: warning: a warning\n", done.stderr


def test_the_librarys_messages_go_through_the_diffnas_logger(tmp_path, capsys, monkeypatch):
    """Library code printed to stderr directly: a Python caller could not quiet or redirect it."""
    import logging

    from diffnas.config import search_config
    from diffnas.notices import say
    from diffnas.search import search
    from progress_helpers import bars_from_the_start

    bars_from_the_start(monkeypatch)   # else a pass under 30 s draws none into captured stderr either way
    say("diffnas: a note")
    say("diffnas: warning: a warning")
    assert capsys.readouterr().err == "diffnas: a note\ndiffnas: warning: a warning\n"
    logger = logging.getLogger("diffnas")
    level = logger.level
    try:
        logger.setLevel(logging.WARNING)   # what a caller does to keep only the warnings
        say("diffnas: a note")
        say("diffnas: warning: a warning")
        assert capsys.readouterr().err == "diffnas: warning: a warning\n"
        search(search_config("darts-1st", dataset="synthetic", layers=3, channels=4, nodes=2, batch_size=8,
                             epochs=1, max_steps=1, plots=False, run_dir=str(tmp_path / "s")))
        err = capsys.readouterr().err
        assert "synthetic data" not in err and "search epoch 1/1" not in err   # its notes and epoch lines
        assert "search 1/1:" not in err and "validate 1/1:" not in err   # and its progress bars
    finally:
        logger.setLevel(level)
    search(search_config("darts-1st", dataset="synthetic", layers=3, channels=4, nodes=2, batch_size=8,
                         epochs=1, max_steps=1, plots=False, run_dir=str(tmp_path / "t")))
    err = capsys.readouterr().err
    assert "synthetic data" in err and "search 1/1:" in err


def test_image_counts_are_written_with_thousands_separators_as_in_the_data_line():
    """'(on 64 of 30000 validation images)' beside a data line that said 30,000."""
    from diffnas.runlog import coverage

    assert coverage(64, 30000, "validation") == " (on 64 of 30,000 validation images)"
    assert coverage(30000, 30000, "validation") == ""


def test_messages_name_a_value_as_its_reader_sets_it():
    """notices.option: a flag on the command line, a keyword argument from Python, and in the training
    stage of `diffnas run` the flag that sets the training's value there (or its [train] table key)."""
    from diffnas.notices import command_line, option, stage

    assert [option("batch_size", 16), option("memory_format", "contiguous"), option("compile", False),
            option("epochs", "N"), option("max_skips")] == [
        "batch_size=16", "memory_format='contiguous'", "compile=False", "epochs=N", "max_skips"]
    with command_line():
        assert [option("batch_size", 16), option("memory_format", "contiguous"), option("compile", False),
                option("epochs", "N"), option("train_portion", 0.5)] == [
            "--batch-size 16", "--memory-format contiguous", "--no-compile", "--epochs N", "--train-portion 0.5"]
        with command_line({"train": {"batch_size": "--train-batch-size", "compile": "--compile"}}), stage("train"):
            assert [option("batch_size", 16), option("compile", False), option("lr_schedule", "step")] == [
                "--train-batch-size 16", "--no-compile", '[train] lr_schedule = "step"']
        assert option("batch_size", 16) == "--batch-size 16"   # each context ends with its block
    assert option("batch_size", 16) == "batch_size=16"


def test_a_python_search_names_keyword_arguments_and_the_command_line_flags(tmp_path, capsys):
    """The same refused batch size from search() and from `diffnas search`: each names what its reader
    sets (the library said `pass --batch-size 32` to a Python caller)."""
    from diffnas import search, search_config
    from diffnas.errors import ConfigError

    values = dict(dataset="synthetic", layers=3, channels=4, nodes=2, epochs=1, batch_size=64, plots=False)
    with pytest.raises(ConfigError, match=r"pass batch_size=32 or less$"):
        search(search_config("darts-1st", **values, run_dir=str(tmp_path / "py")))
    argv = ["--preset", "darts-1st", "--dataset", "synthetic", "--layers", "3", "--channels", "4", "--nodes", "2",
            "--epochs", "1", "--batch-size", "64", "--run-dir", str(tmp_path / "cli")]
    assert cli.main(["search", *argv]) == 2
    assert capsys.readouterr().err.rstrip().endswith("pass --batch-size 32 or less")


def test_the_image_decoding_bar_follows_the_diffnas_logger_too(tmp_path, monkeypatch, capsys):
    """At WARNING the loops' bars were off, but decoding an image folder still drew its own."""
    import logging

    from formats_fixtures import write_image_folder
    from progress_helpers import bars_from_the_start

    import diffnas.data.formats as formats
    from diffnas.data import load_dataset

    write_image_folder(tmp_path / "folder", per_class=3)
    monkeypatch.setattr(formats, "PROGRESS_MIN", 0)   # a bar for any number of files
    bars_from_the_start(monkeypatch)
    logger = logging.getLogger("diffnas")
    level = logger.level
    try:
        logger.setLevel(logging.WARNING)
        load_dataset("imagefolder", tmp_path / "folder")
        assert "img" not in capsys.readouterr().err
    finally:
        logger.setLevel(level)
    load_dataset("imagefolder", tmp_path / "folder")
    assert "12/12" in capsys.readouterr().err   # train and test images (the cache is off in the tests)


@pytest.mark.parametrize("threshold, noted", [(0.99, True), (0.0, False)])
def test_a_fair_darts_cell_that_no_input_passed_is_said_at_the_end_and_in_the_report(
        tmp_path, capsys, threshold, noted):
    """No input passing the threshold (sigmoid starts at 0.5) gave a cell of one edge below it, kept so
    the cell has an output, and nothing said so: the genotype looked like a search result."""
    run = tmp_path / "fair"
    assert cli.main(["search", "--preset", "fair-darts", "--dataset", "synthetic", "--layers", "3", "--channels",
                     "4", "--nodes", "2", "--batch-size", "8", "--epochs", "1", "--max-steps", "1", "--threshold",
                     str(threshold), "--run-dir", str(run), "--no-plots"]) == 0
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if line.startswith("diffnas: note: no input of the")]
    assert len(notes) == (2 if noted else 0), err
    if noted:
        genotype = G.load(str(run / "genotype.json"))
        op, source = next((op, j) for op, j in genotype.normal if op != "none")
        assert notes[0].startswith(f"diffnas: note: no input of the normal cell reached the threshold 0.99; it "
                                   f"keeps its strongest edge ({op} from {('c_{k-2}', 'c_{k-1}')[source]} to node ")
        assert "reduction cell" in notes[1]
    assert cli.main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    for line in notes:   # the report's cautions repeat them
        assert line.removeprefix("diffnas: ").replace("'", "&#x27;") in page


def test_bars_redraw_every_half_second_on_a_terminal_and_every_30_s_into_a_log(monkeypatch):
    """Into a file (`2> log`) every redraw stays as a line: 0.5 s apart, an hour's run wrote 7,200."""
    import io
    import sys

    from diffnas.notices import redraw_interval
    from diffnas.runlog import progress_bar

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    class Closed(io.StringIO):
        def isatty(self):
            raise ValueError("I/O operation on closed file")

    for stream, seconds in ((Terminal(), 0.5), (io.StringIO(), 30.0), (Closed(), 30.0)):
        monkeypatch.setattr(sys, "stderr", stream)
        assert redraw_interval() == seconds
        bar = progress_bar(range(3), 3, "x")
        assert bar.mininterval == seconds and bar.maxinterval == max(10.0, seconds)   # tqdm's monitor redraws too
        list(bar)
        bar.close()
        # a bar that ends before its first redraw leaves nothing in a log (it left a "0%" line and a clearing
        # run of spaces); on a terminal it is drawn at once and cleared
        assert (stream.getvalue().count("0/3") == 1) == (seconds == 0.5), repr(stream.getvalue())


def test_bars_write_a_line_per_redraw_into_a_log(monkeypatch):
    """tqdm redraws with a carriage return and clears with spaces: a log file kept one line of ^M-separated
    redraws (`less` shows them so) and runs of spaces."""
    import io
    import sys

    from diffnas import notices
    from diffnas.runlog import progress_bar

    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    monkeypatch.setattr(notices, "redraw_interval", lambda: 0.0)   # every step redrawn
    bar = progress_bar(range(3), 3, "search epoch 1/2")
    for _ in bar:
        pass
    bar.close()
    notices.say("diffnas: search epoch 1/2  train loss 1.000", above_bars=True)
    text = log.getvalue()
    assert "\r" not in text and text.endswith("\n"), repr(text)
    lines = text.splitlines()
    assert [line.split("|")[-1].split()[0] for line in lines[:-1]] == ["0/3", "1/3", "2/3", "3/3"], lines
    assert all(line.startswith("search epoch 1/2:") and line == line.strip() for line in lines[:-1]), lines
    assert lines[-1] == "diffnas: search epoch 1/2  train loss 1.000"
    # a bar inside a caller's own outer bar: tqdm moves the cursor between their lines, a log keeps no such moves
    log.truncate(0)
    log.seek(0)
    outer = progress_bar(range(2), 2, "outer")
    for _ in outer:
        for _ in progress_bar(range(2), 2, "inner"):
            pass
    outer.close()
    text = log.getvalue()
    assert "\x1b" not in text and "\r" not in text and "inner:" in text and "outer:" in text, repr(text)


def test_no_flip_reaches_the_search_the_training_and_both_stages_of_a_pipeline(fake_search, fake_train,
                                                                                fake_pipeline, tmp_path, capsys):
    """Images that mirror into another class (text, arrows) in one's own image folder: only Python's
    register_tensors(flip=False) could turn the flips off."""
    from diffnas.config import search_config, train_config
    from diffnas.data import load_dataset
    from diffnas.data.tensors import register_tensors
    from diffnas.search import augment_for as search_augment
    from diffnas.train import augment_for as train_augment

    assert cli.main(["search", "--dataset", "synthetic", "--no-flip"]) == 0
    assert ("diffnas: warning: --no-flip has no effect with --dataset synthetic (its images are never flipped)"
            in capsys.readouterr().err)
    assert cli.main(["train", "--dataset", "synthetic", "--no-flip"]) == 0
    cli.main(["run", "--dataset", "synthetic", "--no-flip"])
    (search_cfg, train_cfg), = fake_pipeline
    assert [fake_search[1][0].flip, fake_train[1][0].flip, search_cfg.flip, train_cfg.flip] == [False] * 4
    assert cli.main(["search", "--dataset", "synthetic"]) == 0 and fake_search[1][1].flip   # the default
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    register_tensors("mirrorable", (images, torch.tensor([0, 1, 0, 1])), (images, torch.tensor([0, 1, 0, 1])))
    ds = load_dataset("mirrorable")
    assert search_augment(ds).flip and not search_augment(ds, flip=False).flip
    assert train_augment(ds, train_config("cifar")).flip
    assert not train_augment(ds, train_config("cifar", flip=False)).flip
    assert not search_augment(load_dataset("digits"), flip=search_config("darts").flip).flip   # never, as before


def test_a_run_config_files_run_dir_names_the_pipelines_folder_but_a_run_folders_config_json_does_not(
        fake_pipeline, tmp_path, capsys, monkeypatch):
    """A hand-written `run_dir` went to the search's config and was put aside without a word; a
    pipeline's config.json given as --config holds its old search's folder, which is no new run's."""
    folders = []
    fake = pipeline_mod.run_pipeline
    monkeypatch.setattr(pipeline_mod, "run_pipeline", lambda s, t, run_dir=None, **kw: folders.append(run_dir)
                        or fake(s, t, run_dir, **kw))
    (tmp_path / "mine.toml").write_text(f'run_dir = "{tmp_path / "p"}"\nepochs = 1\n')
    cli.main(["run", "--dataset", "digits", "--config", str(tmp_path / "mine.toml")])
    assert fake_pipeline[-1][0].run_dir is None and folders == [str(tmp_path / "p")]
    old = {"command": "pipeline", "search": {"run_dir": str(tmp_path / "old" / "search"), "epochs": 1}, "train": {}}
    (tmp_path / "config.json").write_text(json.dumps(old))
    cli.main(["run", "--dataset", "digits", "--config", str(tmp_path / "config.json")])
    assert fake_pipeline[-1][0].run_dir is None and folders[-1] is None
    capsys.readouterr()


def test_a_dry_run_says_which_config_file_values_it_replaces(fake_search, fake_train, fake_pipeline, tmp_path, capsys):
    """--dry-run put its tiny sizes over a --config file's without a word: a file's batch of 1000 passed
    its check, where the typed flag's was refused."""
    (tmp_path / "c.json").write_text('{"layers": 4, "batch_size": 16, "channels": 4}')
    assert cli.main(["search", "--dry-run", "--layers", "5", "--config", str(tmp_path / "c.json")]) == 0
    assert ("diffnas: note: --dry-run replaces the config file's batch_size 16 with its tiny sizes (a flag typed "
            "keeps its value)") in capsys.readouterr().err   # layers typed, channels the same: not named
    _, seen = fake_search
    assert (seen[-1].layers, seen[-1].batch_size) == (5, 8)
    assert cli.main(["train", "--dry-run", "--config", str(tmp_path / "c.json")]) == 0
    assert "--dry-run replaces the config file's layers 4, batch_size 16 with" in capsys.readouterr().err
    (tmp_path / "r.json").write_text('{"epochs": 3, "train": {"batch_size": 1000}}')
    cli.main(["run", "--dry-run", "--config", str(tmp_path / "r.json")])
    assert "--dry-run replaces the config file's epochs 3 with" in (err := capsys.readouterr().err)
    assert "--dry-run replaces the config file's train batch_size 1000 with" in err
    assert cli.main(["search", "--dry-run"]) == 0 and "replaces" not in capsys.readouterr().err
