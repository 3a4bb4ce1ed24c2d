"""`diffnas download NAME`: fetch a dataset from its official address, check it, unpack it safely.

The files land where `load_dataset(NAME, data_dir)` looks: archives are unpacked into data_dir
(cifar-10-batches-py/, cifar-100-python/, tiny-imagenet-200/), single files go to data_dir/NAME/.
URLs and MD5 checksums are those of torchvision.datasets (cifar.py, mnist.py, svhn.py), which
copies them from the datasets' home pages; Tiny-ImageNet's is the cs231n archive.
"""

from __future__ import annotations

import hashlib
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from tqdm import tqdm

from ..errors import DataError, suggest
from ..notices import bar_settings, progress_shown, say
from ..runfolder import missing_folders, remove_empty_folders

CHUNK = 1 << 20  # bytes read per step while streaming and hashing


@dataclass(frozen=True)
class Remote:
    url: str
    md5: str


@dataclass(frozen=True)
class Source:
    files: tuple[Remote, ...]
    folder: str  # where the downloads go, relative to data_dir ("" = data_dir)
    result: str  # the folder load_dataset reads, relative to data_dir
    ready: str  # a file that exists once the dataset is in place, relative to data_dir


_MNIST = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # torchvision's mirror of yann.lecun.com
_FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"  # zalandoresearch/fashion-mnist
_SVHN = "http://ufldl.stanford.edu/housenumbers/"

SOURCES: dict[str, Source] = {
    "cifar10": Source((Remote("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                              "c58f30108f718f92721af3b95e74349a"),),
                      "", "cifar-10-batches-py", "cifar-10-batches-py/test_batch"),
    "cifar100": Source((Remote("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                               "eb9058c3a382ffc7106e4002c42a8d85"),),
                       "", "cifar-100-python", "cifar-100-python/test"),
    "mnist": Source((Remote(_MNIST + "train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
                     Remote(_MNIST + "train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
                     Remote(_MNIST + "t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
                     Remote(_MNIST + "t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c")),
                    "mnist", "mnist", "mnist/t10k-labels-idx1-ubyte.gz"),
    "fashion-mnist": Source((
        Remote(_FASHION + "train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        Remote(_FASHION + "train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        Remote(_FASHION + "t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        Remote(_FASHION + "t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310")),
        "fashion-mnist", "fashion-mnist", "fashion-mnist/t10k-labels-idx1-ubyte.gz"),
    "svhn": Source((Remote(_SVHN + "train_32x32.mat", "e26dedcc434d2e4c54c9b2d4a06d8373"),
                    Remote(_SVHN + "test_32x32.mat", "eb5a983be6a315427106f1b7e7ab5d3f")),
                   "svhn", "svhn", "svhn/test_32x32.mat"),
    "tiny-imagenet": Source((Remote("http://cs231n.stanford.edu/tiny-imagenet-200.zip",
                                    "90528d7ca1a48142e341f4ef8d21d0de"),),
                            "", "tiny-imagenet-200", "tiny-imagenet-200/val/val_annotations.txt"),
}


def download(name: str, data_dir: Path) -> Path:
    """Download, verify and unpack dataset `name` under `data_dir`; return the folder to load.

    Files already present with the right checksum are not fetched again; a dataset already
    unpacked is left as it is.
    """
    source = SOURCES.get(name)
    if source is None:
        raise DataError(f"cannot download {name!r}{suggest(name, SOURCES)}; downloadable: {', '.join(SOURCES)} "
                        "(digits is embedded, synthetic is generated, imagefolder is your own folder)")
    data_dir = Path(data_dir).expanduser()
    if (data_dir / source.ready).is_file():
        return data_dir / source.result
    folder = data_dir / source.folder
    created = missing_folders(folder)   # removed again when nothing lands in them (a failed fetch)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for remote in source.files:
            path = folder / PurePosixPath(remote.url).name
            good = path.is_file() and md5_of(path) == remote.md5
            if path.is_file() and not good:   # a partial or other file: said, then replaced
                say(f"diffnas: {path}: not the published file (md5 differs: cut short or changed?); fetching it "
                    f"again")
            if not good:
                fetch(remote.url, path, remote.md5)
            if path.name.endswith((".tar.gz", ".tgz", ".tar")):
                extract_tar(path, data_dir)
            elif path.suffix == ".zip":
                extract_zip(path, data_dir)
    except BaseException:
        remove_empty_folders(created)   # one holding a verified file stays for a retry
        raise
    if not (data_dir / source.ready).is_file():
        raise DataError(f"{name}: downloaded and unpacked, but {data_dir / source.ready} is missing")
    return data_dir / source.result


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)  # integrity against the published sums, not security
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(url: str, path: Path, md5: str) -> None:
    """Stream `url` to `path` (via path.part), hashing as it goes; a checksum mismatch is an error."""
    part = path.with_name(path.name + ".part")
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=path.name, **bar_settings(),
                      disable=not progress_shown()) as bar:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, ValueError) as e:
        part.unlink(missing_ok=True)
        raise DataError(f"{url}: download failed ({e})") from None
    if digest.hexdigest() != md5:
        part.unlink()
        raise DataError(f"{url}: md5 {digest.hexdigest()} does not match the published {md5} "
                        "(corrupt or changed download; nothing was kept)")
    part.replace(path)


def _check_member(archive: Path, name: str) -> None:
    """Refuse archive members that would land outside the destination."""
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or ".." in posix.parts or ".." in windows.parts:
        raise DataError(f"{archive}: refused member {name!r} (absolute path or '..'); the archive is unsafe")


def extract_tar(archive: Path, dest: Path) -> None:
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(archive, member.name)
                if not (member.isfile() or member.isdir()):
                    raise DataError(f"{archive}: refused member {member.name!r} (links and devices are not "
                                    "part of a dataset archive)")
            # Python >= 3.11.4 also has the stdlib's own "data" filter; use it where present
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, members=members, filter="data")
            else:
                tar.extractall(dest, members=members)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"{archive}: cannot unpack ({e})") from None


def extract_zip(archive: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                _check_member(archive, name)
            zf.extractall(dest)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise DataError(f"{archive}: cannot unpack ({e})") from None
