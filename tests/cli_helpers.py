"""What the CLI tests share: running a command that must fail with one line."""

from __future__ import annotations

from diffnas import cli


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
