"""diffnas: differentiable neural architecture search (DARTS, PC-DARTS, FairDARTS, DNAS) in plain PyTorch.

The public API is imported on first use (PEP 562 `__getattr__`), so `import diffnas` does not import
torch: the `diffnas` command (`diffnas.cli:main`, `python -m diffnas`) imports this package before
its Ctrl-C guard can run, and torch takes seconds to import.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:   # what type checkers and editors see: the names below, with their own types
    from . import genotype
    from .config import SearchConfig, TrainConfig, search_config, train_config
    from .errors import DiffnasError, DiffnasWarning
    from .genotype import CellwiseGenotype, Genotype
    from .search import SearchResult, search
    from .train import TrainResult, train

# public name -> the module that defines it
_EXPORTS = {
    "CellwiseGenotype": "genotype", "Genotype": "genotype", "genotype": "genotype",
    "SearchConfig": "config", "TrainConfig": "config", "search_config": "config",
    "DiffnasError": "errors", "DiffnasWarning": "errors",
    "SearchResult": "search", "search": "search",
    "TrainResult": "train", "train": "train", "train_config": "config",
}
# _EXPORTS' names, written out: linters and type checkers read a literal list
__all__ = ["CellwiseGenotype", "DiffnasError", "DiffnasWarning", "Genotype", "SearchConfig", "SearchResult",
           "TrainConfig", "TrainResult", "genotype", "search", "search_config", "train", "train_config"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
    value = module if name == "genotype" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


class _Package(types.ModuleType):
    """`diffnas.search` and `diffnas.train` are the functions, also once their modules are imported
    (the import system binds each submodule it loads on its package; this drops those two)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("search", "train") and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
