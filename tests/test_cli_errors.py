"""Bad input, clear error: every user-facing input goes through `diffnas.cli.main`, and a bad one gives
exactly one stderr line "diffnas: error: ..." naming the field or file and what was expected, exit
code 2, no traceback (with --debug: the traceback too). Untrusted files run no code.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from cli_helpers import fails
from formats_fixtures import write_cifar10, write_image, write_image_folder, write_mnist
from hypothesis import given, settings, strategies as st

from diffnas import cli
from diffnas import genotype as G
from diffnas.errors import GenotypeError

TINY = ["--preset", "darts-1st", "--dataset", "synthetic", "--layers", "3", "--channels", "4", "--nodes", "2",
        "--batch-size", "8", "--epochs", "1", "--max-steps", "1", "--no-plots", "--deterministic"]


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Default run folders (runs/...) land in the test's folder, never in the repository."""
    monkeypatch.chdir(tmp_path)


class Evil:
    """Unpickling it would run a shell command that creates `marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


# ---------------------------------------------------------------------------------------------
# genotypes

GOOD = str(G.KNOWN["DARTS_V2"])
BAD_GENOTYPES = {
    "truncated text": (GOOD[:GOOD.index("), (") + 3], "genotype text: expected a value at character 37 "
                                                      "(text ends there)"),
    "truncated json": (G.to_json(G.KNOWN["DARTS_V2"])[:60], "genotype JSON is malformed"),
    "unknown op": (GOOD.replace("dil_conv_3x3", "dil_con_3x3"),
                   "normal: unknown op 'dil_con_3x3' (did you mean 'dil_conv_3x3'?)"),
    "node index": (GOOD.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 7)"),
                   "normal: node 5 reads state 7, but only states 0..4 come before it"),
    "concat index": (GOOD.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 9]"),
                     "normal: concat index 9 does not fit a cell of 4 nodes"),
    "odd genes": (GOOD.replace("('dil_conv_3x3', 2)]", "]"),
                  "normal: expected 2 (op, input) pairs per node, got 7 pairs"),
    "unknown field": (GOOD.replace("reduce_concat", "reduce_cat"), "genotype text: unknown field 'reduce_cat'"),
    "unknown name": ("DARTS_V3", "genotype 'DARTS_V3' is neither a known name (did you mean 'DARTS_V2'?)"),
    "random seed": ("random:\u00b2", "expected random:SEED, SEED a whole number >= 0 (digits only)"),
    "negative seed": ("random:-1", "expected random:SEED, SEED a whole number >= 0 (digits only)"),
    "huge range": (GOOD.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range(10**12)"),
                   "genotype text: expected ',' or ')'"),
    "long range": (GOOD.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range(999999999999)"),
                   "genotype text: range() is far longer than any cell"),
}


@pytest.mark.parametrize("case", list(BAD_GENOTYPES))
def test_bad_genotype_text(capsys, case):
    text, message = BAD_GENOTYPES[case]
    fails(capsys, ["params", "--genotype", text], message)


@pytest.mark.parametrize("content,message", [
    ('{"normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1]], "normal_concat": [2', "genotype JSON is malformed"),
    ('{"normal": [["sep_conv_3x3", 0]]}', "genotype JSON lacks normal_concat, reduce, reduce_concat"),
    ('{"cells": [{"genes": [["sep_conv_3x3", 0], ["skip_connect", 1]], "concat": [2]}]}',
     "per-cell genotype has 1 cell but the network has 3: a per-cell (dnas, global) genotype fixes the depth; "
     "train it at 1 cell (--layers 1 or no layers value at all)"),
    ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=[2], ",
     "genotype text: expected a keyword argument"),
])
def test_bad_genotype_file_names_the_file_and_creates_no_run(tmp_path, capsys, content, message):
    path = tmp_path / "g.json"
    path.write_text(content)
    fails(capsys, ["train", "--genotype", str(path), "--layers", "3", "--channels", "4", "--dataset", "synthetic",
                   "--batch-size", "8", "--run-dir", str(tmp_path / "run")], message)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_unreadable_genotype_file(tmp_path, capsys):
    (tmp_path / "g.txt").write_bytes(b"\xff\xfe\x00Genotype")
    fails(capsys, ["params", "--genotype", str(tmp_path / "g.txt")], f"{tmp_path / 'g.txt'}: cannot read genotype file")


def test_genotype_text_is_parsed_never_run(tmp_path, capsys):
    marker = tmp_path / "pwned"
    fails(capsys, ["params", "--genotype", f"Genotype(normal=__import__('os').system('touch {marker}'))"],
          "only range(...) may be called inside, got '__import__'")
    fails(capsys, ["params", "--genotype", f"__import__('os').system('touch {marker}')"], "is neither a known name")
    assert not marker.exists()


def test_every_cut_of_a_genotype_says_where_it_ends():
    """Truncated text (a copy-paste cut short) is named as such, never as something else."""
    for name, genotype in G.KNOWN.items():
        text = str(genotype)
        for k in range(len("Genotype("), len(text)):
            with pytest.raises(GenotypeError) as info:
                G.parse(text[:k])
            assert "(text ends there)" in str(info.value) or "closing quote" in str(info.value), \
                (name, k, str(info.value))


JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
                       | st.sampled_from(["sep_conv_3x3", "normal", "reduce", "cells", "genes", "concat"]),
                       lambda kids: st.lists(kids, max_size=5) | st.dictionaries(
                           st.sampled_from(["normal", "normal_concat", "reduce", "reduce_concat", "cells", "genes",
                                            "concat", "reduction", "x"]), kids, max_size=5),
                       max_leaves=30)


@settings(max_examples=200, deadline=None)
@given(JSONISH, st.integers(0, 400), st.sampled_from([0, 0, 0, 5000]))
def test_genotype_json_raises_only_its_own_error(value, cut, nesting):
    """Arbitrary JSON values, whole or cut short, or buried in brackets: GenotypeError or a genotype."""
    text = "[" * nesting + json.dumps(value)
    for candidate in (text, text[:cut]):
        try:
            found = G.from_json(candidate)
        except GenotypeError:
            continue
        assert isinstance(found, (G.Genotype, G.CellwiseGenotype)) and G.from_json(G.to_json(found)) == found


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="/\\."), max_size=300))
def test_genotype_spec_raises_only_its_own_error(text):
    """`--genotype` text of any kind (name, file name, notation, JSON): GenotypeError or a genotype."""
    try:
        found = G.load(text)
    except GenotypeError:
        return
    assert isinstance(found, (G.Genotype, G.CellwiseGenotype)) and G.parse(str(found)) == found


def test_genotype_spec_too_long_for_a_file_name(capsys):
    fails(capsys, ["params", "--genotype", "x" * 5000], "genotype 'xxxxxxxx", "...' is neither a known name")


# ---------------------------------------------------------------------------------------------
# config values and flags

@pytest.mark.parametrize("argv,message", [
    (["search", "--nodes", "0"], "error: --nodes: must be >= 1, got 0"),
    (["search", "--w-lr", "-1"], "error: --w-lr: must be > 0.0, got -1.0"),
    (["search", "--w-lr", "nan"], "error: --w-lr: must be a finite number"),
    (["search", "--alpha-lr", "1e39"], "error: --alpha-lr: must be a finite number of magnitude at most 1e+30"),
    (["search", "--layers", "2"], "error: --layers: must be >= 3, got 2"),
    (["search", "--train-portion", "1"], "error: --train-portion: must be < 1.0, got 1.0"),
    (["search", "--preset", "nope"], "error: --preset: 'nope' is not one of darts, darts-1st, pc-darts"),
    (["search", "--preset", "pc-dart"], "(did you mean 'pc-darts'?)"),
    (["search", "--order", "secnd"], "error: --order: 'secnd' is not one of first, second, one-level (did you mean 'second'?)"),
    (["search", "--skip-dropout", "1.5"], "error: --skip-dropout: must be < 1.0, got 1.5"),
    (["search", "--max-skips", "-1"], "error: --max-skips: must be >= 0, got -1"),
    (["search", "--partial-channels", "3", "--channels", "16"], "error: --partial-channels: 3 must divide channels (16)"),
    (["search", "--ops", "sep_conv_3x3,sep_conv_9x9"], "error: --ops: unknown op 'sep_conv_9x9'"),
    (["search", "--ops", "sep_conv_3x3,sep_conv_3x3"], "error: --ops: an op is listed twice"),
    # an empty name was dropped without a word
    (["search", "--ops", "sep_conv_3x3,,skip_connect"], "--ops: an empty op name in 'sep_conv_3x3,,skip_connect'"),
    (["search", "--ops", "sep_conv_3x3,"], "--ops: an empty op name"),
    (["search", "--warmup-epochs", "5", "--epochs", "5"], "error: --warmup-epochs: 5 leaves no architecture steps in 5 epochs"),
    # a dataset named: the preset's 15 warm-up epochs (a quick search scales them to its epochs)
    (["search", "--preset", "pc-darts", "--dataset", "digits", "--epochs", "3"],
     "warmup_epochs: 15 leaves no architecture steps in 3 "
                                                           "epochs (warm-up epochs train the weights only); set it "
                                                           "below 3 (--warmup-epochs N"),
    (["search", "--dataset", "synthetic", "--device", "tpu"], "error: --device: 'tpu' is not a device"),
    (["train", "--lr", "-1"], "error: --lr: must be > 0.0, got -1.0"),
    (["train", "--epochs", "0"], "error: --epochs: must be >= 1, got 0"),
    (["train", "--drop-path", "1"], "error: --drop-path: must be < 1.0, got 1.0"),
    (["train", "--setting", "cifar10"], "error: --setting: 'cifar10' is not one of cifar, "),
    (["train", "--lr", "0.1", "--lr-min", "0.5"], "error: --lr-min: 0.5 is above lr 0.1"),
    (["search", "--image-size", "-1"], "error: --image-size: must be >= 0, got -1"),
    (["train", "--image-size", "-8"], "error: --image-size: must be >= 0, got -8"),
    (["run", "--image-size", "-2"], "error: --image-size: must be >= 0, got -2"),
    # a training value of `diffnas run` typed as a flag is named by its flag there
    (["run", "--train-lr", "-1"], "error: --train-lr: must be > 0.0, got -1.0"),
    (["run", "--train-epochs", "0"], "error: --train-epochs: must be >= 1, got 0"),
    (["run", "--drop-path", "2"], "error: --drop-path: must be < 1.0, got 2.0"),
    (["search", "--dataset", "digits", "--image-size", "16"], "error: --image-size: digits images are 8x8, fixed by the format"),
])
def test_bad_config_value(capsys, argv, message):
    fails(capsys, argv, message)
    assert not Path("runs").exists()


@pytest.mark.parametrize("extra,message", [
    (["search"], "error: --batch-size: 100000 is more than the search's two splits of the 64 training images, 32 and 32 "
                 "(--train-portion 0.5: one steps the weights, the other the architecture); pass --batch-size 32 or "
                 "less"),
    (["search", "--train-portion", "0.75"], "the 64 training images, 48 and 16 (--train-portion 0.75: "),
    (["search", "--order", "one-level"], "error: --batch-size: 100000 is more than the 64 training and 64 test images; pass "
                                         "--batch-size 64 or less"),
    (["train"], "error: --batch-size: 100000 is more than the 64 training images; pass --batch-size 64 or less"),
    (["search", "--train-portion", "0.01"], "error: --train-portion: 0.01 of the 64 training images leaves the search's "
                                            "weight (training) split empty; choose a portion strictly between")])
def test_batch_larger_than_the_dataset_says_where_the_split_comes_from(capsys, extra, message):
    """"batch size 64 does not fit a split of 60 samples" puzzled a user with 120 training images: the
    search halves them."""
    fails(capsys, [*extra, "--dataset", "synthetic", "--layers", "3", "--channels", "4", "--batch-size", "100000"],
          message)


@pytest.mark.parametrize("argv,message", [
    (["search", "--layers", "x"], "argument --layers: invalid int value: 'x' (see `diffnas search --help`)"),
    (["search", "--w-lr"], "argument --w-lr: expected one argument"),
    (["train", "--image-size", "8.5"], "argument --image-size: invalid int value: '8.5'"),
    (["search", "--bogus"], "unrecognized arguments: --bogus (see `diffnas search --help`)"),   # where its flags are
    (["--debug", "train", "--bogus", "x"], "unrecognized arguments: --bogus x (see `diffnas train --help`)"),
    (["search", "--epohcs", "3"], "unrecognized arguments: --epohcs 3 (did you mean --epochs?) (see `diffnas search"),
    (["train", "--drop-paht=0.1"], "unrecognized arguments: --drop-paht=0.1 (did you mean --drop-path?)"),
    (["serch"], "argument COMMAND: invalid choice: 'serch'"),
    (["serch"], "(did you mean 'search'?) (see `diffnas --help`)"),   # as for flags and values
    (["reprot", "runs/x"], "(did you mean 'report'?)"),
    ([], "the following arguments are required: COMMAND"),
])
def test_bad_command_line_is_one_line_too(capsys, argv, message):
    fails(capsys, argv, message)


def test_debug_shows_the_traceback_and_still_exits_2(capsys):
    for argv in (["--debug", "search", "--nodes", "0"], ["search", "--nodes", "0", "--debug"]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback (most recent call last)" in err and "diffnas.errors.ConfigError: nodes" in err
        assert err.splitlines()[-1] == "diffnas: error: --nodes: must be >= 1, got 0"


# ---------------------------------------------------------------------------------------------
# config files

@pytest.mark.parametrize("suffix,text", [(".json", '{"w_lrr": 0.1}'), (".toml", "w_lrr = 0.1\n"),
                                         (".yaml", "w_lrr: 0.1\n")])
def test_unknown_config_key_suggests_the_known_one(tmp_path, capsys, suffix, text):
    path = tmp_path / f"c{suffix}"
    path.write_text(text)
    # the file is named: the key is in it, not among the flags
    fails(capsys, ["search", "--config", str(path)], f"{path}: unknown config key 'w_lrr' (did you mean 'w_lr'?)")


@pytest.mark.parametrize("name,text,message", [
    ("c.json", '{"nodes": "four"}', "nodes: expected int, got 'four'"),
    ("c.json", '{"epochs": true}', "epochs: expected int, got True"),
    ("c.yaml", "w_lr: -0.5\n", "w_lr: must be > 0.0, got -0.5"),
    ("c.toml", "ops = \"sep_conv_3x3\"\n", "ops: expected a list of op names, got 'sep_conv_3x3'"),
    ("c.json", '{"w_lr": 0.1, "layers": ', "c.json: malformed config file"),
    ("c.toml", "w_lr = \n", "c.toml: malformed config file"),
    ("c.yaml", "w_lr: [0.1\n", "c.yaml: malformed config file"),
    ("c.json", "[1, 2]", "c.json: a config file must hold a mapping of keys to values"),
    ("c.ini", "[search]\n", "c.ini: config files are .json, .toml or .yaml"),
    ("missing.json", None, "missing.json: cannot read config file (No such file or directory)"),
    ("c.yaml", "data_dir: 2024\n", 'data_dir: expected str, got 2024 (a folder named 2024? quote it in the config '
                                   'file: "2024")'),
    ("c.yaml", "seed: 4294967296\n", "seed: must be <= 4294967295, got 4294967296"),   # numpy's seed range
    # a number for a named choice said the folder hint too; it gets the choices, as the flag does
    ("c.yaml", "order: 2\n", "order: '2' is not one of first, second, one-level"),
    ("c.yaml", "device: 0\n", 'device: expected str, got 0 (meant as text? quote it in the config file: "0")'),
    ("c.json", '{"epochs": 3, "epochs": 5}', "c.json: key 'epochs' is given twice"),   # was: the last, silently
    ("c.yaml", "epochs: 3\nlayers: 5\nepochs: 5\n", "c.yaml: key 'epochs' is given twice"),
    ("c.toml", "[search]\nepochs = 3\n", 'c.toml: a "search" table: `diffnas search --config` takes its keys at '
                                         'the top level'),
])
def test_bad_config_file(tmp_path, capsys, name, text, message):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    fails(capsys, ["search", "--config", str(path)], message)


def test_a_bad_value_from_a_config_file_is_named_as_the_file_names_it(tmp_path, capsys):
    """Only values typed as flags are named by their flags: one from the file keeps its key (and the
    file's name), even when other flags were typed beside it."""
    (tmp_path / "c.yaml").write_text("w_lr_min: 0.5\n")
    err = fails(capsys, ["search", "--config", str(tmp_path / "c.yaml"), "--w-lr", "0.1"],
                "error: w_lr_min: 0.5 is above w_lr 0.1")
    assert "--w-lr-min" not in err
    (tmp_path / "r.toml").write_text("[train]\nlr = -1\n")
    fails(capsys, ["run", "--config", str(tmp_path / "r.toml"), "--train-epochs", "2"],
          f"error: {tmp_path / 'r.toml'}: train: lr: must be > 0.0, got -1.0")


def test_only_flags_the_user_typed_are_named_as_flags(tmp_path, capsys):
    """The flags were read after the command had changed its arguments: `run` clears --run-dir (so a
    typed one was named run_dir), --dry-run fills in --batch-size 8 (named as if typed)."""
    (tmp_path / "afile").write_text("x")
    fails(capsys, ["run", "--dry-run", "--run-dir", str(tmp_path / "afile")],
          f"error: --run-dir: {tmp_path / 'afile'} is a file, not a folder")
    (tmp_path / "tp.toml").write_text("train_portion = 0.1\n")
    err = fails(capsys, ["search", "--dry-run", "--config", str(tmp_path / "tp.toml"), "--run-dir", str(tmp_path / "s")],
                "error: batch_size: 8 is more than the search's two splits")
    assert "--batch-size: 8" not in err


def test_debug_shows_where_a_runs_renamed_error_was_raised(tmp_path, capsys):
    """`diffnas run` renames a training value's error by its flag; the traceback ended at the renaming."""
    assert cli.main(["--debug", "run", "--dry-run", "--train-batch-size", "100000",
                     "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert 'train.py", line' in err and "in check_data" in err
    assert err.splitlines()[-1].startswith("diffnas: error: --train-batch-size: 100000 is more than")


def test_train_config_file_with_a_train_table_or_a_large_seed(tmp_path, capsys):
    (tmp_path / "t.toml").write_text("[train]\nlr = 0.1\n")
    fails(capsys, ["train", "--config", str(tmp_path / "t.toml")], 'a "train" table: `diffnas train --config` '
          'takes its keys at the top level (epochs = 5, not under [train]); a file with search and train tables '
          'starts a pipeline with `diffnas run --config')
    fails(capsys, ["train", "--seed", str(2**32)], "error: --seed: must be <= 4294967295, got 4294967296")


def test_train_config_file_unknown_key(tmp_path, capsys):
    (tmp_path / "t.toml").write_text("lrr = 0.1\n")
    fails(capsys, ["train", "--config", str(tmp_path / "t.toml")],
          f"{tmp_path / 't.toml'}: unknown config key 'lrr' (did you mean 'lr'?)")


def test_yaml_config_runs_no_code(tmp_path, capsys):
    marker = tmp_path / "pwned"
    (tmp_path / "c.yaml").write_text(f"w_lr: !!python/object/apply:os.system ['touch {marker}']\n")
    fails(capsys, ["search", "--config", str(tmp_path / "c.yaml")], "c.yaml: malformed config file")
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------
# data files

def search_on(dataset: str, data_dir: Path) -> list[str]:
    return ["search", *TINY, "--dataset", dataset, "--data-dir", str(data_dir), "--batch-size", "2"]


def test_unknown_or_missing_dataset(tmp_path, capsys):
    fails(capsys, search_on("cifar11", tmp_path), "dataset: 'cifar11' is not one of digits, cifar10")
    fails(capsys, search_on("cifar10", tmp_path / "nodir"),
          f"cifar10: --data-dir {tmp_path / 'nodir'}: no such folder",
          f"try `diffnas download cifar10 --data-dir {tmp_path / 'nodir'}`")
    fails(capsys, search_on("imagefolder", tmp_path / "nodir"),
          f"imagefolder: --data-dir {tmp_path / 'nodir'}: no such folder")
    write_cifar10(tmp_path)   # a folder that exists but lacks a file
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    fails(capsys, search_on("cifar10", tmp_path), f"{tmp_path / 'cifar-10-batches-py' / 'data_batch_3'}: no such file")


def test_cut_pickle(tmp_path, capsys):
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    path.write_bytes(path.read_bytes()[:700])
    fails(capsys, search_on("cifar10", tmp_path), f"{path}: truncated or corrupt pickle")


def test_malicious_cifar_pickle_runs_no_code(tmp_path, capsys):
    write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(pickle.dumps({b"data": Evil(marker), b"labels": [0]}, protocol=4))
    fails(capsys, search_on("cifar10", tmp_path), f"{path}: refused pickle global {os.system.__module__}.system")
    assert not marker.exists()


@pytest.mark.parametrize("gz", [False, True])
def test_idx_header_that_disagrees_with_the_size(tmp_path, capsys, gz):
    write_mnist(tmp_path / "mnist", gz=gz)
    name = "t10k-images-idx3-ubyte" + (".gz" if gz else "")
    path = tmp_path / "mnist" / name
    if gz:
        import gzip
        path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-28]))
    else:
        path.write_bytes(path.read_bytes()[:-28])
    fails(capsys, search_on("mnist", tmp_path), f"{path}", "the IDX header says 3x28x28 = 2352 values after its "
                                                            "16-byte header, but the file holds 2324 bytes after it")


