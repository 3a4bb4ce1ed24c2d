"""Checkpoints: written atomically, read without running code, checked against the run's config.

A kill at any moment leaves either the previous checkpoint or the new one, never a torn file: it is
saved with `atomic.atomic_write_bytes`, fsynced and renamed over the old one.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import torch

from .atomic import atomic_write_bytes
from .errors import CheckpointError

FORMAT_VERSION = 1


def load_reason(e: Exception) -> str:
    """torch's complaint in a few words: its first sentence, cut at a word, or the exception's name
    when the message says nothing (a bare number, as an unpickling error can be)."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    text = text.split(". ")[0]
    if len(text) > 100:
        text = text[:100].rsplit(" ", 1)[0] + " ..."
    return text if any(c.isalpha() for c in text) else type(e).__name__


def torch_saved(path: Path) -> bool:
    """Whether the file could be one torch.save wrote: a zip archive (a legacy one: a pickle), or one
    cut short (zeros: what a crash can leave of a file's blocks); anything else never was."""
    with open(path, "rb") as f:
        head = f.read(4)
    return not head.strip(b"\0") or head.startswith(b"PK\x03\x04") or head.startswith(b"\x80")


def save(path: Path, state: dict[str, Any], config: dict[str, Any]) -> None:
    """Save `state` (tensors, numbers, strings, nested dicts/lists) with the config that made it."""
    buf = io.BytesIO()
    torch.save({"format_version": FORMAT_VERSION, "config": config, "state": state}, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def load(path: Path, config: dict[str, Any] | None = None,
         ignore: tuple[str, ...] = (), defaults: dict[str, Any] | None = None,
         mapped: bool = False) -> dict[str, Any]:
    """Load a checkpoint with `weights_only=True` (no code can run) and check it fits `config`.

    Keys in `ignore` may differ (e.g. epochs when extending a run, device, run_dir). A key missing
    from the saved config (a field added after the run was made) counts as `defaults[key]`: new
    fields default to the behaviour that came before them. `mapped`: the tensors are memory-mapped
    from the file, not read, for a reader of its small values (the epoch, the classes): a paper-size
    search's checkpoint is read in a tenth of a second instead of seconds.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint there")
    if not torch_saved(path):
        raise CheckpointError(f"{path}: not a checkpoint (not a file torch.save writes)")
    try:
        # torch 2.2 maps only a path given as str
        blob = torch.load(str(path), map_location="cpu", weights_only=True, mmap=mapped)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError... for bad files
        if any(w in str(e).lower() for w in ("unsupported global", "unsupported class")):   # code it will not run
            raise CheckpointError(f"{path}: not a valid diffnas checkpoint, refused to load: it holds Python "
                                  f"objects besides tensors and plain values, and loading them could run code "
                                  f"(diffnas writes none)") from None
        raise CheckpointError(f"{path}: not a valid diffnas checkpoint ({path.stat().st_size:,} bytes, cut short "
                              f"or damaged: a copy that did not finish? {load_reason(e)}); put back a good copy of "
                              f"it (without one the run cannot be resumed or evaluated)") from None
    if not isinstance(blob, dict) or "format_version" not in blob or "state" not in blob:
        raise CheckpointError(f"{path}: not a diffnas checkpoint")
    if blob["format_version"] != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {blob['format_version']}, "
                              f"this diffnas reads version {FORMAT_VERSION}")
    if config is not None:
        saved = {**(defaults or {}), **blob.get("config", {})}
        diffs = [k for k in sorted(set(saved) | set(config))
                 if k not in ignore and saved.get(k) != config.get(k)]
        if diffs:
            k = diffs[0]
            raise CheckpointError(f"{path}: checkpoint was made with a different configuration "
                                  f"({k}: checkpoint {saved.get(k)!r}, now {config.get(k)!r}"
                                  + (f", and {len(diffs) - 1} more" if len(diffs) > 1 else "") + ")")
    return blob["state"]


class _Loadable(Protocol):
    """Anything else with a state to load (a loop's parts: loop.Stateful)."""

    def load_state_dict(self, state: dict[str, Any]) -> Any: ...


def restore(target: torch.nn.Module | torch.optim.Optimizer | _Loadable, saved: Any, key: str, path: Path) -> None:
    """Load `saved` (the checkpoint's entry `key`) into a module or an optimiser; CheckpointError, on
    one line, when it does not fit: a checkpoint edited, or made for another network (genotype, size)."""
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path}: the checkpoint has no usable {key!r} state")
    if isinstance(target, torch.nn.Module):
        problem = _mismatch(target.state_dict(), saved)
        if problem:
            raise CheckpointError(f"{path}: the checkpoint's {key!r} weights do not fit this run's network "
                                  f"({problem}); was it made for another genotype or size, or edited?")
    try:
        target.load_state_dict(saved)
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: the checkpoint's {key!r} state does not fit this run "
                              f"({first[:200]})") from None


def _mismatch(own: dict[str, torch.Tensor], saved: dict[str, Any]) -> str:
    """What differs between a module's state_dict and a saved one, in words ('' when they fit)."""
    missing = [k for k in own if k not in saved]
    unexpected = [k for k in saved if k not in own]
    shapes = [k for k in own if k in saved and (not isinstance(saved[k], torch.Tensor)
                                                or saved[k].shape != own[k].shape)]
    parts = [f"{len(keys)} {what}, first {keys[0]!r}" for keys, what in
             ((missing, "missing"), (unexpected, "unexpected"), (shapes, "of another shape")) if keys]
    return "; ".join(parts)


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states, as tensors and plain values (weights_only-loadable)."""
    # the legacy tuple (the global RandomState is MT19937); numpy's stubs say dict for the default legacy=True
    np_state = cast("tuple[str, np.ndarray, int, int, float]", np.random.get_state())
    state: dict[str, Any] = {
        "python": [list(random.getstate()[1]), random.getstate()[0], random.getstate()[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[1], tuple(py[0]), py[2]))
    np_state = state["numpy"]
    np.random.set_state((np_state[0], np_state[1].numpy().astype(np.uint32), *np_state[2:]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        # one state per GPU the saving process saw: a resume on a machine with fewer (8 GPUs, then 1) restores
        # those it has (set_rng_state_all would fail on the first GPU missing), a machine with more the rest
        # keep their seeds
        for index, saved in enumerate(state["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(saved, index)
