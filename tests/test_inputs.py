"""Bad input found in review, each a clear one-line error: op sets, devices this machine lacks,
genotype paths and names, choice values with a "did you mean", and Ctrl-C while the CLI starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffnas import cli
from diffnas import config as config_lib
from diffnas.errors import ConfigError


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Default run folders (runs/...) land in the test's folder, never in the repository."""
    monkeypatch.chdir(tmp_path)


def fails(capsys, argv: list[str], *expected: str) -> str:
    """Run the CLI; it must print one line "diffnas: error: ..." holding every `expected` text, exit 2."""
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("diffnas: error: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, f"{text!r} not in {err!r}"
    return err


# ---------------------------------------------------------------------------------------------
# the op set

@pytest.mark.parametrize("ops,message", [
    ("none", "ops: needs at least one op besides 'none'"),
    ("", "ops: the list is empty"),
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


