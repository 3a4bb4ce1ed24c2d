"""A cache of decoded image files: one .npz per folder, so a search, train, evaluate or resume decodes once.

Decoding 60,000 JPEGs takes tens of seconds; reading them back from one uncompressed .npz takes well
under one. The cache folder is $DIFFNAS_CACHE_DIR, else $XDG_CACHE_HOME/diffnas, else ~/.cache/diffnas;
DIFFNAS_CACHE_DIR=off (or empty) turns the cache off. A file is keyed by a hash of the resolved folder,
every file's relative path, size and mtime, image_size and the reader's version (`VERSION`, Pillow's),
so any change to the folder misses and the next decode replaces the stale file. Files are written
atomically (temp file + rename), read with allow_pickle=False, and one that cannot be read, or does not
hold what the listing says, is ignored and rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import PIL

from ..distributed import is_main
from ..errors import reading
from ..notices import say

# bump when formats.read_images decodes differently: every older cache file misses (2: 16-bit images rescaled)
VERSION = 2
ENV = "DIFFNAS_CACHE_DIR"
TMP_MAX_AGE = 24 * 3600  # seconds after which a temp file left by a killed writer is removed


def cache_dir() -> Path | None:
    """The cache folder, or None when DIFFNAS_CACHE_DIR is "off" or empty, or names something that is
    not a folder (said: it gave "ignoring unreadable cache file ... NotADirectoryError", then "could
    not write ... File exists")."""
    value = os.environ.get(ENV)
    if value is not None:
        if value.strip() in ("", "off"):
            return None
        folder = Path(value).expanduser()
        if folder.exists() and not folder.is_dir():
            _notice(f"{ENV}={value} is not a folder: decoded images are not cached (name a folder, or off)")
            return None
        return folder
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"  # XDG: ignore relative values
    return base / "diffnas"


def _stat(path: Path) -> tuple[int, int, int, int]:
    """What says a file changed: its size, modification time, and inode change time and number (a
    file rewritten at the same size with its modification time put back, as `cp -p`, `rsync -t` or
    tar do, has a new ctime, which no user can set)."""
    with reading(path):
        st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def cache_key(root: Path, files: Sequence[Path], image_size: int, rgb: bool) -> tuple[str, str]:
    """(hash of the resolved folder, hash of everything the decoded arrays depend on).

    `files` are the image files in decode order plus any listing files (annotations) that set labels.
    """
    folder = str(root.resolve())
    listing = [(str(p.relative_to(root)) if p.is_relative_to(root) else str(p.resolve()), *_stat(p)) for p in files]
    payload = json.dumps([folder, listing, image_size, rgb, VERSION, PIL.__version__])
    return (hashlib.sha256(folder.encode()).hexdigest()[:16], hashlib.sha256(payload.encode()).hexdigest()[:32])


def _notice(text: str) -> None:
    """One line on stderr, from the main process only (every torchrun rank loads the data)."""
    if is_main():
        say(f"diffnas: {text}")


def _read(path: Path, n: int, labels: np.ndarray, classes: Sequence[str]) -> np.ndarray | None:
    """The cached images if `path` holds images for exactly this listing, else None (with a notice if broken)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            images, stored_labels, stored_classes = npz["images"], npz["labels"], npz["classes"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError, KeyError, TypeError, AttributeError, zipfile.BadZipFile, zlib.error) as e:
        # numpy's "load it unsafely using allow_pickle=" is advice for its caller, not for a user
        why = "it holds pickled objects, which are never loaded" if "allow_pickle" in str(e) else \
            f"{type(e).__name__}: {e}"
        _notice(f"ignoring unreadable cache file {path} ({why})")
        return None
    if not (images.dtype == np.uint8 and images.ndim == 4 and len(images) == n
            and np.array_equal(stored_labels, labels) and stored_classes.tolist() == list(classes)):
        _notice(f"ignoring cache file {path}: it does not match the folder")
        return None
    return images


def _write(path: Path, images: np.ndarray, labels: np.ndarray, classes: Sequence[str], stale: str) -> None:
    """Write atomically; remove older files of the same folder and size (`stale`: their glob, without .npz). Failures only print a notice."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp",
                                         delete=False) as f:
            tmp = Path(f.name)
            np.savez(f, images=images, labels=labels, classes=np.asarray(list(classes), dtype=str))
        os.replace(tmp, path)
        tmp = None
        for old in path.parent.glob(f"{stale}.npz"):
            if old != path:
                old.unlink(missing_ok=True)
        for old in path.parent.glob(f".{stale}.*.tmp"):   # left by a writer that was killed
            if time.time() - old.stat().st_mtime > TMP_MAX_AGE:
                old.unlink(missing_ok=True)
    except OSError as e:
        _notice(f"could not write the decoded-image cache {path} ({e.strerror or e}); set {ENV}=off to stop trying")
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def decoded(name: str, root: Path, files: Sequence[Path], labels: np.ndarray, classes: Sequence[str],
            image_size: int, rgb: bool, decode: Callable[[], np.ndarray]) -> np.ndarray:
    """`decode()` (uint8 (N, C, H, W) of the first len(labels) of `files`), or the same array from the cache.

    labels: every image's label in decode order (train then test); classes: the class names. Both are
    stored beside the images and must match on reading.
    """
    folder = cache_dir()
    if folder is None:
        return decode()
    root_hash, key = cache_key(root, files, image_size, rgb)
    # one file per (folder, size, channels): a folder read at two sizes keeps both; a changed folder
    # replaces its file of that size
    prefix = f"{name}-{root_hash}-s{image_size}{'rgb' if rgb else 'any'}"
    path = folder / f"{prefix}-{key}.npz"
    images = _read(path, len(labels), labels, classes)
    if images is not None:
        _notice(f"{name}: decoded images from cache ({path})")
        return images
    if any(old != path for old in folder.glob(f"{prefix}-*.npz")):   # a cache of this folder, for other files
        _notice(f"{name}: {root} changed since its images were cached (files added, removed or modified): "
                f"decoding them again")
    images = decode()
    _write(path, images, labels, classes, stale=f"{prefix}-*")
    return images
