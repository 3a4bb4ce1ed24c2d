"""Bad input found in review, each a clear one-line error: op sets, devices this machine lacks,
genotype paths and names, choice values with a "did you mean", and Ctrl-C while the CLI starts."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import torch
from cli_helpers import fails

from diffnas import cli
from diffnas import config as config_lib
from diffnas import genotype as G
from diffnas.errors import ConfigError, suggest
from diffnas.device import resolve_device


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Default run folders (runs/...) land in the test's folder, never in the repository."""
    monkeypatch.chdir(tmp_path)


# ---------------------------------------------------------------------------------------------
# the op set

@pytest.mark.parametrize("ops,message", [
    ("none", "ops: needs at least one op besides 'none'"),
    ("", "--ops: an empty value"),
    (",", "ops: the list is empty"),
    ("skip_connect,none,skip_connect", "ops: an op is listed twice (skip_connect)"),
    ("none,sep_conv_9x9", "ops: unknown op 'sep_conv_9x9'"),
])
def test_op_set_is_checked_before_the_run_starts(capsys, ops, message):
    fails(capsys, ["search", "--dataset", "synthetic", "--ops", ops], message)
    assert not Path("runs").exists()


def test_op_set_in_a_config_file(tmp_path, capsys):
    (tmp_path / "c.json").write_text('{"ops": []}')
    fails(capsys, ["search", "--config", str(tmp_path / "c.json")], "ops: the list is empty")
    with pytest.raises(ConfigError, match="ops: needs at least one op besides 'none'"):
        config_lib.search_config(ops=("none",))


def test_the_library_api_says_an_unknown_name_in_one_line():
    """From Python (the README's `Supernet`, `arch.build`, `build_network`): an op, parametrisation or
    setting misspelt was a bare KeyError deep inside (a Supernet's op: in its first cell's first edge),
    an empty op set silently meant every op."""
    from diffnas import arch, tuning
    from diffnas.network import build_network
    from diffnas.ops import PRIMITIVES
    from diffnas.supernet import Supernet

    with pytest.raises(ConfigError, match=r"ops: unknown op 'sepconv_3x3' \(did you mean 'sep_conv_3x3'\?\)"):
        Supernet(channels=4, layers=3, nodes=2, ops=("skip_connect", "sepconv_3x3"))
    with pytest.raises(ConfigError, match=r"ops: the list is empty; name the candidate ops \(default: \('none', "):
        Supernet(channels=4, layers=3, nodes=2, ops=())   # from Python: no "comma-separated"
    with pytest.raises(ConfigError, match="ops: an op is listed twice"):
        Supernet(channels=4, layers=3, nodes=2, ops=("skip_connect", "skip_connect"))
    assert Supernet(channels=4, layers=3, nodes=2).ops == PRIMITIVES   # the default: DARTS's eight
    with pytest.raises(ConfigError, match=r"arch: 'softmaxx' is not one of .*\(did you mean 'softmax'\?\)"):
        arch.build("softmaxx", 3, 2, ("skip_connect", "max_pool_3x3"), (1, 2))
    with pytest.raises(ConfigError, match=r"setting: 'imagnet' is not one of .*\(did you mean 'imagenet'\?\)"):
        build_network("DARTS_V2", channels=4, layers=3, setting="imagnet")
    with pytest.raises(ConfigError, match=r"memory_format: 'channel_last' .*\(did you mean 'channels_last'\?\)"):
        tuning.memory_format("channel_last", torch.device("cpu"))


# ---------------------------------------------------------------------------------------------
# devices

