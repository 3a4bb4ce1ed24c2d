"""Test-wide settings. Tests use tiny tensors, for which one intra-op thread is faster than several
(and immune to oversubscription when the cores are shared)."""

import sys
from pathlib import Path

import torch

torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).parent))  # helper modules beside the tests (fixtures, workers)
