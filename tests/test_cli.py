import argparse
import json
from pathlib import Path

import pytest

from diffnas.cli import main
from diffnas.config import PRESETS
from diffnas.supernet import edge_list

TINY_SEARCH = ["--layers", "3", "--channels", "8", "--nodes", "2", "--epochs", "1", "--max-steps", "1",
               "--batch-size", "8", "--no-plots", "--warmup-epochs", "0"]
TINY_TRAIN = ["--train-epochs", "1", "--train-layers", "3", "--train-channels", "4", "--train-max-steps", "1",
              "--train-batch-size", "8"]


def test_search_dry_run_writes_run_folder_and_figures(tmp_path, capsys):
    assert main(["search", "--dry-run", "--run-dir", str(tmp_path / "r")]) == 0
    out, err = capsys.readouterr()
    assert "genotype: Genotype(" in out
    # each epoch on the terminal, and the result: 2 validation batches of 8 of the 32 images
    row = json.loads((tmp_path / "r" / "metrics.jsonl").read_text())
    assert (f"search epoch 1/1  train loss {row['train_loss']:.3f} acc {100 * row['train_acc']:.1f}%  val loss "
            f"{row['val_loss']:.3f} acc {100 * row['val_acc']:.1f}%  lr {row['w_lr']:.4g}  ") in err
    assert (f"validation accuracy {100 * row['val_acc']:.2f}%, validation loss {row['val_loss']:.4f} "
            "(on 16 of 32 validation images)\n") in out
    for name in ("config.json", "metrics.jsonl", "alphas.pt", "genotype.json", "checkpoint.pt"):
        assert (tmp_path / "r" / name).is_file()
    assert list((tmp_path / "r" / "figures").glob("*.png"))
    # seconds of drawing after the last epoch line: said, with how to skip it
    assert f"diffnas: drawing the figures in {tmp_path / 'r' / 'figures'} (--no-plots skips them)" in err


def test_run_pipeline_on_embedded_digits(tmp_path, capsys):
    assert main(["run", "--preset", "darts-1st", "--dataset", "digits", *TINY_SEARCH, *TINY_TRAIN,
                 "--run-dir", str(tmp_path / "p")]) == 0
    out, err = capsys.readouterr()
    assert "test error" in out and "CPU-hours" in out
    assert "(on 8 of 300 test images)" in out   # --train-max-steps 1 of batch 8: not the whole test split
    assert "search epoch 1/1  train loss " in err and "train epoch 1/1  train loss " in err and " test loss " in err
    summary = json.loads((tmp_path / "p" / "summary.json").read_text())
    assert 0 <= summary["test_error"] <= 1 and summary["params_m"] > 0
    assert (tmp_path / "p" / "search" / "genotype.json").is_file()
    assert (tmp_path / "p" / "train" / "result.json").is_file()


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_searches_and_its_genotype_trains(tmp_path, preset):
    rc = main(["run", "--preset", preset, "--dataset", "synthetic", *TINY_SEARCH, *TINY_TRAIN,
               "--run-dir", str(tmp_path / preset)])
    assert rc == 0
    g = json.loads((tmp_path / preset / "search" / "genotype.json").read_text())
    assert ("cells" in g) == (preset in ("global", "dnas"))