def no_mps(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_device_this_machine_lacks_is_one_line(capsys, monkeypatch):
    no_mps(monkeypatch)
    fails(capsys, ["search", "--dataset", "synthetic", "--device", "mps"],
          "device: 'mps' asked for, but this machine has no MPS device (Apple GPU)", "available here: auto, cpu")
    assert not Path("runs").exists()


@pytest.mark.parametrize("name,message", [
    ("tpu", "device: 'tpu' is not a device (available here: auto, cpu"),
    ("meta", "device: 'meta' is not a device diffnas can run on"),
    ("cuda:x", "device: 'cuda:x' is not a device"),
    ("mps", "device: 'mps' asked for, but this machine has no MPS device"),
    ("mps:0", "device: 'mps:0' asked for, but this machine has no MPS device"),
    # torch takes cpu:1 and runs on the one CPU device: it was taken without a word (API walk)
    ("cpu:1", "device: 'cpu:1': the CPU is one device, 'cpu' (available here: auto, cpu"),
])
def test_unknown_or_unavailable_device(monkeypatch, name, message):
    no_mps(monkeypatch)
    with pytest.raises(ConfigError) as info:
        resolve_device(name)
    assert message in str(info.value)


def test_cuda_index_out_of_range(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    no_mps(monkeypatch)
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    assert resolve_device("cuda") == torch.device("cuda")
    with pytest.raises(ConfigError) as info:
        resolve_device("cuda:2")
    assert str(info.value) == ("device: 'cuda:2' asked for, but this machine has 2 cuda devices, numbered from 0 "
                               "(available here: auto, cpu, cuda, cuda:0, cuda:1)")


def test_available_mps(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("mps") == torch.device("mps")
    with pytest.raises(ConfigError, match="has 1 mps device, numbered from 0"):
        resolve_device("mps:1")


# ---------------------------------------------------------------------------------------------
# genotype specs: paths, pipeline folders, names

def test_genotype_path_that_names_nothing(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    fails(capsys, ["params", "--genotype", "runs/search-1/genotype.json"], "runs/search-1/genotype.json: no such file")
    fails(capsys, ["params", "--genotype", "g.json"], "diffnas: error: g.json: no such file\n")
    fails(capsys, ["train", "--genotype", "empty", "--dataset", "synthetic"],
          "empty: a folder without genotype.json (a search run folder has one; a pipeline folder RUN has "
          "RUN/search/genotype.json)")
    assert not Path("runs").exists()


def test_pipeline_folder_is_a_genotype_spec(tmp_path, capsys):
    (tmp_path / "run" / "search").mkdir(parents=True)
    G.save(G.KNOWN["PDARTS"], tmp_path / "run" / "search" / "genotype.json")
    assert cli.main(["params", "--genotype", str(tmp_path / "run")]) == 0
    by_folder = capsys.readouterr().out
    assert cli.main(["params", "--genotype", "PDARTS"]) == 0
    assert capsys.readouterr().out == by_folder


@pytest.mark.parametrize("name", ["darts_v2", "DARTS-V2", "dartsv2"])
def test_a_genotype_name_in_another_case_is_the_name(capsys, name):
    assert cli.main(["params", "--genotype", "DARTS_V2"]) == 0
    published = capsys.readouterr().out
    assert cli.main(["params", "--genotype", name]) == 0
    assert capsys.readouterr().out == published


def test_genotype_name_typo(capsys):
    fails(capsys, ["params", "--genotype", "darts_v3"], "genotype 'darts_v3' is neither a known name "
                                                        "(did you mean 'DARTS_V2'?)")


# ---------------------------------------------------------------------------------------------
# choice-valued fields: every one suggests what was meant

@pytest.mark.parametrize("argv,message", [
    (["search", "--preset", "DARTS"], "preset: 'DARTS' is not one of darts, darts-1st, pc-darts, fair-darts, "
                                      "global, dnas (did you mean 'darts'?)"),
    (["search", "--preset", "PC_DARTS"], "(did you mean 'pc-darts'?)"),
    (["search", "--dataset", "cifar"], "dataset: 'cifar' is not one of digits, cifar10, cifar100, "),
    (["search", "--dataset", "cifar"], "(did you mean 'cifar10' or 'cifar100'?)"),
    (["train", "--dataset", "Fashion_MNIST"], "(did you mean 'fashion-mnist'?)"),
    (["search", "--order", "First"], "(did you mean 'first'?)"),
    (["search", "--precision", "BF16"], "(did you mean 'bf16'?)"),
])
def test_choice_typos(capsys, argv, message):
    fails(capsys, argv, message)
    assert not Path("runs").exists()


def test_setting_typo_on_the_command_line(capsys):
    fails(capsys, ["train", "--setting", "ImageNet"], "setting: 'ImageNet' is not one of cifar, tiny-imagenet, "
                                                      "imagenet (did you mean 'imagenet'?)")


def choice_fields():
    for cls in (config_lib.SearchConfig, config_lib.TrainConfig):
        for f in dataclasses.fields(cls):
            if "choices" in f.metadata:
                choices = f.metadata["choices"]
                for choice in choices() if callable(choices) else choices:
                    yield pytest.param(cls, f.name, choice, id=f"{cls.__name__}.{f.name}={choice}")


@pytest.mark.parametrize("cls,name,choice", list(choice_fields()))
def test_every_choice_field_suggests_across_case_and_punctuation(cls, name, choice):
    typo = choice.upper().replace("-", "_")
    if typo == choice:
        typo = choice.lower()
    with pytest.raises(ConfigError) as info:
        config_lib.from_dict(cls, {name: typo})
    assert str(info.value).startswith(f"{name}: {typo!r} is not one of ")
    assert str(info.value).endswith(f"(did you mean {choice!r}?)")


@pytest.mark.parametrize("value,choices,hint", [
    ("DARTS_V3", list(G.KNOWN), " (did you mean 'DARTS_V2'?)"),
    ("pc_darts", list(G.KNOWN), " (did you mean 'PC_DARTS_CIFAR' or 'PC_DARTS_IMAGENET'?)"),
    ("w_lrr", ["w_lr", "w_lr_min", "alpha_lr"], " (did you mean 'w_lr'?)"),
    ("zzz", ["darts", "pc-darts"], ""),
])
def test_suggest(value, choices, hint):
    assert suggest(value, choices) == hint


# ---------------------------------------------------------------------------------------------
# Ctrl-C while the CLI starts (importing the subcommands, torch, matplotlib)

def interrupted(*args, **kwargs):
    raise KeyboardInterrupt


def main_interrupted(monkeypatch, argv: list[str]) -> int:
    """cli.main with Ctrl-C pressed while it builds the parser (imports every subcommand)."""
    monkeypatch.setattr(cli, "build_parser", interrupted)
    try:
        return cli.main(argv)
    except KeyboardInterrupt:  # a failure of this test, not an interrupted test session
        pytest.fail("KeyboardInterrupt escaped cli.main")


def test_ctrl_c_while_starting_is_one_line_and_exit_130(capsys, monkeypatch):
    assert main_interrupted(monkeypatch, ["search", "--dry-run"]) == 130
    assert capsys.readouterr().err == "diffnas: interrupted\n"


def test_ctrl_c_with_debug_shows_the_traceback(capsys, monkeypatch):
    assert main_interrupted(monkeypatch, ["search", "--debug"]) == 130
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "KeyboardInterrupt" in err
    assert err.splitlines()[-1] == "diffnas: interrupted"


def test_config_paths_from_python_and_yaml_merge_keys(tmp_path):
    from diffnas.config import search_config
    from diffnas.config_file import read_file
    # a pathlib.Path from Python code is a folder name like any other
    assert search_config("darts", data_dir=tmp_path, run_dir=tmp_path / "r").data_dir == str(tmp_path)
    # YAML merge keys (<<: *anchor) may be overridden by the mapping's own keys; a key written twice may not
    (tmp_path / "c.yaml").write_text("base: &b {epochs: 3, layers: 5}\nsearch:\n  <<: *b\n  epochs: 7\n")
    assert read_file(tmp_path / "c.yaml")["search"] == {"epochs": 7, "layers": 5}


@pytest.mark.parametrize("name, text", [("c.toml", "epochs = 3\nlayers = 5\n"), ("c.json", '{"epochs": 3, "layers": 5}'),
                                        ("c.yaml", "epochs: 3\nlayers: 5\n")])
def test_config_files_with_a_byte_order_mark_or_not_utf8(tmp_path, name, text):
    """Windows editors start UTF-8 with a BOM: TOML said 'Invalid statement (at line 1, column 1)' and JSON
    'decode using utf-8-sig'; a binary file was a UnicodeDecodeError traceback."""
    from diffnas.config_file import read_file

    (tmp_path / name).write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert read_file(tmp_path / name) == {"epochs": 3, "layers": 5}
    (tmp_path / name).write_bytes(b"\x80\x81" + text.encode())
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(tmp_path / name))}: not a text file in UTF-8 \(byte 0"):
        read_file(tmp_path / name)


def test_numbers_from_numpy_or_whole_floats_are_config_values():
    """A sweep's np.int64(3) or 3.0 for an int field was 'expected int'; a fraction still is."""
    import numpy as np

    cfg = config_lib.search_config(epochs=np.int64(3), layers=5.0, w_lr=np.float32(0.5), alpha_lr=1, plots=np.False_)
    assert (cfg.epochs, cfg.layers, cfg.w_lr, cfg.alpha_lr, cfg.plots) == (3, 5, 0.5, 1.0, False)
    assert type(cfg.epochs) is int and type(cfg.layers) is int and type(cfg.w_lr) is float and type(cfg.plots) is bool
    # its np.str_ for a named choice was 'expected str, got np.str_('synthetic')'
    named = config_lib.search_config(dataset=np.str_("synthetic"), order=np.array(["first"])[0])
    assert (named.dataset, named.order) == ("synthetic", "first") and type(named.dataset) is str
    for bad, message in ((dict(epochs=3.5), "epochs: expected int, got 3.5"),
                         (dict(epochs=np.bool_(True)), "epochs: expected int"),
                         (dict(epochs=True), "epochs: expected int, got True"),
                         (dict(w_lr=np.float64("nan")), "w_lr: must be a finite number")):
        with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
            config_lib.search_config(**bad)


def test_a_python_caller_is_told_how_to_resume_in_python(tmp_path):
    """train()/search() on a folder holding a run said `diffnas train --resume ...`."""
    from diffnas.loop import new_run_dir

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"holds a run already; continue it with `train\(cfg, resume='.*run'\)` "
                                          r"or choose another run_dir"):
        new_run_dir(tmp_path / "run", "train", resumed=False)


@pytest.mark.parametrize("made_by", ["pipeline", "search"])
def test_a_python_pipeline_into_a_run_folder_is_told_how_to_resume_in_python(tmp_path, made_by):
    """run_pipeline() on a folder holding a run said `diffnas run --resume ...`, the command line's advice;
    a search's folder is resumed by search(), as a new search or training there is told."""
    from diffnas.pipeline import refuse_existing

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"command": made_by}))
    (run / "checkpoint.pt").write_bytes(b"")   # an epoch saved (a pipeline's own folder has none anyway)
    meant = ("run_pipeline(search_cfg, train_cfg, '.*run', resume=True)" if made_by == "pipeline"
             else "search(cfg, resume='.*run')")
    with pytest.raises(ConfigError, match=r"holds a run already; continue it with `" + meant.replace("(", r"\(")
                       .replace(")", r"\)") + "` or choose another run_dir"):
        refuse_existing(run)


