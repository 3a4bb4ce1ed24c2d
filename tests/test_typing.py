"""The package's type hints, which py.typed offers to its users' checkers, hold: mypy finds no error
(pyproject.toml's [tool.mypy] says how it is run)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


# the versions the hints were checked with: another mypy, or another torch's or numpy's stubs, can find other
# things (the README's torch >= 2.2 is for running diffnas, not for this check)
CHECKED_WITH = {"mypy": "2.4.1", "torch": "2.13."}


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                    reason="mypy is a test dependency: pip install -e '.[test]'")
def test_mypy_finds_no_error_in_the_package(tmp_path: Path) -> None:
    import importlib.metadata

    import torch

    if not torch.__version__.startswith(CHECKED_WITH["torch"]) or \
            importlib.metadata.version("mypy") != CHECKED_WITH["mypy"]:
        pytest.skip(f"the hints are checked with mypy {CHECKED_WITH['mypy']} and torch {CHECKED_WITH['torch']}x")
    done = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"), "diffnas"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]