def test_unreadable_image(tmp_path, capsys):
    write_image_folder(tmp_path)
    path = tmp_path / "train" / "cat" / "1.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    fails(capsys, search_on("imagefolder", tmp_path), f"{path}: unreadable image")


def test_images_of_different_sizes(tmp_path, capsys):
    write_image_folder(tmp_path, size=(6, 5))
    write_image(tmp_path / "test" / "dog" / "9.png", torch.zeros(3, 7, 5, dtype=torch.uint8).numpy())
    fails(capsys, search_on("imagefolder", tmp_path), "test/dog/9.png: image is 5x7",
          f"but {tmp_path / 'train' / 'cat' / '0.png'} is 5x6", "all images must share one size",
          "pass --image-size N")


def mixed_folder(root: Path) -> Path:
    write_image_folder(root, size=(6, 5), per_class=4)
    write_image(root / "train" / "dog" / "9.png", torch.zeros(3, 12, 9, dtype=torch.uint8).numpy())
    return root


def test_image_size_search_train_and_evaluate_end_to_end(tmp_path, capsys):
    data = mixed_folder(tmp_path / "data")
    small = ["--layers", "3", "--channels", "4", "--epochs", "1", "--max-steps", "1", "--batch-size", "4", "--no-plots"]
    assert cli.main(["search", "--dataset", "imagefolder", "--data-dir", str(data), "--image-size", "8", *small,
                     "--run-dir", str(tmp_path / "s")]) == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "s" / "config.json").read_text())["image_size"] == 8
    # batch 8: the one test batch --max-steps 1 allows covers the whole test split, as evaluate does
    assert cli.main(["train", "--dataset", "imagefolder", "--data-dir", str(data), "--image-size", "8", *small,
                     "--batch-size", "8", "--genotype", str(tmp_path / "s"),
                     "--run-dir", str(tmp_path / "t")]) == 0, capsys.readouterr().err
    capsys.readouterr()
    # evaluate reads the folder with the run's image_size (the mixed folder cannot be read without it)
    assert cli.main(["evaluate", str(tmp_path / "t"), "--json"]) == 0, capsys.readouterr().err
    trained = json.loads((tmp_path / "t" / "result.json").read_text())
    assert json.loads(capsys.readouterr().out)["test_acc"] == trained["test_acc"]
    # a resumed run keeps its image_size
    fails(capsys, ["search", "--resume", str(tmp_path / "s"), "--image-size", "6"],
          f"error: --image-size: 6 given, but the run in {tmp_path / 's'} has 8")


