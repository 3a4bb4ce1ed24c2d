"""diffnas: differentiable neural architecture search (DARTS, PC-DARTS, FairDARTS, DNAS) in plain PyTorch."""

from . import genotype
from .config import SearchConfig, TrainConfig, search_config
from .errors import DiffnasError
from .genotype import CellwiseGenotype, Genotype
from .search import SearchResult, search
from .train import TrainResult, train, train_config

__all__ = ["CellwiseGenotype", "DiffnasError", "Genotype", "SearchConfig", "SearchResult", "TrainConfig",
           "TrainResult", "genotype", "search", "search_config", "train", "train_config"]
__version__ = "0.1.0"