def test_a_search_config_built_by_hand_with_a_wrong_type_is_a_config_error():
    """search(SearchConfig(epochs="2")) was a TypeError from the check of values that change nothing;
    train's was a ConfigError already. A wrong type or range is now refused where the config is made
    (it was accepted until the search started); search() still refuses one made past the check."""
    import dataclasses

    from diffnas.config import SearchConfig, TrainConfig
    from diffnas.errors import ConfigError
    from diffnas.search import search

    with pytest.raises(ConfigError, match="^epochs: expected int, got '2'$"):
        SearchConfig(epochs="2", dataset="synthetic")
    with pytest.raises(ConfigError, match="^layers: must be >= 3, got 2$"):
        dataclasses.replace(SearchConfig(), layers=2)
    with pytest.raises(ConfigError, match="^ops: an op is listed twice \\(skip_connect\\)$"):
        SearchConfig(ops=("skip_connect", "skip_connect"))
    with pytest.raises(ConfigError, match="^cutout: must be >= 0, got -1$"):
        TrainConfig(cutout=-1)
    assert SearchConfig(layers=3.0, w_lr=1).layers == 3 and isinstance(SearchConfig(w_lr=1).w_lr, float)
    cfg = SearchConfig(dataset="synthetic")
    object.__setattr__(cfg, "epochs", "2")   # past the check: the search's own check still holds
    with pytest.raises(ConfigError, match="^epochs: expected int, got '2'$"):
        search(cfg)