def test_image_size_reaches_both_stages_of_run(tmp_path, capsys):
    data = mixed_folder(tmp_path / "data")
    assert cli.main(["run", "--dataset", "imagefolder", "--data-dir", str(data), "--image-size", "6", "--preset",
                     "darts-1st", "--layers", "3", "--channels", "4", "--nodes", "2", "--epochs", "1", "--max-steps",
                     "1", "--batch-size", "2", "--train-epochs", "1", "--train-layers", "3", "--train-channels", "4",
                     "--train-max-steps", "1", "--train-batch-size", "2", "--no-plots",
                     "--run-dir", str(tmp_path / "r")]) == 0, capsys.readouterr().err
    for stage in ("search", "train"):
        assert json.loads((tmp_path / "r" / stage / "config.json").read_text())["image_size"] == 6


def test_params_reads_a_mixed_folder_with_image_size(tmp_path, capsys):
    data = mixed_folder(tmp_path / "data")
    fails(capsys, ["params", "--dataset", "imagefolder", "--data-dir", str(data)], "pass --image-size N")
    assert cli.main(["params", "--dataset", "imagefolder", "--data-dir", str(data), "--image-size", "8",
                     "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["classes"] == 2


@pytest.mark.parametrize("setting,dataset,message", [
    ("imagenet", "digits", "the imagenet setting takes RGB images (3 channels), the dataset has 1"),
    ("imagenet", "synthetic", "the imagenet setting needs images of at least 32x32 (nominal 224x224); "
                              "the dataset's are 16x16"),
    ("cifar", "imagefolder", "the cifar setting needs images of at least 4x4 (nominal 32x32); the dataset's are 3x3"),
])
def test_images_unfit_for_the_network(tmp_path, capsys, setting, dataset, message):
    write_image_folder(tmp_path / "img", size=(3, 3))
    fails(capsys, ["train", "--setting", setting, "--dataset", dataset, "--data-dir", str(tmp_path / "img"),
                   "--layers", "3", "--channels", "4", "--run-dir", str(tmp_path / "run")], message)


# ---------------------------------------------------------------------------------------------
# checkpoints and resumed runs

@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny search run folder (copy it before changing it)."""
    run = tmp_path_factory.mktemp("cli") / "run"
    assert cli.main(["search", *TINY, "--run-dir", str(run)]) == 0
    return run


@pytest.fixture
def run(finished, tmp_path):
    import shutil

    return Path(shutil.copytree(finished, tmp_path / "run"))


def rewrite(path: Path, change) -> None:
    blob = torch.load(path, weights_only=True)
    change(blob)
    torch.save(blob, path)


def test_corrupt_checkpoint_on_resume(run, capsys):
    ckpt = run / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    # what happened and what to do, in words (it quoted torch cut off mid-sentence)
    err = fails(capsys, ["search", "--resume", str(run)], f"{ckpt}: not a valid diffnas checkpoint (1,000 bytes, "
                "cut short or damaged: a copy that did not finish?", "put back a good copy of it")
    assert "..." in err or len(err) < 400
    ckpt.write_bytes(b"\x00" * 64)
    fails(capsys, ["search", "--resume", str(run)], f"{ckpt}: not a valid diffnas checkpoint (64 bytes")


def test_malicious_checkpoint_runs_no_code(run, tmp_path, capsys):
    marker = tmp_path / "pwned"
    ckpt = run / "checkpoint.pt"
    torch.save({"format_version": 1, "config": {}, "state": Evil(marker)}, ckpt)
    fails(capsys, ["search", "--resume", str(run)], f"{ckpt}: not a valid diffnas checkpoint, refused to load: it "
          "holds Python objects besides tensors")
    fails(capsys, ["evaluate", str(ckpt)], f"{run}: a search run; evaluate trains nothing")   # not even loaded
    lone = tmp_path / "lone.pt"   # the same file outside a run folder: loaded, and refused
    lone.write_bytes(ckpt.read_bytes())
    fails(capsys, ["evaluate", str(lone)], f"{lone}: not a valid diffnas checkpoint, refused to load")
    assert not marker.exists()


def test_checkpoint_of_another_version(run, capsys):
    rewrite(run / "checkpoint.pt", lambda blob: blob.update(format_version=99))
    fails(capsys, ["search", "--resume", str(run)], "checkpoint format version 99, this diffnas reads version 1")
    torch.save({"weights": torch.zeros(2)}, run / "checkpoint.pt")
    fails(capsys, ["search", "--resume", str(run)], "checkpoint.pt: not a diffnas checkpoint")


def test_checkpoint_of_another_configuration(run, capsys):
    rewrite(run / "checkpoint.pt", lambda blob: blob["config"].update(nodes=3, seed=7))
    fails(capsys, ["search", "--resume", str(run)],
          "checkpoint was made with a different configuration (nodes: checkpoint 3, now 2, and 1 more)")


def test_resume_refuses_flags_that_would_change_the_run(run, tmp_path, capsys):
    fails(capsys, ["search", "--resume", str(run), "--nodes", "3"],
          f"--nodes: 3 given, but the run in {run} has 2; a resumed run keeps its configuration (only --epochs")
    # what may change is listed by its flags (a field with none as the config file's key); the list
    # leaves out run_dir: --run-dir with --resume is refused (the run goes on in its own folder)
    fails(capsys, ["search", "--resume", str(run), "--nodes", "3"],
          "(only --epochs, --device, --data-dir, --no-plots, --no-compile, detect_anomaly (--config file), ")
    (tmp_path / "c.json").write_text('{"w_lr": 0.5}')
    fails(capsys, ["search", "--resume", str(run), "--config", str(tmp_path / "c.json")], "w_lr: 0.5 given")
    # --dry-run is a new search: refused as that, not as a change of dataset the user never typed
    fails(capsys, ["search", "--resume", str(run), "--dry-run"],
          "error: --dry-run starts a new search; it does not go with --resume")
    # the resumable ones may change: a finished run extended by one epoch
    assert cli.main(["search", "--resume", str(run), "--epochs", "2", "--nodes", "2"]) == 0
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["epoch"] == 2


def test_resume_of_a_run_saved_before_image_size_existed(run, capsys):
    """A run made before the field existed (no image_size in its checkpoint or config.json) resumes
    with the default 0, the behaviour of the diffnas that made it; a checkpoint that says otherwise is
    another configuration."""
    rewrite(run / "checkpoint.pt", lambda blob: blob["config"].pop("image_size"))
    config = json.loads((run / "config.json").read_text())
    del config["image_size"]
    (run / "config.json").write_text(json.dumps(config))
    assert cli.main(["search", "--resume", str(run), "--epochs", "2"]) == 0, capsys.readouterr().err
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["epoch"] == 2
    capsys.readouterr()
    rewrite(run / "checkpoint.pt", lambda blob: blob["config"].update(image_size=16))
    fails(capsys, ["search", "--resume", str(run), "--epochs", "3"], "(image_size: checkpoint 16, now 0)")


def test_resume_of_something_else(run, tmp_path, capsys):
    (tmp_path / "nothing").mkdir()   # empty: a run stopped before it wrote anything
    fails(capsys, ["search", "--resume", str(tmp_path / "nothing")],
          f"nothing: an empty folder, nothing to resume (a run stopped before it wrote its config?); start the run "
          f"anew in it with `diffnas search --run-dir {tmp_path / 'nothing'}` and its flags")
    (tmp_path / "nothing" / "notes.txt").write_text("mine")
    fails(capsys, ["search", "--resume", str(tmp_path / "nothing")], "nothing: no config.json, not a search run folder")
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "command": "train"}))
    fails(capsys, ["search", "--resume", str(run)], f"{run}: a train run folder, not a search run folder; score it "
                                                    f"with `diffnas evaluate {run}`, or resume the training with "
                                                    f"`diffnas train --resume {run}`")
    (run / "config.json").write_text(json.dumps(config))
    fails(capsys, ["train", "--resume", str(run)],
          f"{run}: a search run folder, not a training run folder; train the cell it found with "
          f"`diffnas train --genotype {run}`, or resume the search with `diffnas search --resume {run}`")
    fails(capsys, ["evaluate", str(run)], f"{run}: a search run; evaluate trains nothing: train its genotype with "
                                          f"`diffnas train --genotype {run}`")


def test_a_finished_run_is_not_overwritten(run, capsys):
    fails(capsys, ["search", *TINY, "--run-dir", str(run)], f"error: --run-dir: {run} holds a run already",
          f"`diffnas search --resume {run}`")
    # named by another command: resumed by the one that made it (it said `diffnas train --resume`, refused)
    fails(capsys, [*NEW_RUNS["train"], "--run-dir", str(run)], f"error: --run-dir: {run} holds a run already",
          f"`diffnas search --resume {run}`")


NEW_RUNS = {"search": ["search", *TINY],
            "train": ["train", "--genotype", "DARTS_V2", "--dataset", "synthetic", "--layers", "3", "--channels", "4",
                      "--batch-size", "8", "--epochs", "1", "--max-steps", "1", "--no-plots"],
            "run": ["run", *TINY]}


@pytest.mark.parametrize("command", list(NEW_RUNS))
def test_a_new_run_refuses_a_folder_of_other_files_and_writes_nothing_there(tmp_path, capsys, command):
    """--run-dir . in a project folder wrote config.json, metrics.jsonl, figures/ and report.html among
    the user's own files (replacing any of the same names)."""
    folder = tmp_path / "project"
    (folder / "data").mkdir(parents=True)
    for name in ("notes.txt", "config.json.bak", "zz.py", ".DS_Store"):
        (folder / name).write_text("mine")
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    fails(capsys, [*NEW_RUNS[command], "--run-dir", str(folder)],
          f"error: --run-dir: {folder} holds other files (config.json.bak, data/, notes.txt and 1 more) and no run; "
          f"a run writes its config.json, checkpoint.pt, metrics.jsonl, figures/ and report into its folder: name a "
          f"new or empty folder (hidden files such as .DS_Store do not count)")
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before


@pytest.mark.parametrize("command", ["search", "train"])
def test_a_new_run_takes_an_empty_folder_or_one_of_hidden_files(tmp_path, command):
    for target, hidden in (("empty", ()), ("hidden", (".DS_Store", ".git/"))):
        folder = tmp_path / target
        folder.mkdir()
        for name in hidden:
            (folder / name.rstrip("/")).mkdir() if name.endswith("/") else (folder / name).write_text("")
        assert cli.main([*NEW_RUNS[command], "--run-dir", str(folder)]) == 0
        assert (folder / "config.json").is_file()


def test_run_folder_the_file_system_refuses(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    fails(capsys, ["search", *TINY, "--run-dir", str(tmp_path / "file" / "run")], f"{tmp_path / 'file'}")



def test_evaluating_after_the_image_folder_moved_says_so(tmp_path, capsys):
    """The saved data_dir is gone: the message said '<dir> has no test/' as if the folder were
    there but incomplete."""
    data = tmp_path / "images"
    write_image_folder(data, per_class=4, size=(8, 8))
    assert cli.main(["train", "--dataset", "imagefolder", "--data-dir", str(data), "--layers", "3", "--channels", "4",
                     "--epochs", "1", "--batch-size", "4", "--max-steps", "1", "--no-plots",
                     "--run-dir", str(tmp_path / "t")]) == 0, capsys.readouterr().err
    capsys.readouterr()
    data.rename(tmp_path / "moved")
    fails(capsys, ["evaluate", str(tmp_path / "t")],
          f"imagefolder: {data}, the folder the network was trained on, is not there (moved or deleted?); "
          f"pass --data-dir DIR with the test images")
    fails(capsys, ["evaluate", str(tmp_path / "t"), "--data-dir", str(tmp_path / "nowhere")],
          f"imagefolder: --data-dir {tmp_path / 'nowhere'}: no such folder")
    assert cli.main(["evaluate", str(tmp_path / "t"), "--data-dir", str(tmp_path / "moved")]) == 0


def test_a_new_field_typed_on_resuming_an_older_run_is_refused_as_a_change(tmp_path, capsys):
    """A run made before drop_path_per existed has none in its config.json: the value typed on resume
    was silently ignored (the run went on per op). It counts as the default, as the checkpoint does."""
    run = tmp_path / "t"
    assert cli.main(["train", "--dataset", "synthetic", "--layers", "3", "--channels", "4", "--epochs", "1",
                     "--batch-size", "8", "--max-steps", "1", "--no-plots", "--run-dir", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    del config["drop_path_per"]
    (run / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    fails(capsys, ["train", "--resume", str(run), "--epochs", "2", "--drop-path-per", "node"],
          f"error: --drop-path-per: 'node' given, but the run in {run} has 'op'; a resumed run keeps its configuration")


def test_evaluating_a_run_on_generated_data_ignores_a_gone_data_dir(tmp_path, capsys):
    """--data-dir with synthetic data is warned about and unused; its folder gone is no reason to refuse."""
    (tmp_path / "dd").mkdir()
    assert cli.main(["train", "--dataset", "synthetic", "--data-dir", str(tmp_path / "dd"), "--layers", "3",
                     "--channels", "4", "--epochs", "1", "--batch-size", "8", "--max-steps", "1", "--no-plots",
                     "--run-dir", str(tmp_path / "t")]) == 0
    (tmp_path / "dd").rmdir()
    assert cli.main(["evaluate", str(tmp_path / "t")]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("command", ["search", "train", "run"])
def test_resuming_a_folder_that_is_not_there_says_so(tmp_path, capsys, command):
    # a Ctrl-C while the data decoded leaves no folder; the resume then said "no config.json, not a ... folder"
    fails(capsys, [command, "--resume", str(tmp_path / "gone")], f"{tmp_path / 'gone'}: no such folder (nothing to resume)")


@pytest.mark.parametrize("argv", [["search", "--epochs", "-1"], ["search", "--epochz", "3"]])
def test_under_torchrun_another_rank_holds_its_early_error_back_then_says_it_with_its_rank(argv, monkeypatch,
                                                                                           capsys):
    """Before the process group exists every rank most often meets rank 0's error: the others wait
    (torchrun stops them once rank 0 has printed it and exited, so it is said once), then say it with
    their rank, so an error only they meet is not lost. Rank 0 says it at once, as without torchrun."""
    waits = []
    monkeypatch.setattr(cli.time, "sleep", waits.append)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("diffnas: error: rank 1: ") and err.count("\n") == 1 and waits == [cli.QUIET_RANK_WAIT]
    monkeypatch.setenv("RANK", "0")
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("diffnas: error: ") and "rank" not in err and len(waits) == 1


def test_under_torchrun_an_error_after_the_process_group_is_up_is_held_back_too(tmp_path, monkeypatch, capsys):
    """Errors met once the ranks run together (a missing data folder, a run folder in use) are most often
    every rank's too: each was printed once per rank, the others as "rank N:". Rank N now holds its
    error back as before the group exists, then says it with its rank (one a node meets alone)."""
    waits = []
    monkeypatch.setattr(cli.time, "sleep", waits.append)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    assert cli._error_line(f"{tmp_path / 'data'}: no such folder") == f"diffnas: error: rank 1: {tmp_path / 'data'}: " \
                                                                     f"no such folder"
    assert waits == [cli.QUIET_RANK_WAIT]


@pytest.mark.parametrize("argv,expected", [
    (["--classes", "-1"], "argument --classes: must be >= 1, got -1"),   # was a torch traceback
    (["--in-channels", "0"], "argument --in-channels: must be >= 1, got 0"),   # was counted
    (["--genotype", "DARTS_V2", "--in-channels", "0"], "must be >= 1, got 0"),   # was ignored
    (["--genotype", "DARTS_V2", "--classes", "x"], "expected an integer >= 1, got 'x'"),
    (["--genotype", "DARTS_V2", "--image-size", "16"], "--image-size describes the search network"),   # ignored
    (["--genotype", "DARTS_V2", "--dataset", "mnist"], "--dataset describes the search network; it does not go with "
     "--genotype; for the evaluation network of that data's images give --in-channels and --classes"),
    # refused as search refuses it, though params reads no CIFAR file (it was accepted and ignored)
    (["--dataset", "cifar10", "--image-size", "64"], "error: --image-size: cifar10 images are 32x32, fixed by the format"),
    # it counted the search network without a word
    (["--setting", "imagenet"], "--setting describes the evaluation network of a genotype; it goes with --genotype"),
])
def test_params_refuses_counts_below_one_and_a_search_flag_with_a_genotype(capsys, argv, expected):
    fails(capsys, ["params", *argv], expected)


@pytest.mark.parametrize("command", ["search", "train", "run"])
def test_run_dir_naming_another_folder_than_the_resumed_run_is_refused(tmp_path, capsys, command):
    """`diffnas search --resume A --run-dir B` went on in A and said nothing of B."""
    run = tmp_path / "a"
    run.mkdir()
    fails(capsys, [command, "--resume", str(run), "--run-dir", str(tmp_path / "b")],
          f"--run-dir does not go with --resume: the run goes on in its own folder, {run}")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("command,text,flag", [
    ("search", '{"epochs": "2"}', ["--epochs", "3"]),
    ("train", '{"epochs": "2"}', ["--epochs", "3"]),
    ("run", '{"train": {"epochs": "2"}}', ["--train-epochs", "3"]),
])
def test_a_wrong_value_in_a_config_file_is_refused_even_where_a_flag_replaces_it(tmp_path, capsys, command, text,
                                                                                  flag):
    """The flag's value won the merge, and the file's error went unsaid (the same file alone is refused)."""
    config = tmp_path / "c.json"
    config.write_text(text)
    fails(capsys, [command, "--config", str(config), *flag, "--run-dir", str(tmp_path / "r")],
          f"{config}", "epochs: expected int, got '2'")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("raised, said", [
    (RuntimeError("[enforce fail at alloc_cpu.cpp:127] data. DefaultCPUAllocator: can't allocate memory: you "
                  "tried to allocate 120000000000 bytes. Error code 12 (Cannot allocate memory)"),
     "out of memory (one allocation of 111.8 GiB): "),
    (MemoryError("Unable to allocate 34.3 GiB for an array with shape (24, 3, 8000, 8000) and data type float64"),
     "out of memory (one allocation of 34.3 GiB): "),
    (MemoryError(), "out of memory: "),
    (RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 79.19 GiB total capacity)"),
     "out of memory (one allocation of 20.00 MiB): "),
])
def test_running_out_of_memory_is_one_line_that_says_what_needs_less(capsys, monkeypatch, raised, said):
    """`params --channels 100000`, `train --random-resized-crop 4000` or a huge --image-size ended in a
    traceback from the allocator (numpy's, torch's CPU one, CUDA's)."""
    from diffnas.cli import params

    def allocate(*args, **kwargs):
        raise raised

    monkeypatch.setattr(params, "search_counts", allocate)
    assert cli.main(["params", "--channels", "100000"]) == 1
    err = capsys.readouterr().err
    # the flags `params` has: it named --batch-size and --random-resized-crop (README walk)
    assert err == (f"diffnas: error: {said}smaller --channels, --layers, --nodes or --image-size need less "
                   f"(--debug shows where)\n")
    monkeypatch.setattr(params, "search_counts", lambda *a: (_ for _ in ()).throw(RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):   # any other RuntimeError is not said to be memory
        cli.main(["params"])


def test_one_image_per_batch_norm_group_is_refused_before_anything_runs(tmp_path, capsys, monkeypatch):
    """`train --batch-size 1` (or --bn-groups as large as the batch) crashed in the auxiliary head's
    batch norm (its input pooled to 1x1) with torch's ValueError; `run --train-batch-size 1` only after
    its search. Tiny images at batch 1 reach a 1x1 map in the cells too: said in words."""
    fails(capsys, ["train", "--batch-size", "1", "--run-dir", str(tmp_path / "t")],
          "--batch-size: 1 image leaves the auxiliary head's batch norm one value per channel",
          "pass --batch-size 2 or more, or --auxiliary 0")
    fails(capsys, ["train", "--batch-size", "16", "--bn-groups", "16", "--run-dir", str(tmp_path / "t")],
          "1 image per batch-norm group (--bn-groups 16)", "pass --batch-size 32 or more")
    fails(capsys, ["run", "--train-batch-size", "1", "--run-dir", str(tmp_path / "p")],
          "--train-batch-size: 1 image leaves", "pass --train-batch-size 2 or more")
    assert not (tmp_path / "t").exists() and not (tmp_path / "p").exists()
    from diffnas.cli import params

    def torch_says(*args):
        raise ValueError("Expected more than 1 value per channel when training, got input size "
                         "torch.Size([1, 12, 1, 1])")

    monkeypatch.setattr(params, "search_counts", torch_says)
    fails(capsys, ["params"], "batch norm got one value per channel (one image per batch-norm group at a 1x1 feature "
                              "map)")


def test_a_config_file_that_is_no_file_or_endless_is_refused_before_reading_it(tmp_path, capsys, monkeypatch):
    """`--config /dev/zero` read until memory ran out: only a file or a named pipe is read, and no more
    than MAX_BYTES of it."""
    from diffnas import config_file

    fails(capsys, ["search", "--config", "/dev/zero"], "/dev/zero: not a file")
    fails(capsys, ["search", "--config", str(tmp_path)], f"{tmp_path}: not a file")
    import threading

    fifo = tmp_path / "c.json"   # a named pipe another process writes the config into
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text('{"epochs": 2}'))
    writer.start()
    assert config_file.read_file(fifo) == {"epochs": 2}
    writer.join()
    monkeypatch.setattr(config_file, "MAX_BYTES", 1 << 20)
    big = tmp_path / "big.json"
    big.write_text('{"epochs": 1}' + " " * (1 << 20))
    fails(capsys, ["search", "--config", str(big)], f"{big}: more than 1 MiB, not a config file")
    big.write_text('{"epochs": 1}' + " " * ((1 << 20) - 20))   # at the limit: read
    assert config_file.read_file(big) == {"epochs": 1}


@pytest.mark.parametrize("argv, said", [
    (["search", "--config", ""], "--config: an empty value; leave the flag out for its default"),
    (["search", "--run-dir="], "--run-dir: an empty value"),
    (["search", "--preset", " "], "--preset: an empty value"),
    (["train", "--setting", ""], "--setting: an empty value"),
    (["search", "--resume", ""], "--resume: an empty value"),
    (["search", "--data-dir", ""], "--data-dir: an empty value"),
    (["evaluate", ""], "an empty argument ('' where a path belongs)"),
    (["plot", ""], "an empty argument"),
])
def test_an_empty_value_is_refused_not_taken_for_the_default_or_the_current_folder(tmp_path, capsys, monkeypatch,
                                                                                   argv, said):
    """`--config ''` (an unset shell variable) silently ran the default search; `--run-dir ''` wrote to
    runs/search-DATE; `--resume ''`, `evaluate ''`, `plot ''` and `--data-dir ''` took the current folder."""
    monkeypatch.chdir(tmp_path)
    fails(capsys, argv, said)
    assert list(tmp_path.iterdir()) == []


def test_a_file_where_a_folder_is_to_be_made_is_said_so(tmp_path, capsys):
    """`download cifar10 --data-dir FILE` and a file named figures in a run folder said 'File exists'."""
    (tmp_path / "afile").write_text("x")
    fails(capsys, ["download", "cifar10", "--data-dir", str(tmp_path / "afile")],
          f"{tmp_path / 'afile'}: a file is in the way where a folder is to be made")
