"""The one exception family users see: the CLI prints its message on one line and exits with code 2.

`suggest` writes the "(did you mean ...?)" hint that messages naming an unknown choice end with;
`check_choice` raises the one-line error with it.
"""

from __future__ import annotations

import os
import sys
import warnings
from contextlib import contextmanager
from difflib import get_close_matches
from pathlib import Path
from types import FrameType
from typing import Iterable, Iterator


class DiffnasError(Exception):
    """Base class of every error caused by user input (config, genotype, data, checkpoint)."""


class DiffnasWarning(UserWarning):
    """A value of a Python caller's config that changes nothing (the command line prints these as
    warnings): `warnings.filterwarnings("ignore", category=DiffnasWarning)` silences them."""


def warn_caller(message: str) -> None:
    """warnings.warn(message, DiffnasWarning), attributed to the first line outside this package (the
    caller's `search(...)`, `run_pipeline(...)`), wherever inside it the warning is raised."""
    here = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame: FrameType | None = sys._getframe(1)
    level = 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(here):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, DiffnasWarning, stacklevel=level)


class ConfigError(DiffnasError):
    """A config value, key or file is invalid."""


class GenotypeError(DiffnasError):
    """A genotype string, file or name is malformed or does not fit the search space."""


class DataError(DiffnasError):
    """A dataset is missing, truncated, corrupt or of the wrong shape."""


@contextmanager
def reading(path: str | Path) -> Iterator[None]:
    """The file system refusing to read `path` inside is a DataError naming it, one line: "PATH: no
    such file", "PATH: cannot read (Permission denied)"."""
    try:
        yield
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None


class CheckpointError(DiffnasError):
    """A checkpoint is missing, corrupt, unsafe, or from another configuration or version."""


class NumericalError(DiffnasError):
    """A loss, gradient or architecture parameter became NaN or infinite."""


def check_choice(name: str, value: object, choices: Iterable[str]) -> None:
    """Raise ConfigError naming `name`, the choices and the likeliest meant one, unless `value` is one."""
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{name}: {value!r} is not one of {', '.join(choices)}{suggest(value, choices)}")


def _key(name: str) -> str:
    """What a typo keeps: `DARTS-V2`, `darts_v2` and `dartsv2` are all `dartsv2`."""
    return "".join(ch for ch in name.casefold() if ch not in "-_ .")


def same_name(value: str, choices: Iterable[str]) -> str | None:
    """The one choice `value` names up to case, '-', '_' and spaces (`darts-v2`: DARTS_V2), or None."""
    found = [c for c in dict.fromkeys(choices) if _key(c) == _key(value)]
    return found[0] if len(found) == 1 else None


def suggest(value: object, choices: Iterable[str]) -> str:
    """' (did you mean X?)' for the choices `value` most likely meant, or '' when none is close.

    The same name up to case, '-', '_' and spaces wins; else the choices it is the start of
    (`cifar`: cifar10, cifar100; if there are more than eight, none); else difflib's closest match.
    """
    choices = list(dict.fromkeys(choices))
    text = _key(str(value))
    by_key: dict[str, list[str]] = {}
    for c in choices:
        by_key.setdefault(_key(c), []).append(c)
    found = by_key.get(text, [])
    if not found and len(text) >= 3:
        found = [c for c in choices if _key(c).startswith(text)]
        if len(found) > 8:
            return ""
    if not found:
        close = get_close_matches(text, list(by_key), n=1)
        found = by_key[close[0]][:1] if close else []
    if not found:
        return ""
    names = [repr(c) for c in found]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    return f" (did you mean {listed}?)"
