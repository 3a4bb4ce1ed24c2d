"""Test-wide settings. Tests use tiny tensors, for which one intra-op thread is faster than several
(and immune to oversubscription when the cores are shared)."""

import os
import sys
from pathlib import Path

import torch

torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).parent))  # helper modules beside the tests (fixtures, workers)
# the decoded-image cache (diffnas/data/cache.py) stays off in tests, so nothing is written to ~/.cache
# and no test sees another's cache; tests of the cache set their own folder with monkeypatch.setenv.
# Set here, at import, so subprocesses started by tests inherit it too.
os.environ["DIFFNAS_CACHE_DIR"] = "off"

# Property tests draw the same examples on every run (a CI failure reproduces on any machine) and
# keep no example database (hypothesis still caches constants in .hypothesis/, which git ignores).
try:
    from hypothesis import settings
except ImportError:   # the property tests import it themselves and say so
    pass
else:
    settings.register_profile("diffnas", derandomize=True, database=None)
    settings.load_profile("diffnas")