@pytest.mark.parametrize("preset", list(PRESETS))
def test_params_reports_arch_params_for_every_preset(preset, capsys):
    assert main(["params", "--preset", preset, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    L, E, O = 8, len(edge_list(4)), 8   # FairDARTS searches its 7 ops, without `none`
    expected = {"darts": 2 * E * O, "darts-1st": 2 * E * O, "fair-darts": 2 * E * 7, "pc-darts": 2 * E * O + 2 * E,
                "global": L * E * O, "dnas": L * E + L * 7 + E * 7}[preset]
    assert d["arch_params"] == expected
    assert d["weights"] > 0


def test_bad_values_exit_2_with_one_line(capsys):
    assert main(["search", "--nodes", "0", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nodes" in err[0]


# the original search scripts' values, read from their code:
# quark0/darts cnn/train_search.py; yuhuixu1993/PC-DARTS train_search.py;
# xiaomi-automl/FairDARTS fairdarts/train_search.py + architect.py + genotypes.py (PRIMITIVES)
ORIGINAL_SEARCH = {
    "darts": dict(batch_size=64, w_lr=0.025, w_lr_min=0.001, alpha_lr=3e-4, alpha_beta1=0.5, alpha_wd=1e-3,
                  order="second", partial_channels=1),
    "pc-darts": dict(batch_size=256, w_lr=0.1, w_lr_min=0.001, alpha_lr=6e-4, alpha_beta1=0.5, alpha_wd=1e-3,
                     partial_channels=4, warmup_epochs=15, order="first"),
    "fair-darts": dict(batch_size=128, w_lr=0.005, w_lr_min=0.001, alpha_lr=3e-3, alpha_beta1=0.9, alpha_wd=1e-3,
                       zero_one_weight=10.0, threshold=0.85, order="first",
                       ops=("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
                            "dil_conv_3x3", "dil_conv_5x5")),
}


@pytest.mark.parametrize("preset", list(ORIGINAL_SEARCH))
def test_presets_carry_the_original_search_scripts_values(preset):
    from diffnas.config import search_config

    cfg = search_config(preset)
    assert {k: getattr(cfg, k) for k in ORIGINAL_SEARCH[preset]} == ORIGINAL_SEARCH[preset]


@pytest.mark.parametrize("buffered", [True, False])
def test_output_into_a_closed_pipe_ends_quietly_with_sigpipe_status(tmp_path, buffered):
    """`diffnas params --json | head -c0`: the reader is gone before the write; no traceback, no
    "error" line, and the shell's status for a writer killed by SIGPIPE (128 + 13), whether Python
    buffers stdout (the default for a pipe: the error comes at the flush) or not."""
    import os
    import signal
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    # this checkout's diffnas, whatever an installed one points to
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent.parent), os.environ.get("PYTHONPATH", "")])
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    p = subprocess.Popen([sys.executable, "-m", "diffnas", "params", "--genotype", "DARTS_V2", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path, env=env)
    p.stdout.close()   # the reader stops before the command writes (it is still importing torch)
    err = p.stderr.read()
    assert p.wait(timeout=120) == 128 + signal.SIGPIPE
    assert err == b""


def test_a_broken_pipe_other_than_stdout_is_an_error(monkeypatch, capsys):
    import argparse

    def broken(args):
        raise BrokenPipeError(32, "Broken pipe")   # e.g. a socket or a child process's pipe

    real = argparse.ArgumentParser.parse_known_args

    def with_func(self, *a, **k):
        args, extra = real(self, *a, **k)
        args.func = broken
        return args, extra

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", with_func)
    assert main(["params"]) == 2
    assert capsys.readouterr().err == "diffnas: error: [Errno 32] Broken pipe\n"


def test_version_names_diffnas_torch_and_python(capsys):
    """A bug report needs the versions; `diffnas --version` was an error."""
    import platform

    import torch

    import diffnas

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == (f"diffnas {diffnas.__version__} (torch {torch.__version__}, "
                                       f"Python {platform.python_version()})\n")


def test_every_flag_has_help_and_the_search_defaults_are_the_presets(capsys):
    """--w-lr, --alpha-lr, --seed, --run-dir ... had no help: a user could not see their defaults."""
    import argparse

    from diffnas.cli import build_parser
    from diffnas.config import SearchConfig, search_config

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in sub.choices.items():
        assert [a.option_strings for a in parser._actions if not a.help] == [], name
    assert main(["search", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())   # argparse wraps the lines
    for field in ("w_lr", "alpha_lr", "warmup_epochs"):
        said = [f"default {getattr(SearchConfig, field):g}"] + [
            f"{p} {getattr(search_config(p), field):g}" for p in PRESETS
            if getattr(search_config(p), field) != getattr(SearchConfig, field)]
        assert "; ".join([said[0], ", ".join(said[1:])]) in text, field
    assert {search_config(p).order for p in PRESETS if p != "darts"} == {"first"}   # as --order's help says
    assert search_config("darts").order == "second" and "darts second, the others first" in text


def test_a_dry_run_of_a_preset_with_warm_up_checks_the_architecture_step_too(tmp_path, capsys):
    """`--dry-run --preset pc-darts` kept PC-DARTS's 15 warm-up epochs: its one epoch never stepped alpha
    and it warned that the genotype was read off the random initialisation."""
    assert main(["search", "--dry-run", "--preset", "pc-darts", "--no-plots", "--run-dir", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert "warm-up" not in err, err
    assert json.loads((tmp_path / "r" / "config.json").read_text())["warmup_epochs"] == 0


def test_the_quick_size_note_leaves_out_the_paper_values_already_typed():
    """`--layers 8 --channels 16` typed, the note still said 'pass --layers 8 --channels 16 ...'."""
    from diffnas.cli import build_parser
    from diffnas.cli.search import embedded_quick_overrides

    args = build_parser().parse_args(["search", "--layers", "8", "--channels", "16"])
    note = embedded_quick_overrides(args, {})
    assert note.endswith("quick search (epochs 5, batch_size 128); pass --epochs 50 --batch-size 64 for the "
                         "paper's size")
    args = build_parser().parse_args(["search", "--layers", "8"])   # the file's value counts as typed
    assert embedded_quick_overrides(args, {"channels": 16}).endswith("pass --epochs 50 --batch-size 64 for the "
                                                                      "paper's size")


def test_the_quick_training_note_leaves_out_the_paper_values_already_typed():
    from diffnas.cli.train import quick_note

    assert quick_note({"epochs": 10}, False, {"layers": 20, "channels": 36}).endswith(
        "quick training (epochs 10); pass --epochs 600 for the paper's size")
    assert quick_note({"epochs": 10}, False, {"layers": 5}).endswith(
        "pass --layers 20 --channels 36 --epochs 600 for the paper's size")


def test_train_help_names_each_settings_default_dataset(capsys):
    """It said digits was the default; `--setting imagenet` reads an image folder from ./data."""
    from diffnas.config import SETTING_DEFAULTS

    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for setting, values in SETTING_DEFAULTS.items():
        if "dataset" in values:
            assert f"--setting {setting}: {values['dataset']}" in text, setting


def test_train_help_gives_each_settings_own_values(capsys):
    """--wd said 'default 3e-4' and --cutout, --drop-path nothing of imagenet's (3e-5, 0, 0)."""
    import re

    from diffnas.config import train_config

    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    imagenet = train_config("imagenet")
    for flag, field in (("--wd WD", "wd"), ("--cutout [CUTOUT]", "cutout"), ("--drop-path P", "drop_path"),
                        ("--lr LR", "lr")):
        helped = re.split(r" --[a-z-]+ [A-Z\[]", text.split(f" {flag} ", 1)[1], maxsplit=1)[0]   # to the next flag
        said = dict(re.findall(r"(default|imagenet) ([0-9.e-]+)", helped))
        assert float(said["default"]) == getattr(train_config("cifar"), field), (flag, helped)
        assert float(said.get("imagenet", said["default"])) == getattr(imagenet, field), (flag, helped)


def test_a_runs_session_record_names_the_command_as_typed(tmp_path, monkeypatch):
    """sessions.jsonl records what ran the run; `python -m diffnas` is written as `diffnas`."""
    import sys

    argv = [str(Path(__import__("diffnas").__file__).with_name("__main__.py")), "search", "--dry-run",
            "--run-dir", str(tmp_path / "my run")]
    monkeypatch.setattr(sys, "argv", argv)
    assert main(argv[1:]) == 0
    (session,) = [json.loads(line) for line in (tmp_path / "my run" / "sessions.jsonl").read_text().splitlines()]
    assert session["command"] == f"diffnas search --dry-run --run-dir '{tmp_path / 'my run'}'"


def test_main_called_from_a_script_records_its_own_arguments_not_the_scripts(tmp_path, monkeypatch):
    """cli.main(argv) from a script recorded the script's sys.argv ("myscript.py --foo") as the command."""
    import sys

    monkeypatch.setattr(sys, "argv", ["myscript.py", "--foo"])
    assert main(["search", "--dry-run", "--run-dir", str(tmp_path / "r")]) == 0
    (session,) = [json.loads(line) for line in (tmp_path / "r" / "sessions.jsonl").read_text().splitlines()]
    assert session["command"] == f"diffnas search --dry-run --run-dir {tmp_path / 'r'}"
    # the library called from the script itself: the script is what ran it
    from diffnas import search, search_config

    search(search_config("darts-1st", dataset="synthetic", layers=3, channels=4, nodes=2, batch_size=8, epochs=1,
                         max_steps=1, plots=False, run_dir=str(tmp_path / "lib")))
    (session,) = [json.loads(line) for line in (tmp_path / "lib" / "sessions.jsonl").read_text().splitlines()]
    assert session["command"] == "myscript.py --foo"


def test_runs_quick_note_names_the_trainings_quick_sizes_too():
    """`diffnas run` on the embedded digits said only the search's quick sizes; its training runs at quick
    sizes too (8 cells, 16 channels, 20 epochs), which went unsaid."""
    from diffnas.cli.run import TRAIN_QUICK, quick_training_note

    args = argparse.Namespace(**TRAIN_QUICK)
    assert quick_training_note(dict(TRAIN_QUICK), args) == (
        "diffnas: and a quick training (train_epochs 20, train_layers 8, train_channels 16); pass --train-epochs "
        "600 --train-layers 20 --train-channels 36 for the paper's size")
    args.train_layers = 5   # a dnas search of 5 cells fixed the trained depth since
    assert quick_training_note(dict(TRAIN_QUICK), args) == (
        "diffnas: and a quick training (train_epochs 20, train_channels 16); pass --train-epochs 600 "
        "--train-channels 36 for the paper's size")
    assert quick_training_note({}, args) == ""