def test_a_python_callers_data_dir_warning_names_datasets_as_python_values():
    """From Python the hint read "name the dataset its files hold: dataset cifar10 | cifar100 | ...",
    half a flag."""
    from diffnas.config import ineffective, search_config

    [line] = ineffective(search_config(dataset="digits", data_dir="/X"))
    assert "; name the dataset its files hold: dataset='cifar10' | 'cifar100' | " in line


def test_the_packages_names_for_type_checkers_are_its_exports():
    """`from diffnas import search` was Any to a type checker (PEP 562's __getattr__ only): the
    TYPE_CHECKING imports give each export its type, and must name each export from its module."""
    import ast
    from pathlib import Path

    import diffnas

    tree = ast.parse(Path(diffnas.__file__).read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    seen = {(alias.asname or alias.name): (node.module or alias.name) for node in block.body
            for alias in node.names}
    assert seen == diffnas._EXPORTS and diffnas.__all__ == sorted(diffnas._EXPORTS)


def test_help_of_the_configs_and_results_says_what_each_field_means():
    """help(SearchConfig) showed the generated signature only: each field's meaning and unit were
    comments in the source, which help() cannot show."""
    import dataclasses
    import pydoc

    from diffnas.config import SearchConfig, TrainConfig
    from diffnas.search import SearchResult
    from diffnas.train import TrainResult

    for cls in (SearchConfig, TrainConfig, SearchResult, TrainResult):
        lines = cls.__doc__.splitlines()
        listed = [line.split()[0].rstrip(":") for line in lines[lines.index("Fields (default: meaning):") + 1:]
                  if line.startswith("    ")]
        assert listed == [f.name for f in dataclasses.fields(cls)], cls
    text = pydoc.render_doc(SearchConfig, renderer=pydoc.plaintext)
    assert "fd_eps = 0.01: finite-difference step, divided by ||v||" in text
    assert "  optimisation:" in text and "search_config(preset, **overrides)" in text
    assert "    drop_path_per = 'op': what a drop-path draw zeroes: each non-identity op's output" in TrainConfig.__doc__
    for cls in (SearchConfig, TrainConfig, SearchResult, TrainResult):   # every field says what it is
        fields_part = cls.__doc__.split("Fields (default: meaning):")[1]
        assert all(": " in line for line in fields_part.splitlines() if line.startswith("    ")), cls
    # a section heading stays one (a field without its own comment took the heading above it as its meaning)
    assert "  architecture parametrisation:\n    arch = 'softmax': how psi is made of alpha" in SearchConfig.__doc__


def test_field_docs_read_comments_not_docstring_lines():
    """A docstring line of the form `name: ...` was read as a field's comment."""
    from dataclasses import dataclass

    from diffnas.field_docs import with_field_docs

    @with_field_docs
    @dataclass
    class Example:
        """An example.

        size: not a field's comment, a docstring's line
        """

        # a section
        size: int = 3   # pixels
        # the name, on the line above
        name: str = "x"

    assert Example.__doc__.splitlines()[-4:] == ["Fields (default: meaning):", "  a section:",
                                                 "    size = 3: pixels", "    name = 'x': the name, on the line above"]


def test_an_empty_string_is_refused_from_python_and_config_files_as_the_command_line_refuses_it(tmp_path, capsys):
    """`--run-dir ''` was refused, but run_dir="" from Python or a file went to the default folder,
    data_dir="" read the current folder, and resume="" tried the current folder."""
    from diffnas.config import SearchConfig, search_config, train_config
    from diffnas.pipeline import run_pipeline
    from diffnas.search import search

    for field in ("run_dir", "data_dir", "device"):
        with pytest.raises(ConfigError, match=f"^{field}: an empty value; leave it out for its default"):
            search_config(**{field: ""})
    with pytest.raises(ConfigError, match="^genotype: an empty value"):
        train_config(genotype="  ")
    (tmp_path / "c.json").write_text('{"run_dir": ""}')
    assert fails_config(capsys, tmp_path / "c.json").endswith(
        "run_dir: an empty value; leave it out for its default (a folder named '' would be the current one)")
    with pytest.raises(ConfigError, match=r"^resume: an empty value \('' where the run's folder belongs\)$"):
        search(SearchConfig(dataset="synthetic"), resume="")
    with pytest.raises(ConfigError, match="^run_dir: an empty value"):
        run_pipeline(search_config("darts-1st"), train_config(), run_dir="")
    # the search's own folder is the pipeline's to set: it was put aside without a word
    with pytest.raises(ConfigError, match=r"^search_cfg.run_dir: a pipeline sets it \(RUN/search\); name the "
                                          r"pipeline's folder with run_pipeline\(\.\.\., run_dir='/x/p'\)$"):
        run_pipeline(search_config("darts-1st", run_dir="/x/p"), train_config())


def fails_config(capsys: pytest.CaptureFixture[str], path: Path) -> str:
    """The one error line of `diffnas search --config PATH` (cli_helpers.fails: exit 2, no traceback)."""
    return fails(capsys, ["search", "--dataset", "synthetic", "--config", str(path)]).rstrip("\n")


def test_sizes_past_any_network_are_refused_before_building_not_killed_for_memory(tmp_path):
    """layers=1e12 built cells for hours with a progress bar; nodes=100000 was killed for memory
    without a word; a random-resized crop of 2000 from 16x16 images was killed after the search."""
    from diffnas.config import search_config, train_config
    from diffnas.data import DATASETS, register_tensors
    from diffnas.supernet import Supernet
    from diffnas.train import train

    with pytest.raises(ConfigError, match="^layers: must be <= 1000, got 1000000000000$"):
        search_config(layers=10 ** 12)
    with pytest.raises(ConfigError, match="^nodes: must be <= 32, got 100000$"):
        search_config(nodes=100_000)
    with pytest.raises(ConfigError, match="^layers: must be <= 1000"):
        train_config(layers=10 ** 8)
    with pytest.raises(ConfigError, match=r"^layers, nodes, ops: a supernet of 1000 cells x 230 edges x 8 ops = "
                                          r"1,840,000 candidate ops is beyond 100,000 \(DARTS's: 8 x 14 x 8 = 896\)"):
        search_config(layers=1000, nodes=20)
    with pytest.raises(ConfigError, match="^layers, nodes, ops: a supernet of"):
        Supernet(4, 10, 1000, 20)
    search_config(layers=20, nodes=7, ops=("skip_connect", "sep_conv_3x3"))   # a large DNAS search: taken
    images = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    register_tensors("small16", (images, torch.arange(8) % 2), (images, torch.arange(8) % 2))
    try:
        with pytest.raises(ConfigError, match=r"^random_resized_crop: 2000 would upsample 16x16 images more than 8 "
                                              r"times a side; pass random_resized_crop=128 or less"):
            train(train_config(dataset="small16", random_resized_crop=2000, layers=3, channels=4, batch_size=4,
                               plots=False, run_dir=str(tmp_path / "r")))
        assert not (tmp_path / "r").exists()
    finally:
        del DATASETS["small16"]


def test_an_empty_config_file_is_refused_alike_in_every_format_and_yamls_1e_3_is_explained(tmp_path, capsys):
    """A 0-byte TOML file was no values, a JSON one "malformed", a YAML one "must hold a mapping"; YAML
    1.1 reads `w_lr: 1e-3` as the text '1e-3', which was "expected float, got '1e-3'"."""
    for suffix in (".json", ".toml", ".yaml"):
        path = tmp_path / f"empty{suffix}"
        path.write_text(" \n")
        assert fails_config(capsys, path) == (f"diffnas: error: {path}: an empty config file; write its values in "
                                              f"it, or leave --config out")
    (tmp_path / "lr.yaml").write_text("w_lr: 1e-3\n")
    assert fails_config(capsys, tmp_path / "lr.yaml").endswith("w_lr: expected float, got '1e-3' (YAML reads 1e-3 "
                                                               "as text; write 1.0e-3)")
    from diffnas.config import search_config

    with pytest.raises(ConfigError, match=r"^w_lr: expected float, got '1e-3'$"):   # no YAML here: no YAML advice
        search_config(w_lr="1e-3")
    (tmp_path / "ok.yaml").write_text("w_lr: 1.0e-3\nepochs: 1\n")
    from diffnas.config_file import read_file

    assert read_file(tmp_path / "ok.yaml")["w_lr"] == 1e-3   # the form the hint gives is a float


def test_a_config_files_op_list_is_refused_naming_the_file(tmp_path, capsys):
    """`"ops": []` or `["none"]` in a file was the one key error without the file's name."""
    for ops, said in (([], "ops: the list is empty"), (["none"], "ops: needs at least one op besides 'none'")):
        path = tmp_path / "c.json"
        path.write_text(json.dumps({"ops": ops}))
        assert fails_config(capsys, path).startswith(f"diffnas: error: {path}: {said}")
