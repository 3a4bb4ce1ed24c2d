"""diffnas.data: readers against files in the real formats, augmentation invariants, exact batching."""

from __future__ import annotations

import gzip
import colorsys
import hashlib
import importlib
import itertools
import math
import io
import os
import shutil
import struct
import time
import pickle
import re
import tarfile
import warnings
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
import formats_fixtures
from formats_fixtures import (idx_bytes, write_cifar10, write_cifar100, write_image, write_image_folder, write_mnist,
                              write_mnist_npz, write_svhn, write_tiny_imagenet)

from diffnas.data import (DATASETS, Augment, Batches, Split, cutout, download, load_dataset, random_crop, random_flip,
                          search_split, subset)
from diffnas.config import TrainConfig, from_dict
from diffnas.data.augment import (BRIGHTNESS, CONTRAST, HUE, SATURATION, cut, draw_crop, draw_flip, draw_jitter,
                                  draw_resized_crop, jitter, resize_centre_crop, resized_crop, resized_shape, shift_hue)
from diffnas.data import formats
from diffnas.data.types import channel_stats
from diffnas.errors import ConfigError, DataError
from diffnas.notices import command_line

# the package re-exports the function `download`, which hides the module of the same name
download_module = importlib.import_module("diffnas.data.download")


def assert_matches(ds, arrays, atol=0):
    for part in ("train", "test"):
        split = getattr(ds, part)
        assert split.images.dtype == torch.uint8 and split.labels.dtype == torch.int64
        expected = arrays[f"{part}_images"]
        assert split.images.shape == expected.shape
        diff = np.abs(split.images.numpy().astype(int) - expected.astype(int)).max()
        assert diff <= atol, f"{part} images differ by {diff}"
        np.testing.assert_array_equal(split.labels.numpy(), arrays[f"{part}_labels"])
    assert ds.shape == tuple(arrays["train_images"].shape[1:])
    assert len(ds.mean) == len(ds.std) == ds.shape[0]


# ---------------------------------------------------------------------------------------------- formats

def test_cifar10_reads_official_pickles_from_root_or_inner_folder(tmp_path):
    arrays = write_cifar10(tmp_path)
    ds = load_dataset("cifar10", tmp_path)
    assert_matches(ds, arrays)
    assert ds.classes == 10 and ds.shape == (3, 32, 32) and len(ds.train) == 15
    assert_matches(load_dataset("cifar10", tmp_path / "cifar-10-batches-py"), arrays)


def test_cifar100_reads_fine_labels(tmp_path):
    arrays = write_cifar100(tmp_path)
    ds = load_dataset("cifar100", str(tmp_path))
    assert_matches(ds, arrays)
    assert ds.classes == 100


def test_cifar_accepts_pickles_written_by_numpy_2(tmp_path):
    arrays = write_cifar10(tmp_path)
    x, y = arrays["test_images"], arrays["test_labels"]
    data = pickle.dumps({b"data": x.reshape(len(x), -1), b"labels": [int(v) for v in y]}, protocol=4)
    assert b"_reconstruct" in data
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(data)
    np.testing.assert_array_equal(load_dataset("cifar10", tmp_path).test.images.numpy(), x)


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("kind", ["global_opcode", "reduce", "nested", "eval"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, kind):
    write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    payload = {
        # protocol 0 text, spelled exactly as an attacker would: GLOBAL 'os system'
        "global_opcode": f"cos\nsystem\n(S'touch {marker}'\ntR.".encode(),
        "reduce": pickle.dumps(_Evil(marker), protocol=2),
        "nested": pickle.dumps({b"data": [_Evil(marker)], b"labels": []}, protocol=4),
        "eval": f"cbuiltins\neval\n(S'open({str(marker)!r}, \"w\")'\ntR.".encode(),
    }[kind]
    path = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    path.write_bytes(payload)
    with pytest.raises(DataError, match="refused pickle global") as info:
        load_dataset("cifar10", tmp_path)
    assert str(path) in str(info.value)
    if kind == "global_opcode":
        assert "refused pickle global os.system" in str(info.value)
    if kind == "eval":
        assert "builtins.eval" in str(info.value)
    assert not marker.exists()


def test_truncated_pickle_names_the_file(tmp_path):
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError, match="truncated or corrupt pickle") as info:
        load_dataset("cifar10", tmp_path)
    assert str(path) in str(info.value)


def test_a_compressed_cifar_batch_is_named_as_such(tmp_path):
    """A batch gzipped on its own read "truncated or corrupt pickle (UnpicklingError: invalid load key,
    '\\x1f')" (review)."""
    import gzip

    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    path.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(DataError, match=f"^{re.escape(str(path))}: gzip-compressed, not a pickle; decompress it"):
        load_dataset("cifar10", tmp_path)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize("gz", [True, False])
def test_idx_gzipped_or_plain(tmp_path, name, gz):
    arrays = write_mnist(tmp_path / name, gz=gz)
    ds = load_dataset(name, tmp_path)
    assert_matches(ds, arrays)
    assert ds.shape == (1, 28, 28) and ds.classes == 10


def test_idx_in_the_torchvision_layout_given_directly(tmp_path):
    arrays = write_mnist(tmp_path / "MNIST" / "raw", gz=False)
    assert_matches(load_dataset("mnist", tmp_path), arrays)
    assert_matches(load_dataset("mnist", tmp_path / "MNIST" / "raw"), arrays)


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("change", [-100, 5])
def test_idx_header_that_disagrees_with_the_size(tmp_path, gz, change):
    write_mnist(tmp_path, gz=gz)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    data = idx_bytes(np.zeros((7, 28, 28), np.uint8))  # the header says 7 images
    data = data[:change] if change < 0 else data + bytes(change)
    (tmp_path / name).write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(DataError) as info:
        load_dataset("mnist", tmp_path)
    message = str(info.value)
    values = 7 * 28 * 28
    # a longer .gz is read only as far as one byte past the values its header announces
    holds = f"more than {values}" if gz and change > 0 else str(len(data) - 16)
    assert message == (f"{tmp_path / name}{' (decompressed)' if gz else ''}: the IDX header says 7x28x28 = "
                       f"{values} values after its 16-byte header, but the file holds {holds} bytes after it")


@pytest.mark.parametrize("gz", [True, False])
def test_idx_files_named_as_kaggles_upload_are_found(tmp_path, gz):
    """train-images.idx3-ubyte (a dot before idx3, as a widely shared Kaggle upload names them) was "no
    train-images-idx3-ubyte"."""
    arrays = write_mnist(tmp_path, gz=gz)
    for path in tmp_path.iterdir():
        path.rename(path.with_name(re.sub(r"-(idx\d-ubyte)", r".\1", path.name)))
    assert (tmp_path / ("t10k-labels.idx1-ubyte" + (".gz" if gz else ""))).is_file()
    assert_matches(load_dataset("mnist", tmp_path), arrays)


def test_swapped_idx_images_and_labels_are_said_to_be_swapped(tmp_path):
    write_mnist(tmp_path, gz=False)
    images, labels = tmp_path / "train-images-idx3-ubyte", tmp_path / "train-labels-idx1-ubyte"
    images.rename(tmp_path / "x")
    labels.rename(images)
    (tmp_path / "x").rename(labels)
    with pytest.raises(DataError, match=r"magic number 0x00000801, expected 0x00000803 \(unsigned bytes, 3 "
                                        r"dimensions\) \(it is a labels file: are the images and labels files "
                                        r"swapped\?\)$"):
        load_dataset("mnist", tmp_path)


def test_idx_wrong_magic(tmp_path):
    write_mnist(tmp_path, gz=False)
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(idx_bytes(np.zeros((3, 2), np.uint8)))  # 2 dimensions where labels have 1
    with pytest.raises(DataError, match="magic number") as info:
        load_dataset("mnist", tmp_path)
    assert str(path) in str(info.value)


def test_svhn_mat_files_and_label_10_is_digit_0(tmp_path):
    arrays = write_svhn(tmp_path / "svhn")
    ds = load_dataset("svhn", tmp_path)
    assert_matches(ds, arrays)
    assert ds.train.labels[0] == 0 and ds.shape == (3, 32, 32)


def test_tiny_imagenet_layout_with_val_as_test(tmp_path):
    arrays = write_tiny_imagenet(tmp_path)
    ds = load_dataset("tiny-imagenet", tmp_path)
    assert_matches(ds, arrays, atol=3)  # JPEG at quality 100 moves flat colours by a unit or two
    assert ds.classes == 3 and ds.shape == (3, 64, 64)
    assert len(ds.train) == 6 and len(ds.test) == 4
    # a copy through macOS or an exFAT drive: ._name.JPEG resource forks beside the images failed the load
    images = tmp_path / "tiny-imagenet-200" / "train" / "n01" / "images"
    (images / f"._{sorted(images.iterdir())[0].name}").write_bytes(b"\x00\x05\x16\x07" + bytes(60))
    assert_matches(load_dataset("tiny-imagenet", tmp_path), arrays, atol=3)


def test_tiny_imagenet_with_val_laid_out_by_class_says_so(tmp_path):
    """val/<wnid>/images/*.JPEG (reorganised for an ImageFolder) read 'val/images/val_0.JPEG: no such file;
    try diffnas download tiny-imagenet' (review)."""
    write_tiny_imagenet(tmp_path)
    val = tmp_path / "tiny-imagenet-200" / "val"
    for image in sorted((val / "images").iterdir()):
        (val / "n01" / "images").mkdir(parents=True, exist_ok=True)
        image.rename(val / "n01" / "images" / image.name)
    (val / "images").rmdir()
    with pytest.raises(DataError, match=r"val: laid out by class \(n01/\), as a script that reorganises "
                                        r"Tiny-ImageNet leaves it; .*unpack the download again, or read train/ and "
                                        r"val/ as an image folder"):
        load_dataset("tiny-imagenet", tmp_path)


def test_tiny_imagenet_read_as_an_image_folder_says_which_dataset_reads_it(tmp_path):
    """'has no test/' was all a user read who named --dataset imagefolder for it."""
    write_tiny_imagenet(tmp_path)
    with command_line():
        with pytest.raises(DataError, match=r"tiny-imagenet-200 is Tiny-ImageNet's layout \(wnids.txt, train/, "
                                            r"val/\), not an image folder: read it with --dataset tiny-imagenet$"):
            load_dataset("imagefolder", tmp_path / "tiny-imagenet-200")
        # as downloaded: an unlabelled test/images/ too ("class 'images' is not among the training classes")
        (tmp_path / "tiny-imagenet-200" / "test" / "images").mkdir(parents=True)
        with pytest.raises(DataError, match=r"is Tiny-ImageNet's layout"):
            load_dataset("imagefolder", tmp_path / "tiny-imagenet-200")


def test_image_folder_of_train_and_val_reads_val_as_the_test_split(tmp_path, capsys):
    """DIR/train + DIR/val (ImageNet's, torchvision's and Kaggle's layout) was told "has no test/ ...;
    point --data-dir at the folder that holds train/ and test/", the folder it named."""
    arrays = write_image_folder(tmp_path)
    (tmp_path / "test").rename(tmp_path / "val")
    ds = load_dataset("imagefolder", tmp_path)
    assert_matches(ds, arrays)
    assert f"imagefolder: {tmp_path} has no test/; its val/ is the test split" in capsys.readouterr().err
    # Tiny-ImageNet whose val/ a script laid out by class (wnids.txt and all): an image folder like any
    tiny = tmp_path / "tiny"
    shutil.copytree(tmp_path, tiny, ignore=shutil.ignore_patterns("tiny"))
    (tiny / "wnids.txt").write_text("cat\ndog\n")
    assert_matches(load_dataset("imagefolder", tiny), arrays)
    (tmp_path / "val").rename(tmp_path / "holdout")
    # train/ alone: told to hold images out, not to point at a folder that holds train/ (this one does)
    with pytest.raises(DataError, match=r"has no test/ \(expected .*, or val/ for test/\); hold some images of each "
                                        r"class out in test/<class>/ \(or val/<class>/\): the training and "
                                        r"evaluation score them$"):
        load_dataset("imagefolder", tmp_path)


def test_tiny_imagenet_class_without_images_or_unlisted_is_refused(tmp_path):
    write_tiny_imagenet(tmp_path)
    base = tmp_path / "tiny-imagenet-200"
    (base / "train" / "n04" / "images").mkdir(parents=True)   # a folder wnids.txt does not list
    with pytest.raises(DataError, match=r"train/n04: a class folder that wnids.txt does not list$"):
        load_dataset("tiny-imagenet", tmp_path)
    shutil.rmtree(base / "train" / "n04")
    (base / "train" / ".ipynb_checkpoints").mkdir()   # hidden: not a class, as in an image folder
    assert load_dataset("tiny-imagenet", tmp_path).classes == 3
    for image in (base / "train" / "n02" / "images").iterdir():   # a listed class emptied
        image.unlink()
    with pytest.raises(DataError, match=r"n02/images: no images \(wnids.txt lists n02"):
        load_dataset("tiny-imagenet", tmp_path)


@pytest.mark.parametrize("channels", [1, 3])
def test_image_folder_keeps_grayscale_and_computes_stats(tmp_path, channels):
    arrays = write_image_folder(tmp_path, channels=channels)
    ds = load_dataset("imagefolder", tmp_path)
    assert_matches(ds, arrays)
    assert ds.classes == 2 and ds.shape == (channels, 6, 5)
    pixels = arrays["train_images"].astype(np.float64) / 255
    np.testing.assert_allclose(ds.mean, pixels.mean(axis=(0, 2, 3)), atol=1e-9)
    np.testing.assert_allclose(ds.std, pixels.std(axis=(0, 2, 3)), atol=1e-9)


def test_image_folder_with_a_constant_channel_is_normalised_by_1(tmp_path, capsys):
    """A folder whose blue channel is 0 everywhere loaded, then the first step's loss was NaN (std 0)
    and the error advised a lower learning rate; it was then refused, though two-colour fluorescence
    images are data like any: that channel is divided by 1, and said. Blank images are refused."""
    from PIL import Image

    write_image_folder(tmp_path)
    for path in (tmp_path / "train").rglob("*.png"):
        pixels = np.asarray(Image.open(path)).copy()
        pixels[..., 2] = 0
        Image.fromarray(pixels).save(path)
    capsys.readouterr()
    ds = load_dataset("imagefolder", tmp_path)
    pixels = ds.train.images.numpy() / 255
    np.testing.assert_allclose(ds.std[:2], pixels[:, :2].std(axis=(0, 2, 3)), atol=1e-9)
    assert ds.std[2] == 1.0 and ds.mean[2] == 0.0
    assert capsys.readouterr().err == ("diffnas: note: imagefolder: channel 2 of the training images is constant "
                                       "(every value 0): normalised by std 1 instead of 0\n")
    for path in (tmp_path / "train").rglob("*.png"):
        Image.fromarray(np.full((6, 5, 3), 7, np.uint8)).save(path)
    with pytest.raises(DataError, match=r"imagefolder: channel 0 of the training images is constant "
                                        r"\(std 0, every value 7\), as every channel is: the images hold nothing"):
        load_dataset("imagefolder", tmp_path)


def test_a_label_count_that_differs_from_the_image_count_is_said_in_counts():
    from diffnas.data.types import make_split

    with pytest.raises(DataError, match="^x train: 4 images but 3 labels$"):
        make_split("x", "train", np.zeros((4, 1, 2, 2), np.uint8), np.zeros(3, np.int64), 2)


def test_image_folder_mixed_modes_become_rgb(tmp_path):
    arrays = write_image_folder(tmp_path, channels=1)
    colour = np.random.default_rng(1).integers(0, 256, (3, 6, 5), dtype=np.uint8)
    write_image(tmp_path / "test" / "cat" / "9.png", colour)
    ds = load_dataset("imagefolder", tmp_path)
    assert ds.shape == (3, 6, 5)
    np.testing.assert_array_equal(ds.train.images[0].numpy(), np.repeat(arrays["train_images"][0], 3, axis=0))


def test_a_palette_image_with_transparency_is_its_colours_without_pillows_warning(tmp_path, recwarn):
    """Pillow warned 'Palette images with Transparency expressed in bytes should be converted to RGBA
    images' on stderr, raw, for each such PNG (review)."""
    from PIL import Image

    from diffnas.data.formats import read_images

    palette = np.array([[10, 20, 30], [40, 50, 60], [70, 80, 90], [200, 210, 220]], np.uint8)
    index = np.random.default_rng(0).integers(0, 4, (5, 6)).astype(np.uint8)
    image = Image.fromarray(index, "P")
    image.putpalette(palette.flatten().tolist())
    image.save(tmp_path / "p.png", transparency=bytes([0, 128, 255, 255]))
    out = read_images([tmp_path / "p.png"], rgb=True)
    np.testing.assert_array_equal(out[0], palette[index].transpose(2, 0, 1))   # the palette's colours
    assert not [w for w in recwarn if "Palette" in str(w.message)]


def test_sixteen_bit_images_are_rescaled_and_float_images_refused(tmp_path, capsys):
    """A 16-bit PNG (scientific and medical folders hold them) is v * 255 / 65535, rounded; Pillow's
    own convert would clip it to 0..255. Float images have no range in the file: refused."""
    from PIL import Image

    from diffnas.data.formats import read_images

    ramp = (np.arange(48, dtype=np.uint16) * 1393).reshape(6, 8)   # 0 .. 65471
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    out = read_images([tmp_path / "deep.png"])
    assert out.shape == (1, 1, 6, 8)
    np.testing.assert_array_equal(out[0, 0], np.floor(ramp / 257 + 0.5).astype(np.uint8))
    # a 16-bit PGM (P5, maxval 65535, big-endian samples), written by hand
    (tmp_path / "deep.pgm").write_bytes(b"P5\n8 6\n65535\n" + ramp.astype(">u2").tobytes())
    np.testing.assert_array_equal(read_images([tmp_path / "deep.pgm"])[0, 0], np.floor(ramp / 257 + 0.5))
    assert "16-bit" not in capsys.readouterr().err
    # 12-bit data in 16-bit files (a microscope's): 17 grey levels were left without a word
    Image.fromarray((np.arange(48, dtype=np.uint16) * 85).reshape(6, 8)).save(tmp_path / "twelve.png")   # 0..3995
    read_images([tmp_path / "twelve.png", tmp_path / "deep.png"])   # a dark file among full-range ones: no note
    assert "16-bit" not in capsys.readouterr().err
    assert len(np.unique(read_images([tmp_path / "twelve.png"]))) <= 17   # what the note says it keeps
    assert capsys.readouterr().err == (f"diffnas: note: {tmp_path / 'twelve.png'}: 16-bit, but its values stay below "
                                       f"4096 (12-bit data?); read as v * 255 / 65535 they keep at most 17 grey "
                                       f"levels: stretch them to the 16-bit range, or save them as 8-bit images, "
                                       f"first\n")
    Image.fromarray(np.linspace(0, 1, 48, dtype=np.float32).reshape(6, 8)).save(tmp_path / "float.tif")
    with pytest.raises(DataError, match="float.tif: a floating-point image .mode F., whose value range"):
        read_images([tmp_path / "float.tif"])


def test_image_folder_corrupt_file_is_named(tmp_path):
    write_image_folder(tmp_path)
    bad = tmp_path / "train" / "dog" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DataError, match="unreadable image") as info:
        load_dataset("imagefolder", tmp_path)
    assert str(bad) in str(info.value)
    assert "in all" not in str(info.value)   # one bad file: no list


def test_every_unreadable_image_is_found_in_one_decode(tmp_path):
    """The first bad file ended the decode: a folder with several took one slow decode per file to
    clean. All are found; the first is named with its reason, the count and a few more with it."""
    write_image_folder(tmp_path, per_class=3)
    bad = [tmp_path / part / "dog" / f"broken{i}.jpg" for part in ("train", "test") for i in range(3)]
    for path in bad:
        path.write_bytes(b"garbage")
    with pytest.raises(DataError) as info:
        load_dataset("imagefolder", tmp_path)
    text = str(info.value)
    assert text.startswith(f"{bad[0]}: unreadable image (") and "; 6 unreadable images in all, also: " in text
    assert all(str(path) in text for path in bad[1:4]) and text.endswith(", ...")
    (tmp_path / "train" / "cat" / "0.png").write_bytes(b"garbage")   # the first file: the size comes from the next
    for path in bad:
        path.unlink()
    with pytest.raises(DataError, match=r"0\.png: unreadable image \(") as info:
        load_dataset("imagefolder", tmp_path)


def test_image_folder_wrong_size_is_named_with_both_sizes(tmp_path):
    write_image_folder(tmp_path, size=(6, 5))
    bad = tmp_path / "test" / "dog" / "big.png"
    write_image(bad, np.zeros((3, 7, 9), np.uint8))
    with pytest.raises(DataError) as info:
        load_dataset("imagefolder", tmp_path)
    first = tmp_path / "train" / "cat" / "0.png"  # classes in sorted order: cat before dog
    message = str(info.value)
    assert f"{bad}: image is 9x7, but {first} is 5x6 (width x height)" in message and "image_size=N" in message


def _pil_resize_crop(array: np.ndarray, new_h: int, new_w: int, top: int, left: int, n: int) -> np.ndarray:
    """Reference with the resized size and crop corner written out by hand: Pillow's bilinear resize
    (what torchvision's Resize does to a PIL image), then the window, as (C, H, W)."""
    image = Image.fromarray(array.transpose(1, 2, 0)).resize((new_w, new_h), Image.Resampling.BILINEAR)
    return np.asarray(image).transpose(2, 0, 1)[:, top:top + n, left:left + n]


def _mixed_folder(tmp_path: Path) -> dict[str, np.ndarray]:
    """train/cat: 4x9, 7x4, 4x4 (shorter side 4: no resampling at image_size 4), train/dog: 12x20 and
    3x5 (downscaled, upscaled), test/cat and test/dog: 4x6, 4x4. Returns {relative path: (3, H, W)}."""
    rng = np.random.default_rng(5)
    sizes = {"train/cat/0.png": (4, 9), "train/cat/1.png": (7, 4), "train/cat/2.png": (4, 4),
             "train/dog/0.png": (12, 20), "train/dog/1.png": (3, 5), "test/cat/0.png": (4, 6),
             "test/dog/0.png": (4, 4)}
    arrays = {}
    for rel, (h, w) in sizes.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        arrays[rel] = rng.integers(0, 256, (3, h, w), dtype=np.uint8)
        write_image(tmp_path / rel, arrays[rel])
    return arrays


def test_image_size_decodes_a_mixed_folder_as_resize_then_centre_crop(tmp_path):
    a = _mixed_folder(tmp_path)
    with pytest.raises(DataError, match="image_size=N"):
        load_dataset("imagefolder", tmp_path)
    ds = load_dataset("imagefolder", tmp_path, image_size=4)
    assert ds.shape == (3, 4, 4) and (len(ds.train), len(ds.test)) == (5, 2)
    np.testing.assert_array_equal(ds.train.labels.numpy(), [0, 0, 0, 1, 1])
    got = ds.train.images.numpy()
    # shorter side already 4: exactly the centred window; its corner is round((side - 4) / 2), and
    # Python rounds 2.5 to 2 and 1.5 to 2 (half to even), as torchvision's center_crop does
    np.testing.assert_array_equal(got[0], a["train/cat/0.png"][:, :, 2:6])   # width 9: round(2.5) = 2
    np.testing.assert_array_equal(got[1], a["train/cat/1.png"][:, 2:6, :])   # height 7: round(1.5) = 2
    np.testing.assert_array_equal(got[2], a["train/cat/2.png"])
    np.testing.assert_array_equal(ds.test.images[0].numpy(), a["test/cat/0.png"][:, :, 1:5])
    # 12x20 -> 4x6 (int(4 * 20 / 12) = 6), window at column 1; 3x5 -> 4x6 (int(4 * 5 / 3) = 6)
    np.testing.assert_array_equal(got[3], _pil_resize_crop(a["train/dog/0.png"], 4, 6, 0, 1, 4))
    np.testing.assert_array_equal(got[4], _pil_resize_crop(a["train/dog/1.png"], 4, 6, 0, 1, 4))
    # the same images through the evaluation transform's tensor path (torch's antialiased bilinear,
    # float, no uint8 rounding between passes): within one unit
    for image, rel in ((got[3], "train/dog/0.png"), (got[4], "train/dog/1.png")):
        x = torch.from_numpy(a[rel])[None].float()
        np.testing.assert_allclose(image, resize_centre_crop(x, 4, 4)[0].round().numpy(), atol=1)
    # statistics are those of the decoded (resized) training images
    mean, std = channel_stats(got)
    np.testing.assert_allclose(ds.mean, mean)
    np.testing.assert_allclose(ds.std, std)


def test_image_size_keeps_grayscale_folders_one_channel(tmp_path):
    arrays = write_image_folder(tmp_path, size=(6, 5), channels=1)
    ds = load_dataset("imagefolder", tmp_path, image_size=5)
    assert ds.shape == (1, 5, 5)   # 6x5: shorter side 5 already, rows round(0.5) = 0 .. 5
    np.testing.assert_array_equal(ds.train.images.numpy(), arrays["train_images"][:, :, 0:5, :])
    # the files' own size given as image_size changes nothing
    square = write_image_folder(tmp_path / "sq", size=(5, 5))
    assert_matches(load_dataset("imagefolder", tmp_path / "sq", image_size=5), square)


def test_tiny_imagenet_with_image_size(tmp_path):
    arrays = write_tiny_imagenet(tmp_path)
    wide = tmp_path / "tiny-imagenet-200" / "train" / "n01" / "images" / "n01_wide.JPEG"
    write_image(wide, np.random.default_rng(3).integers(0, 256, (3, 40, 80), dtype=np.uint8))
    with pytest.raises(DataError, match=f"{wide}: image is 80x40, but .* is 64x64 \\(width x height\\); all images "
                                        "must share one size"):
        load_dataset("tiny-imagenet", tmp_path)
    # a photo stored on its side, which its EXIF tag turns for viewers: said (the viewer shows it 40x80)
    from PIL import Image

    with Image.open(wide) as im:
        exif = im.getexif()
        exif[0x0112] = 6   # "rotate 90 CW to display"
        im.save(wide, format="JPEG", exif=exif.tobytes())
    with pytest.raises(DataError, match=r"image is 80x40, but"):   # turned it would be 40x80: no hint
        load_dataset("tiny-imagenet", tmp_path)
    # one that, turned, has the others' size: said
    folder = tmp_path / "folder"
    write_image_folder(folder, size=(6, 5))   # 5 wide, 6 high
    turned = folder / "train" / "cat" / "turned.jpg"
    write_image(turned, np.zeros((3, 5, 6), np.uint8))   # 6 wide, 5 high
    with Image.open(turned) as im:
        exif = im.getexif()
        exif[0x0112] = 6
        im.save(turned, format="JPEG", exif=exif.tobytes())
    with pytest.raises(DataError, match=r"turned.jpg: image is 6x5 \(stored on its side: its EXIF orientation tag "
                                        r"turns it for viewers, but pixels are read as stored\), but"):
        load_dataset("imagefolder", folder)
    ds = load_dataset("tiny-imagenet", tmp_path, image_size=32)
    assert ds.shape == (3, 32, 32) and (len(ds.train), len(ds.test)) == (7, 4)
    # the sorted files of n01: n01_0, n01_1, n01_wide; the flat 64x64 colours stay flat at 32x32
    flat = np.delete(ds.train.images.numpy(), 2, axis=0)
    assert_matches(replace(ds, train=Split(torch.from_numpy(flat), ds.train.labels[[0, 1, 3, 4, 5, 6]])),
                   {k: v[..., :32, :32] if k.endswith("images") else v for k, v in arrays.items()}, atol=3)
    with Image.open(wide) as im:  # 40x80 -> 32x64, window at column 16; the same JPEG decode as the loader
        decoded = np.asarray(im.convert("RGB")).transpose(2, 0, 1)
    np.testing.assert_array_equal(ds.train.images[2].numpy(), _pil_resize_crop(decoded, 32, 64, 0, 16, 32))


@pytest.mark.parametrize("name,side", [("digits", 8), ("synthetic", 16)])
def test_fixed_size_formats_refuse_another_image_size(name, side):
    with pytest.raises(ConfigError, match=f"image_size: {name} images are {side}x{side}, fixed by the format; "
                                          "image_size resizes image files only .*tiny-imagenet.*imagefolder"):
        load_dataset(name, image_size=side + 1)
    assert load_dataset(name, image_size=side).shape[1:] == (side, side)   # their own side is no change
    with pytest.raises(ConfigError, match="image_size: must be an integer >= 0, got -1"):
        load_dataset(name, image_size=-1)


def test_cifar10_refuses_image_size_before_reading_files(tmp_path):
    with pytest.raises(ConfigError, match="cifar10 images are 32x32"):
        load_dataset("cifar10", tmp_path / "nowhere", image_size=64)


def test_decoding_more_than_the_memory_share_fails_before_decoding(tmp_path, monkeypatch):
    write_image_folder(tmp_path, size=(6, 5))   # 8 images
    (tmp_path / "train" / "dog" / "9.png").write_bytes(b"not an image")  # never reached: the check comes first
    monkeypatch.setattr(formats, "physical_memory", lambda: 900)  # 75%: 675 bytes
    # 9 RGB images of 6x5 = 810 bytes; the largest square that fits: isqrt(675 // 27) = 5
    with pytest.raises(DataError) as info:
        load_dataset("imagefolder", tmp_path)
    assert str(info.value) == ("9 images of 3x6x5 (their own size) need 810 B of memory as one uint8 array, more "
                               "than 75% of this machine's 900 B; pass a smaller image_size (at most 5: 675 B)")
    with pytest.raises(DataError, match=r"9 images of 3x6x6 \(image_size=6\) need 972 B"):
        load_dataset("imagefolder", tmp_path, image_size=6)
    with pytest.raises(DataError, match="9.png: unreadable image"):   # 5x5 fits: decoding starts
        load_dataset("imagefolder", tmp_path, image_size=5)
    monkeypatch.setattr(formats, "physical_memory", lambda: 10)
    with pytest.raises(DataError, match="use fewer images"):
        load_dataset("imagefolder", tmp_path, image_size=1)
    monkeypatch.setattr(formats, "physical_memory", lambda: None)   # unknown (Windows): no check
    with pytest.raises(DataError, match="9.png: unreadable image"):
        load_dataset("imagefolder", tmp_path)


def test_physical_memory_is_the_posix_figure():
    if not hasattr(os, "sysconf"):
        assert formats.physical_memory() is None
    else:
        assert formats.physical_memory() == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") > 0


@pytest.mark.parametrize("name", [n for n, entry in DATASETS.items() if entry.files])
def test_missing_files_name_the_path(tmp_path, name):
    where = tmp_path / "nowhere"
    with pytest.raises(DataError) as info:
        load_dataset(name, where)
    assert str(where) in str(info.value) and name in str(info.value)


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown dataset 'cifar11'"):
        load_dataset("cifar11")


def test_digits_is_embedded_and_split_1497_300():
    ds = load_dataset("digits", "/nonexistent")
    assert (len(ds.train), len(ds.test), ds.classes, ds.shape) == (1497, 300, 10, (1, 8, 8))
    assert ds.train.images.dtype == torch.uint8 and ds.train.images.max() == 255
    assert set(ds.train.labels.tolist()) == set(range(10)) == set(ds.test.labels.tolist())
    mean, std = channel_stats(ds.train.images.numpy())  # the constants in code are these numbers
    np.testing.assert_allclose(ds.mean, mean, atol=1e-7)
    np.testing.assert_allclose(ds.std, std, atol=1e-7)


def test_synthetic_is_seeded():
    a, b = load_dataset("synthetic", synthetic_size=10), load_dataset("synthetic", synthetic_size=10)
    assert len(a.train) == len(a.test) == 10 and a.shape == (3, 16, 16)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.labels, b.test.labels)


# ---------------------------------------------------------------------------------------------- review fixes

def _message(info) -> str:
    message = str(info.value)
    assert "\n" not in message
    return message


def test_cifar_accepts_python3_protocol_2_pickles(tmp_path):
    arrays = write_cifar10(tmp_path)
    x, y = arrays["test_images"], arrays["test_labels"]
    batch = {b"batch_label": b"testing batch 1 of 1", b"labels": [int(v) for v in y], b"data": x.reshape(len(x), -1),
             b"filenames": [b"a.png", b""] + [b"b.png"] * (len(x) - 2)}
    data = pickle.dumps(batch, protocol=2)
    assert b"_codecs" in data and b"bytes" in data  # bytes as _codecs.encode(str, 'latin1'), b'' as bytes()
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(data)
    ds = load_dataset("cifar10", tmp_path)
    np.testing.assert_array_equal(ds.test.images.numpy(), x)
    np.testing.assert_array_equal(ds.test.labels.numpy(), y)


@pytest.mark.parametrize("payload, match", [
    (b"\x80\x02c_codecs\nencode\nX\x02\x00\x00\x00hiX\x05\x00\x00\x00rot13\x86R.", "only str to latin1"),
    (b"\x80\x02c__builtin__\nbytes\nJ\x00\x00\x00\x40\x85R.", "refused bytes"),  # bytes(2**30)
])
def test_protocol_2_helpers_admit_only_what_protocol_2_writes(tmp_path, payload, match):
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    path.write_bytes(payload)
    with pytest.raises(DataError, match=match) as info:
        load_dataset("cifar10", tmp_path)
    assert str(path) in _message(info)


@pytest.mark.parametrize("name, filename, inner", [
    ("mnist", "mnist.npz", ""), ("mnist", "mnist.npz", "mnist"), ("fashion-mnist", "fashion-mnist.npz", ""),
    ("fashion-mnist", "fashion_mnist.npz", ""), ("fashion-mnist", "fashion_mnist.npz", "fashion-mnist")])
def test_keras_npz_loads_when_the_idx_files_are_absent(tmp_path, name, filename, inner):
    arrays = write_mnist_npz(tmp_path / inner / filename)
    ds = load_dataset(name, tmp_path)
    assert_matches(ds, arrays)
    assert ds.shape == (1, 28, 28) and ds.classes == 10


def test_idx_files_win_over_the_npz(tmp_path):
    arrays = write_mnist(tmp_path / "mnist", seed=1)
    write_mnist_npz(tmp_path / "mnist.npz", seed=2)
    assert_matches(load_dataset("mnist", tmp_path), arrays)


def _zip_cut(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-200])


def _zip_flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[300] ^= 0xFF  # inside x_train's data: the stored CRC no longer matches
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("change, match", [
    (dict(y_test=None), "no y_test .*found x_train, y_train, x_test"),
    (dict(x_train=np.zeros((5, 28 * 28), np.uint8)), r"x_train is uint8 \(5, 784\), expected uint8 \(N, H, W\)"),
    (dict(x_train=np.zeros((5, 28, 28), np.float32)), r"x_train is float32 \(5, 28, 28\), expected uint8"),
    (dict(x_test=np.zeros((3, 32, 32), np.uint8)), "images are 28x28 \\(train\\) and 32x32 \\(test\\), expected 28x28"),
    (dict(y_train=np.array([0, 1, 2, 10, 3], np.uint8)), r"y_train spans 0\.\.10, expected labels in 0\.\.9"),
    (dict(y_train=np.array([0, 1, 2], np.uint8)), r"y_train is uint8 \(3,\), expected 5 integer labels"),
    (dict(y_test=np.array(["a", "b", "c"], dtype=object)), "not a readable npz file .*allow_pickle"),
    (_zip_cut, "not a readable npz file"),
    (_zip_flip, "not a readable npz file"),
    (lambda p: p.write_bytes(b"not a zip at all"), "not a readable npz file"),
    (lambda p: np.save(open(p, "wb"), np.zeros(3)), "one .npy array, not an npz archive"),
])
def test_bad_npz_is_one_line_naming_the_file(tmp_path, change, match):
    path = tmp_path / "mnist.npz"
    if callable(change):
        write_mnist_npz(path)
        change(path)
    else:
        write_mnist_npz(path, **change)
    with pytest.raises(DataError, match=match) as info:
        load_dataset("mnist", tmp_path)
    assert _message(info).startswith(f"{path}: ")


def test_pickled_npz_is_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "mnist.npz"
    write_mnist_npz(path, y_test=np.array([_Evil(marker)], dtype=object))
    with pytest.raises(DataError, match="not a readable npz file"):
        load_dataset("mnist", tmp_path)
    assert not marker.exists()


def test_no_idx_and_no_npz_names_both(tmp_path):
    (tmp_path / "fashion-mnist").mkdir()
    with pytest.raises(DataError) as info:
        load_dataset("fashion-mnist", tmp_path)
    # where it looked, the data folder itself first: the files need no subfolder
    assert _message(info) == (f"fashion-mnist: no train-images-idx3-ubyte in {tmp_path} or "
                              f"{tmp_path / 'fashion-mnist'} or {tmp_path / 'FashionMNIST' / 'raw'} (expected the "
                              "four IDX files, .gz or not, or Keras's fashion-mnist.npz or fashion_mnist.npz); "
                              f"try `diffnas download fashion-mnist --data-dir {tmp_path}`")


def test_image_folder_reads_every_common_pillow_format_in_any_case(tmp_path):
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, (8, 3, 1, 1), dtype=np.uint8)
    names = ["a.webp", "b.BMP", "c.gif", "d.tif", "e.TIFF", "f.Png", "g.ppm", "h.jpe"]
    for part in ("train", "test"):
        for j, name in enumerate(names):
            folder = tmp_path / part / ("x" if j < 4 else "y")   # two classes, the files in order
            folder.mkdir(parents=True, exist_ok=True)
            # flat colours: exact through GIF's palette and JPEG alike
            write_image(folder / name, np.broadcast_to(colours[j], (3, 4, 4)).copy())
    ds = load_dataset("imagefolder", tmp_path)
    assert len(ds.train) == len(ds.test) == len(names) and ds.shape == (3, 4, 4)
    got = ds.train.images.numpy()[:, :, 0, 0]
    np.testing.assert_allclose(got, colours[:, :, 0, 0], atol=2)  # jpe: JPEG, within a unit or two
    np.testing.assert_array_equal(got[:7], colours[:7, :, 0, 0])


def test_image_folder_names_what_it_leaves_out(tmp_path, capsys):
    write_image_folder(tmp_path)
    (tmp_path / "train" / "cat" / "notes.txt").write_text("x")
    (tmp_path / "train" / "dog" / ".DS_Store").write_bytes(b"x")
    (tmp_path / "train" / "dog" / "nested").mkdir()   # read, as torchvision reads it: it holds nothing
    # a hidden folder beside the class folders (Jupyter's) is not a class: it was refused as an empty one
    (tmp_path / "train" / ".ipynb_checkpoints").mkdir()
    # an image beside the class folders read as 'not an image in a class folder'
    write_image(tmp_path / "train" / "stray.png", np.zeros((3, 4, 4), np.uint8))
    ds = load_dataset("imagefolder", tmp_path)
    assert ds.class_names == ("cat", "dog") and ds.classes == 2 and len(ds.train) == 4
    err = capsys.readouterr().err
    train = tmp_path / "train"
    assert err == (f"diffnas: {train}: left out 1 entry that is not an image, e.g. {train / 'cat' / 'notes.txt'}; "
                   f"2 hidden entries, e.g. {train / '.ipynb_checkpoints'}; "
                   f"1 image beside the class folders, e.g. {train / 'stray.png'}\n")
    (tmp_path / "train" / "stray.png").unlink()
    (tmp_path / "train" / "cat" / "notes.txt").unlink()
    (tmp_path / "train" / "dog" / ".DS_Store").unlink()
    (tmp_path / "train" / "dog" / "nested").rmdir()
    (tmp_path / "train" / ".ipynb_checkpoints").rmdir()
    load_dataset("imagefolder", tmp_path)
    assert capsys.readouterr().err == ""


def test_the_data_line_stays_one_line_whatever_the_class_folders_are_named(tmp_path):
    """A class folder named with a newline split 'imagefolder data, ... (a\nb, ...)' over two lines."""
    from diffnas.data.datasets import describe

    write_image_folder(tmp_path, classes=("new\nline", "plain", "tab\there"))
    line = describe(load_dataset("imagefolder", tmp_path))
    assert "\n" not in line and "\t" not in line
    assert line.endswith("3 classes ('new\\nline', plain, 'tab\\there')"), line


def test_images_in_a_class_folders_subfolders_are_its_images(tmp_path, capsys):
    """cat/batch1/*.png were left out as 'not an image' (2 images trained on instead of 6): torchvision's
    ImageFolder reads a class folder's subfolders, and so does this; a link back up is read once, a
    hidden subfolder not at all."""
    arrays = write_image_folder(tmp_path)
    rng = np.random.default_rng(5)
    nested = rng.integers(0, 256, (4, 3, 6, 5), dtype=np.uint8)
    for part in ("train", "test"):
        (tmp_path / part / "cat" / "batch1" / "deeper").mkdir(parents=True)
        write_image(tmp_path / part / "cat" / "batch1" / "x.png", nested[0 if part == "train" else 2])
        write_image(tmp_path / part / "cat" / "batch1" / "deeper" / "y.png", nested[1 if part == "train" else 3])
        (tmp_path / part / "cat" / "batch1" / "up").symlink_to(tmp_path / part / "cat")   # a loop
        (tmp_path / part / "dog" / ".cache").mkdir()
        write_image(tmp_path / part / "dog" / ".cache" / "thumb.png", nested[0])
    ds = load_dataset("imagefolder", tmp_path)
    for part, (x, y) in (("train", (0, 1)), ("test", (2, 3))):
        split = getattr(ds, part)
        # cat (label 0): 0.png, 1.png, then batch1/deeper/y.png and batch1/x.png (sorted paths); dog as before
        want = np.concatenate([arrays[f"{part}_images"][:2], nested[[y, x]], arrays[f"{part}_images"][2:]])
        np.testing.assert_array_equal(split.images.numpy(), want)
        np.testing.assert_array_equal(split.labels.numpy(), [0, 0, 0, 0, 1, 1])
    assert "left out 1 hidden entry, e.g. " in capsys.readouterr().err
    # a link up to the split's folder would read the dog images as cats too: refused
    (tmp_path / "train" / "cat" / "batch1" / "all").symlink_to(tmp_path / "train")
    with pytest.raises(DataError, match=r"batch1/all: a link to .*/train, a folder that holds .*/train/cat: the "
                                        r"images of every class there would be read as cat's; remove the link$"):
        load_dataset("imagefolder", tmp_path)


def test_a_folder_reached_under_two_classes_or_in_two_splits_is_said(tmp_path, capsys):
    """A link in cat/ to the dog folder read dog's images as cats as well, without a word (12 training
    images of 2 classes instead of 8); test/ a link to train/ scored the training images."""
    write_image_folder(tmp_path / "sibling")
    (tmp_path / "sibling" / "train" / "cat" / "more").symlink_to(tmp_path / "sibling" / "train" / "dog")
    with pytest.raises(DataError, match=r"^.*/train/cat: reaches .*/sibling/train/dog by a link, and "
                                        r".*/train/dog reaches it too: its images would have the labels of both "
                                        r"'cat' and 'dog'; remove the link$"):
        load_dataset("imagefolder", tmp_path / "sibling")
    arrays = write_image_folder(tmp_path / "splits")
    shutil.rmtree(tmp_path / "splits" / "test")
    (tmp_path / "splits" / "test").symlink_to(tmp_path / "splits" / "train")
    capsys.readouterr()
    ds = load_dataset("imagefolder", tmp_path / "splits")
    np.testing.assert_array_equal(ds.test.images.numpy(), arrays["train_images"])   # read, and said
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the same images are in both splits, so the held-out metrics are of images " \
        "trained on" in err, err


def test_jfif_files_are_images_and_an_empty_file_is_said_to_be_empty(tmp_path):
    """.jfif (JPEGs as browsers save them) were left out as 'not images'; a 0-byte PNG was 'cannot
    identify image file'."""
    from PIL import Image

    write_image_folder(tmp_path)
    jfif = tmp_path / "train" / "cat" / "web.jfif"
    Image.fromarray(np.zeros((6, 5, 3), np.uint8)).save(jfif, format="JPEG")
    assert len(load_dataset("imagefolder", tmp_path).train.labels) == 5
    (tmp_path / "train" / "dog" / "empty.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"/train/dog/empty.png: unreadable image \(an empty file, 0 bytes\)$"):
        load_dataset("imagefolder", tmp_path)


def test_hidden_files_in_a_class_folder_are_left_out_not_read(tmp_path, capsys):
    """macOS's ._0.png resource forks made the whole load fail as unreadable images; a valid hidden
    thumbnail was trained on, and sorting first it set the size the real images were refused at."""
    arrays = write_image_folder(tmp_path)
    (tmp_path / "train" / "cat" / "._0.png").write_bytes(b"\x00\x05\x16\x07" + bytes(60))
    write_image(tmp_path / "train" / "dog" / ".thumb.png", np.zeros((3, 9, 9), np.uint8))
    ds = load_dataset("imagefolder", tmp_path)
    assert_matches(ds, arrays)
    assert capsys.readouterr().err == (f"diffnas: {tmp_path / 'train'}: left out 2 hidden entries, "
                                       f"e.g. {tmp_path / 'train' / 'cat' / '._0.png'}\n")
    # the __MACOSX folder of resource forks that macOS's zip adds: refused as a class without images
    for where in (tmp_path / "train", tmp_path / "train" / "dog"):
        (where / "__MACOSX").mkdir()
        (where / "__MACOSX" / "._1.png").write_bytes(b"\x00\x05\x16\x07" + bytes(60))
    assert_matches(load_dataset("imagefolder", tmp_path), arrays)
    assert "left out 4 hidden entries" in capsys.readouterr().err


def test_an_image_that_is_a_dangling_link_names_the_link_and_where_it_points(tmp_path):
    """Links into a drive not mounted were left out as 'not an image', then 'class folder with no image files'."""
    write_image_folder(tmp_path)
    link = tmp_path / "train" / "cat" / "zzz.png"
    link.symlink_to(tmp_path / "elsewhere" / "zzz.png")
    with pytest.raises(DataError) as info:
        load_dataset("imagefolder", tmp_path)
    assert _message(info) == f"{link}: a link to {tmp_path / 'elsewhere' / 'zzz.png'}, which is not there (moved, or " \
                             f"on a drive not mounted?)"
    link.unlink()
    link.symlink_to(sorted((tmp_path / "train" / "cat").iterdir())[0])   # a link that resolves is an image like any
    assert len(load_dataset("imagefolder", tmp_path).train) == 5


@pytest.mark.parametrize("part", ["train", "test"])
def test_empty_class_folder_is_refused(tmp_path, part):
    write_image_folder(tmp_path)
    empty = tmp_path / part / "cat"
    for p in empty.iterdir():
        p.unlink()
    (empty / "readme.txt").write_text("x")
    with pytest.raises(DataError) as info:
        load_dataset("imagefolder", tmp_path)
    assert _message(info).startswith(f"{empty}: class folder with no image files (.png/.jpg/")


def test_test_class_that_is_not_a_train_class_is_refused(tmp_path):
    write_image_folder(tmp_path)
    extra = tmp_path / "test" / "bird"
    extra.mkdir()
    write_image(extra / "0.png", np.zeros((3, 6, 5), np.uint8))
    with pytest.raises(DataError) as info:
        load_dataset("imagefolder", tmp_path)
    assert _message(info) == f"{extra}: class 'bird' is not among the training classes ['cat', 'dog']"


def test_a_test_class_in_another_unicode_form_than_its_train_class_says_so(tmp_path):
    """train/café (one character) and test/café (e + combining accent, as macOS writes it): the message
    said 'café' is not among ['café', ...], two names that print alike."""
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    for split, name in (("train", composed), ("train", "dog"), ("test", decomposed), ("test", "dog")):
        folder = tmp_path / split / name
        folder.mkdir(parents=True)
        write_image(folder / "0.png", np.zeros((3, 6, 5), np.uint8))
    with pytest.raises(DataError) as info:
        load_dataset("imagefolder", tmp_path)
    assert _message(info) == (f"{tmp_path / 'test' / decomposed}: class 'cafe\\u0301' is the training class "
                              f"'caf\\xe9' written in another Unicode form (they look alike but are different "
                              f"names, as folders copied between macOS and other systems can become); rename one "
                              f"folder to match the other")


def _remove(path: Path) -> Path:
    path.unlink()
    return path


@pytest.mark.parametrize("name, write, missing", [
    ("svhn", lambda d: write_svhn(d / "svhn"), "svhn/test_32x32.mat"),
    ("svhn", lambda d: write_svhn(d / "svhn"), "svhn/train_32x32.mat"),
    ("cifar10", write_cifar10, "cifar-10-batches-py/data_batch_3"),
    ("cifar10", write_cifar10, "cifar-10-batches-py/test_batch"),
    ("cifar100", write_cifar100, "cifar-100-python/test"),
    ("mnist", lambda d: write_mnist(d / "mnist"), "mnist/t10k-labels-idx1-ubyte"),
    ("tiny-imagenet", write_tiny_imagenet, "tiny-imagenet-200/val/val_annotations.txt"),
    ("tiny-imagenet", write_tiny_imagenet, "tiny-imagenet-200/val/images/val_2.JPEG"),
])
def test_a_missing_file_is_no_such_file_with_the_download_hint(tmp_path, name, write, missing):
    write(tmp_path)
    path = tmp_path / missing
    for candidate in (path, path.with_name(path.name + ".gz")):
        candidate.unlink(missing_ok=True)
    if missing == "svhn/train_32x32.mat":  # the marker file: the folder is then not found at all
        with pytest.raises(DataError, match=f"no train_32x32.mat in {tmp_path} or {tmp_path / 'svhn'}"):
            load_dataset(name, tmp_path)
        return
    with pytest.raises(DataError) as info:
        load_dataset(name, tmp_path)
    suffix = (" (nor t10k-labels-idx1-ubyte.gz nor t10k-labels.idx1-ubyte nor t10k-labels.idx1-ubyte.gz)"
              if name == "mnist" else "")
    assert _message(info) == f"{path}: no such file{suffix}; try `diffnas download {name} --data-dir {tmp_path}`"


@pytest.mark.parametrize("name", [n for n, entry in DATASETS.items() if entry.files])
def test_data_dir_missing_or_a_file(tmp_path, name):
    hint = name in download_module.SOURCES
    where = tmp_path / "nowhere"
    with pytest.raises(DataError) as info:
        load_dataset(name, where)
    assert _message(info) == (f"{name}: data_dir={str(where)!r}: no such folder"
                              + (f"; try `diffnas download {name} --data-dir {where}`" if hint else ""))
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(DataError) as info:
        load_dataset(name, afile)
    assert _message(info) == f"{name}: data_dir={str(afile)!r} is a file, not a folder"   # no download into a file


# ---------------------------------------------------------------------------------------------- decode cache

@pytest.fixture
def cache_folder(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("DIFFNAS_CACHE_DIR", str(folder))
    return folder


def _no_decoding(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("decoded again instead of reading the cache")
    monkeypatch.setattr(formats, "read_images", refuse)


def _same(a, b):
    for part in ("train", "test"):
        assert torch.equal(getattr(a, part).images, getattr(b, part).images)
        assert torch.equal(getattr(a, part).labels, getattr(b, part).labels)
    assert (a.classes, a.mean, a.std) == (b.classes, b.mean, b.std)


@pytest.mark.parametrize("name", ["imagefolder", "tiny-imagenet"])
def test_cache_second_load_reads_the_cache(tmp_path, cache_folder, monkeypatch, capsys, name):
    data = tmp_path / "data"
    (write_image_folder if name == "imagefolder" else write_tiny_imagenet)(data)
    first = load_dataset(name, data)
    [cached] = cache_folder.iterdir()
    assert cached.name.startswith(f"{name}-") and cached.suffix == ".npz"
    assert "from cache" not in capsys.readouterr().err
    with monkeypatch.context() as m:
        _no_decoding(m)
        second = load_dataset(name, data)
    _same(first, second)
    assert f"diffnas: {name}: decoded images from cache ({cached})" in capsys.readouterr().err
    with np.load(cached, allow_pickle=False) as npz:  # no pickles inside
        assert set(npz.files) == {"images", "labels", "classes"} and npz["classes"].dtype.kind == "U"
    other = load_dataset(name, data, image_size=8)  # another image_size is another entry, kept beside it
    assert other.shape == (3, 8, 8) and len(list(cache_folder.iterdir())) == 2
    with monkeypatch.context() as m:   # both sizes now load without decoding (search at one, train at another)
        _no_decoding(m)
        _same(load_dataset(name, data), first)
        _same(load_dataset(name, data, image_size=8), other)


@pytest.mark.parametrize("change", ["touch", "add", "remove", "rewrite", "rewrite-same-size-and-time"])
def test_cache_misses_when_the_folder_changes(tmp_path, cache_folder, monkeypatch, capsys, change):
    data = tmp_path / "data"
    write_image_folder(data)
    load_dataset("imagefolder", data)
    assert "changed since" not in capsys.readouterr().err   # a first decode is no change
    path = data / "train" / "dog" / "0.png"
    if change == "touch":
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    elif change == "add":
        write_image(data / "test" / "cat" / "9.png", np.zeros((3, 6, 5), np.uint8))
    elif change == "remove":
        path.unlink()
    elif change == "rewrite":
        write_image(path, np.full((3, 6, 5), 7, np.uint8))
    else:   # as cp -p, rsync -t or tar leave a file: new pixels, same size, the old modification time
        st = path.stat()
        with Image.open(path) as image:   # inverted: the same entropy, so the same PNG size
            inverted = 255 - np.asarray(image).transpose(2, 0, 1)
        write_image(path, inverted)
        assert path.stat().st_size == st.st_size
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    calls = []
    real = formats.read_images
    monkeypatch.setattr(formats, "read_images", lambda *a, **k: calls.append(1) or real(*a, **k))
    ds = load_dataset("imagefolder", data)
    assert calls == [1]
    # the decode is said to be a change's (it restarted with no word of why)
    assert f"imagefolder: {data} changed since its images were cached" in capsys.readouterr().err
    if change == "rewrite":
        assert (ds.train.images[-2] == 7).all()  # train: cat 0, cat 1, dog 0, dog 1
    if change == "rewrite-same-size-and-time":
        np.testing.assert_array_equal(ds.train.images[-2].numpy(), inverted)  # train: cat 0, cat 1, dog 0, dog 1
    load_dataset("imagefolder", data)
    assert calls == [1]  # and the new decode is cached in turn, replacing the stale file
    assert len(list(cache_folder.glob("*.npz"))) == 1


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong_labels"])
def test_corrupt_cache_file_is_ignored_and_replaced(tmp_path, cache_folder, monkeypatch, capsys, damage):
    data = tmp_path / "data"
    arrays = write_image_folder(data)
    load_dataset("imagefolder", data)
    [cached] = cache_folder.iterdir()
    if damage == "garbage":
        cached.write_bytes(b"garbage")
    elif damage == "truncated":
        cached.write_bytes(cached.read_bytes()[:-100])
    else:
        with np.load(cached) as npz:
            np.savez(cached, images=npz["images"], labels=npz["labels"][::-1], classes=npz["classes"])
    capsys.readouterr()
    assert_matches(load_dataset("imagefolder", data), arrays)
    err = capsys.readouterr().err
    assert f"diffnas: ignoring {'unreadable ' if damage != 'wrong_labels' else ''}cache file {cached}" in err
    assert "allow_pickle" not in err   # numpy's advice to its caller ("load it unsafely") is not a user's
    with monkeypatch.context() as m:  # replaced by a good one
        _no_decoding(m)
        assert_matches(load_dataset("imagefolder", data), arrays)
    assert [p.name for p in cache_folder.iterdir()] == [cached.name]  # no temp files left behind


@pytest.mark.parametrize("value", ["off", "", "  "])
def test_cache_off_writes_nothing(tmp_path, monkeypatch, value):
    home = tmp_path / "home"
    monkeypatch.setenv("DIFFNAS_CACHE_DIR", value)
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    monkeypatch.setenv("HOME", str(home))
    write_image_folder(tmp_path / "data")
    load_dataset("imagefolder", tmp_path / "data")
    assert not home.exists()


def test_cache_folder_defaults(tmp_path, monkeypatch):
    from diffnas.data import cache
    monkeypatch.delenv("DIFFNAS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "diffnas"
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir() == tmp_path / "home" / ".cache" / "diffnas"
    monkeypatch.setenv("DIFFNAS_CACHE_DIR", str(tmp_path / "mine"))
    assert cache.cache_dir() == tmp_path / "mine"


def test_unwritable_cache_folder_only_prints_a_notice(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("DIFFNAS_CACHE_DIR", str(blocker / "cache"))
    arrays = write_image_folder(tmp_path / "data")
    assert_matches(load_dataset("imagefolder", tmp_path / "data"), arrays)
    assert "could not write the decoded-image cache" in capsys.readouterr().err
    # the variable naming the file itself: two lines that contradicted each other ("ignoring unreadable
    # cache file ... NotADirectoryError", then "could not write ... File exists"); now one
    monkeypatch.setenv("DIFFNAS_CACHE_DIR", str(blocker))
    assert_matches(load_dataset("imagefolder", tmp_path / "data"), arrays)
    assert capsys.readouterr().err == (f"diffnas: DIFFNAS_CACHE_DIR={blocker} is not a folder: decoded images are "
                                       f"not cached (name a folder, or off)\n")


# ---------------------------------------------------------------------------------------------- download

def _cifar_tarball(tmp_path: Path, members: dict[str, bytes] | None = None) -> tuple[Path, dict]:
    src = tmp_path / "src"
    arrays = write_cifar10(src)
    archive = tmp_path / "served" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
        for name, data in (members or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive, arrays


def _serve(monkeypatch, name: str, *files: tuple[Path, str]) -> None:
    source = replace(download_module.SOURCES[name],
                     files=tuple(download_module.Remote(path.as_uri(), md5) for path, md5 in files))
    monkeypatch.setitem(download_module.SOURCES, name, source)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_download_verifies_and_unpacks(tmp_path, monkeypatch):
    archive, arrays = _cifar_tarball(tmp_path)
    _serve(monkeypatch, "cifar10", (archive, _md5(archive)))
    data_dir = tmp_path / "data"
    assert download("cifar10", data_dir) == data_dir / "cifar-10-batches-py"
    assert_matches(load_dataset("cifar10", data_dir), arrays)
    archive.unlink()  # already in place: no second fetch
    assert download("cifar10", data_dir) == data_dir / "cifar-10-batches-py"


def test_download_single_files(tmp_path, monkeypatch):
    arrays = write_mnist(tmp_path / "served", gz=True)
    files = sorted((tmp_path / "served").iterdir())
    _serve(monkeypatch, "mnist", *[(p, _md5(p)) for p in files])
    assert download("mnist", tmp_path / "data") == tmp_path / "data" / "mnist"
    assert_matches(load_dataset("mnist", tmp_path / "data"), arrays)


def test_an_archive_left_packed_is_named_and_a_damaged_one_is_fetched_again_with_a_word(tmp_path, monkeypatch,
                                                                                          capsys):
    """A folder holding only cifar-10-python.tar.gz got 'no data_batch_1 ... try diffnas download', not a
    word of the archive; a damaged archive there was replaced by a fresh download without a word."""
    archive, arrays = _cifar_tarball(tmp_path)
    _serve(monkeypatch, "cifar10", (archive, _md5(archive)))
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(archive, data_dir / archive.name)
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", data_dir)
    assert _message(info).endswith(f"; {data_dir / archive.name} is here, not unpacked: `diffnas download cifar10 "
                                   f"--data-dir {data_dir}` checks it and unpacks it (without fetching it)")
    (data_dir / archive.name).write_bytes(archive.read_bytes()[:100])   # cut short
    download("cifar10", data_dir)
    assert (f"diffnas: {data_dir / archive.name}: not the published file (md5 differs: cut short or changed?); "
            f"fetching it again") in capsys.readouterr().err
    assert_matches(load_dataset("cifar10", data_dir), arrays)


def test_download_bad_checksum_keeps_nothing(tmp_path, monkeypatch):
    archive, _ = _cifar_tarball(tmp_path)
    _serve(monkeypatch, "cifar10", (archive, "0" * 32))
    data_dir = tmp_path / "data"
    with pytest.raises(DataError, match="does not match the published 0000"):
        download("cifar10", data_dir)
    assert not data_dir.exists()   # the folder it made, removed with nothing in it


@pytest.mark.parametrize("member", ["../evil.txt", "/tmp/diffnas-evil.txt", "cifar-10-batches-py/../../evil.txt"])
def test_download_refuses_unsafe_tar_members(tmp_path, monkeypatch, member):
    archive, _ = _cifar_tarball(tmp_path, {member: b"boom"})
    _serve(monkeypatch, "cifar10", (archive, _md5(archive)))
    with pytest.raises(DataError, match="refused member"):
        download("cifar10", tmp_path / "data")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "data" / "cifar-10-batches-py").exists()


def test_download_refuses_unsafe_zip_members(tmp_path, monkeypatch):
    archive = tmp_path / "tiny-imagenet-200.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("tiny-imagenet-200/wnids.txt", "n01\n")
        zf.writestr("../evil.txt", "boom")
    _serve(monkeypatch, "tiny-imagenet", (archive, _md5(archive)))
    with pytest.raises(DataError, match="refused member '../evil.txt'"):
        download("tiny-imagenet", tmp_path / "data")
    assert not (tmp_path / "evil.txt").exists()


def test_download_refuses_links_in_a_tar(tmp_path, monkeypatch):
    archive, _ = _cifar_tarball(tmp_path)
    with tarfile.open(archive, "w:gz") as tar:   # a batch file that is a symbolic link to /etc/passwd
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    _serve(monkeypatch, "cifar10", (archive, _md5(archive)))
    with pytest.raises(DataError, match="refused member 'cifar-10-batches-py/data_batch_1' .links and devices"):
        download("cifar10", tmp_path / "data")
    assert not (tmp_path / "data" / "cifar-10-batches-py").exists()


def test_download_of_a_corrupt_archive_or_a_failed_fetch_is_a_data_error(tmp_path, monkeypatch):
    bad = tmp_path / "served" / "cifar-10-python.tar.gz"
    bad.parent.mkdir()
    bad.write_bytes(b"\x1f\x8b not really gzip")
    _serve(monkeypatch, "cifar10", (bad, _md5(bad)))
    with pytest.raises(DataError, match="cifar-10-python.tar.gz: cannot unpack"):
        download("cifar10", tmp_path / "data")
    _serve(monkeypatch, "cifar10", (tmp_path / "served" / "gone.tar.gz", "0" * 32))
    with pytest.raises(DataError, match="gone.tar.gz: download failed"):
        download("cifar10", tmp_path / "data2")
    assert not list((tmp_path / "data2").glob("**/*.part"))   # nothing half-fetched is kept


def test_a_failed_download_leaves_no_empty_folders(tmp_path, monkeypatch):
    """A fetch that fails (offline) left an empty DIR/mnist/ behind; one that got some files keeps them."""
    served = tmp_path / "served"
    write_mnist(served, gz=True)
    files = sorted(served.iterdir())
    _serve(monkeypatch, "mnist", *[(p, _md5(p)) for p in files[:2]], (served / "gone.gz", "0" * 32))
    with pytest.raises(DataError, match="gone.gz: download failed"):
        download("mnist", tmp_path / "data" / "nested")
    assert (tmp_path / "data" / "nested" / "mnist").is_dir()   # two verified files, kept for a retry
    _serve(monkeypatch, "mnist", (served / "gone.gz", "0" * 32))
    with pytest.raises(DataError, match="gone.gz: download failed"):
        download("mnist", tmp_path / "empty" / "nested")
    assert not (tmp_path / "empty").exists()


def test_download_command(tmp_path, monkeypatch, capsys):
    from diffnas import cli

    archive, arrays = _cifar_tarball(tmp_path)
    _serve(monkeypatch, "cifar10", (archive, _md5(archive)))
    assert cli.main(["download", "cifar10", "--data-dir", str(tmp_path / "data")]) == 0
    assert capsys.readouterr().out == f"ready: {tmp_path / 'data' / 'cifar-10-batches-py'}\n"
    assert_matches(load_dataset("cifar10", tmp_path / "data"), arrays)
    assert cli.main(["download", "digits", "--data-dir", str(tmp_path / "data")]) == 2
    assert "cannot download 'digits'" in capsys.readouterr().err


def test_download_unknown_name(tmp_path):
    with pytest.raises(DataError, match="cannot download 'digits'"):
        download("digits", tmp_path)
    # a name close to one it can fetch is suggested, as --dataset suggests it
    with pytest.raises(DataError, match=r"cannot download 'CIFAR-10' \(did you mean 'cifar10'\?\)"):
        download("CIFAR-10", tmp_path)


# ---------------------------------------------------------------------------------------------- augmentation

def _batch(n=64, c=3, h=8, w=8, seed=0) -> torch.Tensor:
    return torch.randint(1, 256, (n, c, h, w), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def test_random_crop_is_a_window_of_the_zero_padded_image():
    x, p = _batch(), 2
    out = random_crop(x, p, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    padded = F.pad(x, (p, p, p, p))
    offsets = set()
    for i in range(len(x)):
        found = [(dy, dx) for dy in range(2 * p + 1) for dx in range(2 * p + 1)
                 if torch.equal(out[i], padded[i, :, dy:dy + 8, dx:dx + 8])]
        assert found, f"sample {i} is no window of its padded image"
        offsets.add(found[0])
    assert len(offsets) > 5  # offsets vary per sample
    # uniform over 0..2p in each direction (torchvision RandomCrop(padding=p)): every one of the 25 windows
    drawn = draw_crop(2000, p, torch.Generator().manual_seed(1))
    assert (int(drawn.min()), int(drawn.max())) == (0, 2 * p)
    assert len({tuple(o) for o in drawn.tolist()}) == (2 * p + 1) ** 2


def test_random_flip_mirrors_exactly_about_half():
    x = _batch()
    out = random_flip(x, torch.Generator().manual_seed(2))
    assert out.shape == x.shape
    flipped = [torch.equal(out[i], x[i].flip(-1)) for i in range(len(x))]
    kept = [torch.equal(out[i], x[i]) for i in range(len(x))]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 0 < sum(flipped) < len(x)
    # each sample with probability 0.5 (RandomHorizontalFlip's p): 4000 draws, 4 standard deviations 0.032
    share = draw_flip(4000, torch.Generator().manual_seed(0)).float().mean().item()
    assert abs(share - 0.5) < 0.032, share


@pytest.mark.parametrize("size", [4, 5])
def test_cutout_zeroes_exactly_one_clipped_square(size):
    x = _batch(n=200).float() + 1  # no zeros before cutout
    out = cutout(x, size, torch.Generator().manual_seed(3))
    assert out.shape == x.shape
    clipped = 0
    for i in range(len(x)):
        zero = out[i] == 0
        assert torch.equal(zero, zero[:1].expand_as(zero))  # the same square in every channel
        assert torch.equal(out[i][~zero], x[i][~zero])
        rows, cols = zero[0].any(1).nonzero().flatten(), zero[0].any(0).nonzero().flatten()
        assert len(rows) and len(cols)  # the centre is inside the image, so something is cut
        r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        assert zero[0, r0:r1, c0:c1].all() and zero[0].sum() == (r1 - r0) * (c1 - c0)  # a rectangle
        for lo, hi, extent in ((r0, r1, 8), (c0, c1, 8)):
            assert hi - lo <= size and (hi - lo == size or lo == 0 or hi == extent)  # short only at a border
        clipped += (r1 - r0) * (c1 - c0) < size * size
    assert 0 < clipped < len(x)


def test_cutout_square_sits_where_darts_cutout_puts_it():
    """The square's place, against DARTS's utils.Cutout written out with numpy (y1 = clip(y - L // 2),
    y2 = clip(y + L // 2), likewise x): for every centre of an 8 x 10 image, size 4; and an odd size
    keeps its side, rows cy - size // 2 .. + size."""
    h, w = 8, 10

    def darts_mask(y: int, x: int, length: int) -> np.ndarray:
        mask = np.ones((h, w), np.float32)
        y1, y2 = np.clip(y - length // 2, 0, h), np.clip(y + length // 2, 0, h)
        x1, x2 = np.clip(x - length // 2, 0, w), np.clip(x + length // 2, 0, w)
        mask[y1:y2, x1:x2] = 0.0
        return mask

    centres = torch.tensor([(y, x) for y in range(h) for x in range(w)])
    out = cut(torch.ones(len(centres), 2, h, w), 4, centres)
    for i, (y, x) in enumerate(centres.tolist()):
        for c in range(2):
            np.testing.assert_array_equal(out[i, c].numpy(), darts_mask(y, x, 4), err_msg=f"centre {(y, x)}")
    odd = cut(torch.ones(2, 1, h, w), 5, torch.tensor([[4, 4], [0, 9]]))
    want = torch.ones(2, 1, h, w)
    want[0, 0, 2:7, 2:7] = 0    # 4 - 2 .. 4 - 2 + 5
    want[1, 0, 0:3, 7:10] = 0   # clipped at the top and the right
    assert torch.equal(odd, want)


# ---------------------------------------------------------------------------------------------- ImageNet ops

def _boxes(n, h, w, seed=0, **kw):
    top, left, bh, bw = draw_resized_crop(n, h, w, torch.Generator().manual_seed(seed), **kw).double().unbind(1)
    return top, left, bh, bw


def test_resized_crop_boxes_stay_in_the_scale_and_ratio_ranges():
    h, w, n = 40, 60, 4000  # aspect 1.5, outside (3/4, 4/3): many proposals are refused
    top, left, bh, bw = _boxes(n, h, w)
    assert (top >= 0).all() and (left >= 0).all() and (top + bh <= h).all() and (left + bw <= w).all()
    assert (bh >= 1).all() and (bw >= 1).all()
    # each side is a rounded real number: the true sides lie within 0.5 of the drawn ones
    area = h * w
    assert ((bh - 0.5) * (bw - 0.5) <= 1.0 * area).all() and ((bh + 0.5) * (bw + 0.5) >= 0.08 * area).all()
    assert ((bw - 0.5) / (bh + 0.5) <= 4 / 3).all() and ((bw + 0.5) / (bh - 0.5) >= 3 / 4).all()
    assert len(set(zip(bh.tolist(), bw.tolist()))) > 100


def test_resized_crop_box_distribution_is_torchvisions():
    # scale <= 0.5 of a square: every first proposal fits, so area ~ U(scale), log aspect ~ U(log ratio)
    h = w = 100
    n = 20000
    top, left, bh, bw = _boxes(n, h, w, seed=1, scale=(0.1, 0.5))
    frac, log_aspect = bh * bw / (h * w), torch.log(bw / bh)
    assert abs(frac.mean() - 0.3) < 0.004 and abs((frac < 0.2).double().mean() - 0.25) < 0.015
    assert abs(log_aspect.mean()) < 0.006
    assert abs(log_aspect.std() - math.log(16 / 9) / math.sqrt(12)) < 0.005  # std of U(log 3/4, log 4/3)
    # position uniform over 0 .. h - bh: mean (h - bh) / 2, and both ends reached
    assert abs((top - (h - bh) / 2).mean()) < 0.3 and abs((left - (w - bw) / 2).mean()) < 0.3
    assert (top == 0).any() and (top == h - bh).any()


@pytest.mark.parametrize("h, w, expected", [(20, 100, (0, 40, 20, 20)), (100, 20, (40, 0, 20, 20)),
                                            (30, 50, (0, 10, 30, 30))])
def test_resized_crop_falls_back_to_the_centred_box(h, w, expected):
    # area = the whole image at aspect 1 never fits a non-square image: torchvision's fallback, the
    # whole image with its aspect clamped into ratio, centred: (top, left, height, width)
    boxes = draw_resized_crop(5, h, w, torch.Generator().manual_seed(0), scale=(1.0, 1.0), ratio=(1.0, 1.0))
    assert boxes.tolist() == [list(expected)] * 5


@pytest.mark.parametrize("size", [5, 8, 23])
def test_resized_crop_is_crop_then_bilinear_resize(size):
    x = torch.rand(5, 3, 12, 17, generator=torch.Generator().manual_seed(0))
    full = torch.tensor([[0, 0, 12, 17]] * 5)
    reference = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    torch.testing.assert_close(resized_crop(x, full, size), reference, atol=1e-6, rtol=0)
    boxes = torch.tensor([[0, 0, 12, 17], [3, 4, 6, 9], [11, 16, 1, 1], [2, 0, 10, 3], [5, 7, 7, 10]])
    out = resized_crop(x, boxes, size)
    assert out.shape == (5, 3, size, size)
    for i, (t, l, bh, bw) in enumerate(boxes.tolist()):
        crop = x[i:i + 1, :, t:t + bh, l:l + bw]
        torch.testing.assert_close(out[i:i + 1], F.interpolate(crop, size=(size, size), mode="bilinear",
                                                               align_corners=False), atol=1e-6, rtol=0)


def test_resized_shape_and_centre_crop_follow_torchvision():
    assert resized_shape(10, 14, 20) == (20, 28) and resized_shape(14, 10, 7) == (9, 7)  # int(7 * 14 / 10)
    assert resized_shape(300, 300, 256) == (256, 256)
    x = torch.rand(3, 3, 10, 15, generator=torch.Generator().manual_seed(1))
    # shorter side already 10: no resampling, the crop starts at round((H - c) / 2)
    assert torch.equal(resize_centre_crop(x, 10, 8), x[..., 1:9, 4:12])  # round(3.5) = 4 (half to even)
    big = F.interpolate(x, size=(20, 30), mode="bilinear", align_corners=False, antialias=True)
    assert torch.equal(resize_centre_crop(x, 20, 16), big[..., 2:18, 7:23])
    small = F.interpolate(x, size=(6, 9), mode="bilinear", align_corners=False, antialias=True)
    assert torch.equal(resize_centre_crop(x, 6, 0), small)
    assert Augment.evaluation(224) == Augment(resize=256, centre_crop=224) and Augment.evaluation(0) == Augment()
    assert Augment.evaluation(224).output_size(375, 500) == (224, 224)
    with pytest.raises(ConfigError, match="centre crop 9 does not fit images of 6x9 after the resize"):
        Augment(resize=6, centre_crop=9).output_size(10, 15)


def _blend(x, target, f):
    return (f * x + (1 - f) * target).clamp(0, 1)


def _gray(x):
    # torchvision's rgb_to_grayscale weights, written out here (not the module's GRAY_WEIGHTS, which they check)
    return sum(wt * x[:, i:i + 1] for i, wt in enumerate((0.2989, 0.587, 0.114)))


def _factors(n, brightness=1.0, contrast=1.0, saturation=1.0, hue=0.0):
    return torch.tensor([[brightness, contrast, saturation, hue]] * n)


def _orders(n, seed=0):
    return torch.rand(n, 4, generator=torch.Generator().manual_seed(seed)).argsort(1)


def test_identity_jitter_is_a_no_op():
    x = torch.rand(16, 3, 6, 7, generator=torch.Generator().manual_seed(2))
    assert torch.equal(jitter(x, _factors(16), _orders(16), hue=False), x)
    gray = torch.rand(4, 1, 6, 7)
    assert torch.equal(jitter(gray, _factors(4, saturation=1.8, hue=0.3), _orders(4)), gray)  # one channel


def test_brightness_multiplies_and_clamps():
    x = torch.rand(8, 3, 5, 5, generator=torch.Generator().manual_seed(3))
    b = torch.tensor([0.0, 0.3, 0.6, 1.0, 1.2, 1.4, 1.7, 2.0])
    factors = _factors(8)
    factors[:, BRIGHTNESS] = b
    out = jitter(x, factors, _orders(8), hue=False)
    torch.testing.assert_close(out, (b.view(-1, 1, 1, 1) * x).clamp(0, 1), atol=1e-7, rtol=0)
    assert out.max() == 1.0 and (out[0] == 0).all()


def test_contrast_and_saturation_blend_with_the_grayscale():
    x = torch.rand(6, 3, 5, 4, generator=torch.Generator().manual_seed(4))
    f = torch.tensor([0.0, 0.5, 0.8, 1.3, 1.6, 2.5]).view(-1, 1, 1, 1)
    contrast, saturation = _factors(6), _factors(6)
    contrast[:, CONTRAST], saturation[:, SATURATION] = f.flatten(), f.flatten()
    torch.testing.assert_close(jitter(x, contrast, _orders(6), hue=False),
                               _blend(x, _gray(x).mean((1, 2, 3), keepdim=True), f), atol=1e-6, rtol=0)
    torch.testing.assert_close(jitter(x, saturation, _orders(6), hue=False), _blend(x, _gray(x), f),
                               atol=1e-6, rtol=0)


def test_hue_rotates_in_hsv_as_colorsys():
    x = torch.rand(5, 3, 4, 4, generator=torch.Generator().manual_seed(5))
    x[0, :, 0, 0] = 0.4  # a gray pixel has no hue to turn
    shifts = torch.tensor([0.3, -0.2, 0.5, -0.5, 0.05]).view(-1, 1, 1, 1)
    out = shift_hue(x, shifts)
    expected = torch.empty_like(x)
    for i, j, k in itertools.product(range(5), range(4), range(4)):
        h, s, v = colorsys.rgb_to_hsv(*x[i, :, j, k].tolist())
        expected[i, :, j, k] = torch.tensor(colorsys.hsv_to_rgb((h + shifts[i].item()) % 1.0, s, v))
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    primaries = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1).repeat(3, 1, 1, 1)
    turned = shift_hue(primaries, torch.tensor([1 / 3, 2 / 3, 1 / 6]).view(-1, 1, 1, 1))
    torch.testing.assert_close(turned.flatten(1), torch.tensor([[0.0, 1, 0], [0, 0, 1], [1, 1, 0]]), atol=1e-6,
                               rtol=0)


def test_jitter_applies_the_ops_in_each_samples_order():
    x = torch.rand(2, 3, 5, 5, generator=torch.Generator().manual_seed(6))
    factors = torch.tensor([[1.6, 0.3, 1.5, 0.25]] * 2)
    order = torch.tensor([[BRIGHTNESS, CONTRAST, SATURATION, HUE], [HUE, SATURATION, CONTRAST, BRIGHTNESS]])
    ops = {BRIGHTNESS: lambda y: _blend(y, 0, 1.6), CONTRAST: lambda y: _blend(y, _gray(y).mean(), 0.3),
           SATURATION: lambda y: _blend(y, _gray(y), 1.5),
           HUE: lambda y: shift_hue(y, torch.tensor(0.25).view(1, 1, 1, 1))}
    out = jitter(x, factors, order)
    for i in range(2):
        y = x[i:i + 1]
        for op in order[i].tolist():
            y = ops[op](y)
        torch.testing.assert_close(out[i:i + 1], y, atol=1e-6, rtol=0)
    swapped = jitter(x[:1], factors[:1], order[1:])  # the other order changes the result
    assert (swapped - out[:1]).abs().max() > 0.05


def test_jitter_draws_factors_in_range_and_uniform_orders():
    n = 4800
    factors, order = draw_jitter(n, 0.4, 1.5, 0.2, 0.1, torch.Generator().manual_seed(7))
    for col, lo, hi in ((BRIGHTNESS, 0.6, 1.4), (CONTRAST, 0.0, 2.5), (SATURATION, 0.8, 1.2), (HUE, -0.1, 0.1)):
        assert factors[:, col].min() >= lo and factors[:, col].max() <= hi
        assert factors[:, col].min() < lo + 0.02 * (hi - lo) and factors[:, col].max() > hi - 0.02 * (hi - lo)
    assert (order.sort(1).values == torch.arange(4)).all()  # each row a permutation
    counts = torch.tensor([sum(1 for row in order.tolist() if tuple(row) == p)
                           for p in itertools.permutations(range(4))], dtype=torch.float64)
    assert (counts - n / 24).abs().max() < 4 * math.sqrt(n / 24)  # all 24 orders, equally often
    factors, _ = draw_jitter(3, 0.0, 0.0, 0.0, 0.0, torch.Generator())
    assert torch.equal(factors, _factors(3))


IMAGENET = Augment(resized_crop=7, flip=True, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.2, cutout=2)


def test_imagenet_augment_is_seeded_and_sliceable():
    x = _batch(n=12, h=9, w=11, seed=8)
    d = IMAGENET.draw(12, 9, 11, torch.Generator().manual_seed(9))
    out = IMAGENET.before_normalise(x, d)
    assert out.shape == (12, 3, 7, 7) and out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 1
    again = IMAGENET.before_normalise(x, IMAGENET.draw(12, 9, 11, torch.Generator().manual_seed(9)))
    assert torch.equal(out, again)
    other = IMAGENET.before_normalise(x, IMAGENET.draw(12, 9, 11, torch.Generator().manual_seed(10)))
    assert not torch.equal(out, other)
    for start, stop in ((0, 5), (5, 12), (3, 4)):
        part = IMAGENET.before_normalise(x[start:stop], d.slice(start, stop))
        assert torch.equal(part, out[start:stop])
        assert torch.equal(IMAGENET.after_normalise(part, d.slice(start, stop)),
                           IMAGENET.after_normalise(out, d)[start:stop])


def test_cutout_centres_cover_the_resized_output():
    d = Augment(resized_crop=12, cutout=3).draw(500, 6, 6, torch.Generator().manual_seed(11))
    assert d.cutout.max() == 11 and d.cutout.min() == 0


@pytest.mark.parametrize("kwargs, match", [
    (dict(hue=0.6), "hue must be at most 0.5"), (dict(brightness=-0.1), "brightness must be >= 0"),
    (dict(resized_crop=8, centre_crop=8), "exclude each other"), (dict(crop_scale=(0.5, 0.1)), "scale"),
])
def test_augment_refuses_bad_values(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Augment(**kwargs)


@pytest.mark.parametrize("values, match", [
    ({"random_resized_crop": -1}, "random_resized_crop: must be >= 0"),
    ({"color_jitter": -0.4}, "color_jitter: must be >= 0"), ({"hue_jitter": 0.7}, "hue_jitter: must be <= 0.5"),
])
def test_train_config_validates_the_augmentation_fields(values, match):
    with pytest.raises(ConfigError, match=match):
        from_dict(TrainConfig, values)


# ---------------------------------------------------------------------------------------------- batches

def _split(n=50) -> Split:
    # labels are sample ids, so a batch tells which samples it holds
    return Split(_batch(n=n, h=6, w=6, seed=4), torch.arange(n))


AUG = Augment(crop_padding=2, flip=True, cutout=3)
STATS = dict(mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))


def _all(batches: Batches, epoch: int, start: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return list(batches.epoch(epoch, start_step=start))


def _assert_same(a, b):
    assert len(a) == len(b)
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_batches_normalise_without_augmentation():
    split = _split()
    [(x, y)] = _all(Batches(split, 50, **STATS, shuffle=False), 0)
    mean, std = torch.tensor(STATS["mean"]).view(1, 3, 1, 1), torch.tensor(STATS["std"]).view(1, 3, 1, 1)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    torch.testing.assert_close(x, (split.images.float() / 255 - mean) / std)
    assert torch.equal(y, split.labels)


def test_resume_mid_epoch_gives_the_tail():
    batches = Batches(_split(), 8, **STATS, augment=AUG, seed=7)
    full = _all(batches, 3)
    assert len(full) == len(batches) == 6
    torch.manual_seed(123)  # the global RNG plays no part
    _assert_same(_all(batches, 3, start=4), full[4:])
    _assert_same(_all(Batches(_split(), 8, **STATS, augment=AUG, seed=7), 3), full)


def test_epochs_and_seeds_differ():
    batches = Batches(_split(), 8, **STATS, augment=AUG, seed=7)
    a, b = _all(batches, 0), _all(batches, 1)
    assert not torch.equal(a[0][1], b[0][1])
    c = _all(Batches(_split(), 8, **STATS, augment=AUG, seed=8), 0)
    assert not torch.equal(a[0][1], c[0][1])


def test_an_epoch_visits_every_sample_once():
    batches = Batches(_split(), 8, **STATS, drop_last=False)
    ids = torch.cat([y for _, y in batches.epoch(5)])
    assert len(batches) == 7 and sorted(ids.tolist()) == list(range(50))
    assert len(_all(Batches(_split(), 8, **STATS, drop_last=True), 5)[-1][1]) == 8


IMAGENET_AUG = Augment(resized_crop=8, flip=True, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.2, cutout=3)


@pytest.mark.parametrize("aug", [AUG, IMAGENET_AUG], ids=["cifar", "imagenet"])
@pytest.mark.parametrize("drop_last", [True, False])
def test_ranks_concatenate_to_the_single_process_batch(drop_last, aug):
    single = _all(Batches(_split(), 8, **STATS, augment=aug, seed=3, drop_last=drop_last), 2)
    ranks = [_all(Batches(_split(), 8, **STATS, augment=aug, seed=3, drop_last=drop_last, rank=r, world=2), 2)
             for r in range(2)]
    assert all(len(r) == len(single) for r in ranks)
    for step, (x, y) in enumerate(single):
        assert torch.equal(torch.cat([r[step][0] for r in ranks]), x)
        assert torch.equal(torch.cat([r[step][1] for r in ranks]), y)
    assert len(ranks[0][0][1]) == 4


def test_batches_take_the_augmentations_output_size():
    train = Batches(_split(), 8, **STATS, augment=IMAGENET_AUG)
    assert train.image_size == (8, 8)
    x, _ = next(train.epoch(0))
    assert x.shape == (8, 3, 8, 8)
    test = Batches(_split(), 8, **STATS, augment=Augment.evaluation(4), shuffle=False)  # resize 5, crop 4
    x, y = next(test.epoch(0))
    mean, std = torch.tensor(STATS["mean"]).view(1, 3, 1, 1), torch.tensor(STATS["std"]).view(1, 3, 1, 1)
    images = F.interpolate(_split().images[:8].float() / 255, size=(5, 5), mode="bilinear", antialias=True)
    assert test.image_size == (4, 4) and torch.equal(y, torch.arange(8))
    torch.testing.assert_close(x, (images[..., 0:4, 0:4] - mean) / std)
    with pytest.raises(ConfigError, match="centre crop 7 does not fit images of 6x6"):
        Batches(_split(), 8, **STATS, augment=Augment(centre_crop=7))


def test_batch_size_errors_name_the_numbers():
    with pytest.raises(DataError, match="batch size 64 .* 50 samples"):
        Batches(_split(), 64, **STATS)
    with pytest.raises(DataError, match="batch size 9 is not divisible by the 2"):
        Batches(_split(), 9, **STATS, world=2)


def test_search_split_is_a_seeded_partition():
    a_train, a_val = search_split(101, 0.5, seed=0)
    assert len(a_train) == 50 and len(a_val) == 51
    assert sorted(torch.cat([a_train, a_val]).tolist()) == list(range(101))
    b_train, _ = search_split(101, 0.5, seed=0)
    c_train, _ = search_split(101, 0.5, seed=1)
    assert torch.equal(a_train, b_train) and not torch.equal(a_train, c_train)
    with pytest.raises(ConfigError):
        search_split(10, 1.5, seed=0)


def test_subset_takes_rows():
    split = _split()
    idx = torch.tensor([3, 1, 4])
    part = subset(split, idx)
    assert torch.equal(part.labels, idx) and torch.equal(part.images, split.images[idx])


def test_temp_files_of_killed_cache_writers_are_removed_once_old(tmp_path, cache_folder):
    data = tmp_path / "data"
    write_image_folder(data)
    load_dataset("imagefolder", data)
    [cached] = cache_folder.glob("*.npz")
    prefix = cached.name.rsplit("-", 1)[0]
    old, fresh = cache_folder / f".{prefix}-0.a.tmp", cache_folder / f".{prefix}-0.b.tmp"
    for path in (old, fresh):
        path.write_bytes(b"partial")
    os.utime(old, (time.time() - 2 * 24 * 3600,) * 2)
    write_image(data / "test" / "cat" / "9.png", np.zeros((3, 6, 5), np.uint8))   # a miss: the next load writes
    load_dataset("imagefolder", data)
    assert not old.exists() and fresh.exists()   # a fresh one may belong to a writer still at work


# ------------------------------------------------------------------ damaged files found by a user's review

def test_an_svhn_file_saved_as_matlab_v7_3_says_what_it_is_and_how_to_get_v5(tmp_path):
    """scipy's 'Please use HDF reader ... e.g. h5py' was passed on, though diffnas reads no HDF5."""
    write_svhn(tmp_path / "svhn")
    path = tmp_path / "svhn" / "train_32x32.mat"
    # a v7.3 header: 116 bytes of text, 8 of subsystem offset, version 0x0200, endian "IM"
    path.write_bytes(b"MATLAB 7.3 MAT-file".ljust(116, b" ") + bytes(8) + b"\x00\x02IM" + bytes(512))
    with pytest.raises(DataError) as info:
        load_dataset("svhn", tmp_path)
    said = _message(info)
    assert said.startswith(f"{path}: a MATLAB v7.3 (HDF5) file, which diffnas does not read; ") and "h5py" not in said
    assert said.endswith("put the file from http://ufldl.stanford.edu/housenumbers/ in its place, or save X and y "
                         "with scipy.io.savemat")


@pytest.mark.parametrize("content", [b"", b"<html>not found</html>", bytes(5000)])
def test_svhn_empty_short_or_zero_filled_mat_file_is_a_data_error(tmp_path, content):
    # an unfinished download (zero-filled), an error page saved as the file, an empty file: scipy raises
    # its own MatReadError for these
    write_svhn(tmp_path / "svhn")
    path = tmp_path / "svhn" / "train_32x32.mat"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        load_dataset("svhn", tmp_path)
    assert _message(info).startswith(f"{path}: not a readable MATLAB v5 file (")


@pytest.mark.parametrize("listing,says", [("val/val_annotations.txt", "lists no image"),
                                          ("wnids.txt", "lists no class")])
def test_tiny_imagenet_empty_listing_is_refused(tmp_path, listing, says):
    # an empty val_annotations.txt gave a test split of 0 images and a run that failed later on "batch size 0"
    write_tiny_imagenet(tmp_path)
    path = tmp_path / "tiny-imagenet-200" / listing
    path.write_text("\n")
    with pytest.raises(DataError) as info:
        load_dataset("tiny-imagenet", tmp_path)
    assert _message(info).startswith(f"{path}: {says}")


def test_tiny_imagenet_class_or_val_image_listed_twice_is_refused_by_line(tmp_path):
    """A wnid listed twice read its images twice under two labels (one never trained); a val image listed
    twice was scored twice, perhaps under two labels."""
    write_tiny_imagenet(tmp_path)
    base = tmp_path / "tiny-imagenet-200"
    wnids = base / "wnids.txt"
    wnids.write_text(wnids.read_text() + "n01\n")
    with pytest.raises(DataError) as info:
        load_dataset("tiny-imagenet", tmp_path)
    assert _message(info) == f"{wnids}:4: n01 again (first on line 2); each class is listed once"
    wnids.write_text("n02\nn01\nn03\n")
    annotations = base / "val" / "val_annotations.txt"
    first = annotations.read_text().splitlines()[0]
    other = "n01" if first.split("\t")[1] != "n01" else "n02"
    annotations.write_text(annotations.read_text() + first.replace(first.split("\t")[1], other) + "\n")
    with pytest.raises(DataError) as info:
        load_dataset("tiny-imagenet", tmp_path)
    assert _message(info) == f"{annotations}:5: val_0.JPEG again (first on line 1); each image is listed once"


@pytest.mark.parametrize("y, says", [([9.5, 3.0, 10.0], "y must hold whole-number labels in 1..10, got 9.5"),
                                     ([float("nan"), 3.0, 10.0], "y must hold whole-number labels in 1..10, got nan"),
                                     (["a", "b", "c"], "y is text (a char array), not a numeric array; SVHN's X "
                                                       "holds uint8 images and y labels in 1..10"),
                                     # 0-based labels: said why 0 is out of range
                                     ([0.0, 3.0, 9.0], "y must hold 3 labels in 1..10, got 3 in 0..9 (SVHN writes "
                                                       "digit 0 as label 10: a file with 0 for it is not the official "
                                                       "one)")])
def test_svhn_labels_that_are_not_whole_numbers_are_refused_not_cut(tmp_path, y, says):
    """y = 9.5 was read as label 9 (astype cuts it) without a word."""
    from scipy.io import savemat

    write_svhn(tmp_path / "svhn", train=3)
    path = tmp_path / "svhn" / "train_32x32.mat"
    x = np.zeros((32, 32, 3, 3), np.uint8)
    savemat(path, {"X": x, "y": np.asarray(y)[:, None]})
    with pytest.raises(DataError) as info:
        load_dataset("svhn", tmp_path)
    assert _message(info) == f"{path}: {says}"
    savemat(path, {"X": x, "y": np.asarray([9.0, 3.0, 10.0])[:, None]})   # doubles as MATLAB writes them: taken
    assert load_dataset("svhn", tmp_path).train.labels.tolist() == [9, 3, 0]


def test_mnist_idx_files_other_than_28x28_or_labels_out_of_range_name_the_file(tmp_path):
    write_mnist(tmp_path / "mnist")
    images = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    formats_fixtures.write_idx(tmp_path / "mnist" / "train-images-idx3-ubyte", np.zeros((5, 32, 32), np.uint8), gz=True)
    with pytest.raises(DataError) as info:
        load_dataset("mnist", tmp_path)
    assert _message(info) == f"{images}: images are 32x32, expected 28x28"
    write_mnist(tmp_path / "mnist")
    labels = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    formats_fixtures.write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte", np.array([0, 11, 3], np.uint8), gz=True)
    with pytest.raises(DataError) as info:
        load_dataset("mnist", tmp_path)
    assert _message(info) == f"{labels}: labels span 0..11, expected 0..9"


def test_images_without_class_folders_are_refused_with_the_layout(tmp_path):
    """Images straight in train/ were "entries that are not image files", then "no class subfolders"."""
    write_image_folder(tmp_path)
    for image in (tmp_path / "train").glob("*/*.png"):
        image.rename(tmp_path / "train" / f"{image.parent.name}-{image.name}")
        if not any(image.parent.iterdir()):
            image.parent.rmdir()
    with pytest.raises(DataError) as info:
        load_dataset("imagefolder", tmp_path)
    assert str(info.value) == (f"{tmp_path / 'train'}: 4 images (e.g. cat-0.png) but no class folders: put each "
                               f"class's images in a folder of its own, {tmp_path / 'train'}/<class>/<images>")


def test_a_data_dir_given_as_its_train_folder_says_which_folder_to_pass(tmp_path):
    write_image_folder(tmp_path)
    with pytest.raises(DataError) as info:
        load_dataset("imagefolder", tmp_path / "train")
    assert str(info.value).endswith(f"; this looks like the train/ folder itself: pass data_dir={str(tmp_path)!r}")


def test_search_and_train_say_what_data_they_loaded(tmp_path, capsys):
    """A user's own folder: nothing said how many images and which classes were found."""
    from diffnas import cli

    write_image_folder(tmp_path / "data", classes=("stripes", "circle", "square"), per_class=4, size=(8, 8))
    common = ["--dataset", "imagefolder", "--data-dir", str(tmp_path / "data"), "--layers", "3", "--channels", "4",
              "--epochs", "1", "--max-steps", "1", "--batch-size", "4", "--no-plots"]
    assert cli.main(["search", *common, "--nodes", "2", "--train-portion", "0.7", "--run-dir",
                     str(tmp_path / "s")]) == 0
    line = ("diffnas: imagefolder data, 12 training and 12 test images of 3x8x8, 3 classes (circle, square, "
            "stripes)")
    assert f"{line}; split 8 / 4 by --train-portion 0.7\n" in capsys.readouterr().err
    assert cli.main(["train", *common, "--run-dir", str(tmp_path / "t")]) == 0
    assert f"{line}\n" in capsys.readouterr().err
    assert cli.main(["train", "--resume", str(tmp_path / "t")]) == 0   # complete: nothing loaded for work
    assert "imagefolder data" not in capsys.readouterr().err


@pytest.mark.parametrize("name, side, padding, flip", [
    ("digits", 8, 1, False), ("synthetic", 16, 2, False), ("cifar10", 32, 4, True), ("svhn", 32, 4, False),
    ("mnist", 28, 3, False), ("tiny-imagenet", 64, 4, True), ("imagefolder", 224, 4, True)])
def test_search_and_training_crop_and_flip_alike(name, side, padding, flip):
    """The two loops had their own copies: the search padded 64-px images by 8 and 224-px ones by 28
    (training: 4), and the training flipped the synthetic templates (the search did not)."""
    from diffnas.config import TrainConfig
    from diffnas.data.types import Dataset, Split
    from diffnas.search import augment_for as search_augment
    from diffnas.train import augment_for as train_augment

    split = Split(torch.zeros(2, 3, side, side, dtype=torch.uint8), torch.zeros(2, dtype=torch.int64))
    ds = Dataset(name, split, split, 10, (0.5,) * 3, (0.5,) * 3)
    searched, trained = search_augment(ds), train_augment(ds, TrainConfig())
    assert (searched.crop_padding, searched.flip) == (trained.crop_padding, trained.flip) == (padding, flip)
    assert trained.cutout == min(16, round(16 * side / 32)) and searched.cutout == 0


@pytest.mark.parametrize("name, write", [
    ("digits", None), ("synthetic", None), ("cifar10", write_cifar10), ("cifar100", write_cifar100),
    ("mnist", lambda d: write_mnist(d / "mnist")), ("fashion-mnist", lambda d: write_mnist(d / "fashion-mnist")),
    ("svhn", lambda d: write_svhn(d / "svhn"))])
def test_the_registrys_shape_is_what_loading_gives(tmp_path, name, write):
    """`diffnas params` sizes a network from DatasetEntry.shape without reading files (it had its own table)."""
    from diffnas.data.loaders import DATASETS

    if write is not None:
        write(tmp_path)
    ds = load_dataset(name, tmp_path if write is not None else None)
    assert DATASETS[name].shape == (ds.shape[0], ds.classes)


@pytest.mark.parametrize("name", ["imagefolder", "tiny-imagenet"])
def test_the_test_only_reads_have_their_own_cache_entries(tmp_path, cache_folder, monkeypatch, capsys, name):
    """evaluate's test-only decodes (an image folder's test/, Tiny-ImageNet's val/) are cached apart
    from the whole dataset's, which they neither replace nor are replaced by."""
    from diffnas.data.loaders import DATASETS
    from diffnas.data.types import TrainedOn

    data = tmp_path / "data"
    (write_image_folder if name == "imagefolder" else write_tiny_imagenet)(data)
    whole = load_dataset(name, data)

    def test_only():
        return DATASETS[name].load_test(data, 0, TrainedOn(whole.class_names, 3)).split

    first = test_only()
    assert len(list(cache_folder.iterdir())) == 2   # the whole dataset's entry is kept beside it
    capsys.readouterr()
    with monkeypatch.context() as m:
        _no_decoding(m)
        again = test_only()
        load_dataset(name, data)
    assert torch.equal(first.images, again.images) and torch.equal(first.images, whole.test.images)
    assert torch.equal(first.labels, whole.test.labels)
    assert capsys.readouterr().err.count("decoded images from cache") == 2


def test_a_grayscale_networks_test_folder_with_a_colour_file_is_read_in_one_channel(tmp_path, capsys):
    """One RGB file among grayscale ones made evaluate's test/ read 3 channels, refused as 'the network
    was trained on 1x...'; the colour file is converted to its luma as Pillow's convert("L") does."""
    from PIL import Image

    from diffnas.data.loaders import DATASETS
    from diffnas.data.types import TrainedOn

    data = tmp_path / "data"
    arrays = write_image_folder(data, size=(5, 5), channels=1)
    colour = data / "test" / "dog" / "1.png"
    rgb = np.random.default_rng(1).integers(0, 256, (5, 5, 3), dtype=np.uint8)
    Image.fromarray(rgb, "RGB").save(colour)
    split = DATASETS["imagefolder"].load_test(data, 0, TrainedOn(("cat", "dog"), 1)).split
    images = split.images.numpy()
    assert images.shape == (4, 1, 5, 5)
    order = [(p.parent.name, p.name) for p in sorted((data / "test").glob("*/*.png"))]
    at = order.index(("dog", "1.png"))
    np.testing.assert_array_equal(images[at, 0], np.asarray(Image.fromarray(rgb, "RGB").convert("L")))
    gray = [i for i in range(4) if i != at]   # the grayscale files as they are
    np.testing.assert_array_equal(images[gray], np.delete(arrays["test_images"], at, axis=0))
    assert f"{colour} in colour, converted to grayscale" in capsys.readouterr().err


def test_an_image_folder_of_one_class_is_refused(tmp_path):
    """One class folder: every label 0, a search reported 100% accuracy from its first step."""
    write_image_folder(tmp_path, classes=("cat",))
    with pytest.raises(DataError, match=r"has one class folder \(cat/\); a classifier needs at least two"):
        load_dataset("imagefolder", tmp_path)


def test_an_svhn_file_without_x_names_every_variable_it_holds(tmp_path):
    """It listed only the variables it had tried to load (['y']), not what the file holds instead."""
    from scipy.io import savemat

    write_svhn(tmp_path / "svhn")
    path = tmp_path / "svhn" / "train_32x32.mat"
    savemat(path, {"images": np.zeros((32, 32, 3, 2), np.uint8), "y": np.ones((2, 1), np.uint8)})
    with pytest.raises(DataError, match=r"expected variables X and y \(the official SVHN layout\), found "
                                        r"\['images', 'y'\]"):
        load_dataset("svhn", tmp_path)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_sizes_whose_product_overflows_int64_are_a_size_mismatch(tmp_path, gz):
    write_mnist(tmp_path, gz=gz)
    path = tmp_path / f"train-images-idx3-ubyte{'.gz' if gz else ''}"
    data = struct.pack(">HBB3I", 0, 8, 3, 2 ** 22, 2 ** 21, 2 ** 21) + b"abc"   # 2**64 values: 0 in int64
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(DataError) as info:
        load_dataset("mnist", tmp_path)
    assert str(info.value) == (f"{path}{' (decompressed)' if gz else ''}: the IDX header says "
                               f"4194304x2097152x2097152 = {2 ** 64} values after its 16-byte header, but the file "
                               "holds 3 bytes after it")


def test_a_gz_that_inflates_past_its_header_is_refused_after_the_values_it_announces(tmp_path, monkeypatch):
    write_mnist(tmp_path, gz=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((5, 28, 28), np.uint8)) + bytes(64 << 20)))
    read = []
    real_open = gzip.open

    def counting_open(*args, **kwargs):   # the bytes the reader asks for
        f = real_open(*args, **kwargs)
        real_read = f.read
        f.read = lambda n=-1: read.append(n) or real_read(n)
        return f

    monkeypatch.setattr(gzip, "open", counting_open)
    with pytest.raises(DataError, match=r"the file holds more than 3920 bytes after it"):
        load_dataset("mnist", tmp_path)
    assert read[:2] == [16, 3921]   # the header, then the values announced and one byte more


def test_a_gzipped_idx_without_gz_in_its_name_says_so(tmp_path):
    write_mnist(tmp_path, gz=False)
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(DataError) as info:
        load_dataset("mnist", tmp_path)
    assert str(info.value).endswith("(unsigned bytes, 1 dimensions) (the file is gzipped: name it .gz)")


def test_tiny_imagenet_listings_with_a_byte_order_mark_load_and_non_utf8_bytes_are_named_by_line(tmp_path):
    arrays = write_tiny_imagenet(tmp_path)
    root = tmp_path / "tiny-imagenet-200"
    for name in ("wnids.txt", "val/val_annotations.txt"):   # as a Windows editor saves them
        (root / name).write_bytes(b"\xef\xbb\xbf" + (root / name).read_bytes())
    assert_matches(load_dataset("tiny-imagenet", tmp_path), arrays, atol=3)
    path = root / "val" / "val_annotations.txt"
    path.write_bytes(path.read_bytes() + b"caf\xe9.JPEG\tn01\t0\t0\t1\t1\n")
    lines = path.read_bytes().count(b"\n")
    with pytest.raises(DataError) as info:
        load_dataset("tiny-imagenet", tmp_path)
    assert str(info.value) == f"{path}:{lines}: not UTF-8 text (byte 0xe9); the official file is plain ASCII"


@pytest.mark.parametrize("name, write, path, says", [
    ("mnist", lambda d: write_mnist(d / "mnist", test=0), "mnist/t10k-images-idx3-ubyte.gz", ""),
    ("mnist", lambda d: write_mnist_npz(d / "mnist.npz", train=0), "mnist.npz", ": x_train"),
    ("svhn", lambda d: write_svhn(d / "svhn", test=0), "svhn/test_32x32.mat", ": X"),
    ("cifar100", lambda d: formats_fixtures.write_cifar100(d, test=0), "cifar-100-python/test", ": 'data'"),
])
def test_a_split_file_of_no_images_is_refused_by_name(tmp_path, name, write, path, says):
    """A test file of 0 images was taken, and the run failed later on "batch size 8 > 0 images",
    naming no file."""
    write(tmp_path)
    with pytest.raises(DataError) as info:
        load_dataset(name, tmp_path)
    assert _message(info) == f"{tmp_path / path}{says} holds no images"


@pytest.mark.parametrize("name", ["../../train/n01/images/n01_0.JPEG", "sub/val_0.JPEG", ".."])
def test_tiny_imagenet_val_listing_names_files_in_val_images_only(tmp_path, name):
    """A listed path outside val/images/ (a training image) was read and scored as a test image."""
    write_tiny_imagenet(tmp_path)
    annotations = tmp_path / "tiny-imagenet-200" / "val" / "val_annotations.txt"
    lines = annotations.read_text().splitlines()
    lines[1] = name + "\t" + lines[1].split("\t", 1)[1]
    annotations.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as info:
        load_dataset("tiny-imagenet", tmp_path)
    assert _message(info) == (f"{annotations}:2: {name!r} is not a file name in val/images/ (the listing names "
                              f"files there, e.g. val_0.JPEG)")


def test_an_image_above_pillows_bomb_warning_size_is_one_line_not_a_raw_warning(tmp_path, monkeypatch, capsys):
    """Pillow's DecompressionBombWarning (images above 89.5 M pixels) was printed raw, with its source line."""
    from PIL import Image

    write_image_folder(tmp_path)   # 5 wide, 6 high: 30 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20)   # 30 > 20 warns; 2 x 20 would refuse
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # a raw warning fails the test
        ds = load_dataset("imagefolder", tmp_path)
    err = capsys.readouterr().err
    files = sorted((tmp_path / "train").rglob("*.png"))
    assert len(ds.train.labels) == len(files)
    assert f"diffnas: note: {files[0]} is 5x6 = 30 pixels, above the 20 at which Pillow warns of a possible " \
           f"decompression bomb; decoded (and {len(files) + len(ds.test.labels) - 1} more such)" in err


@pytest.mark.parametrize("kind", ["idx", "npz"])
def test_an_mnist_file_the_system_refuses_to_read_says_so_as_the_other_readers_do(tmp_path, monkeypatch, kind):
    """The IDX reader said "cannot read ([Errno 13] Permission denied: '...')" and the npz reader "not a
    readable npz file (PermissionError: ...)" where every other reader says errors.reading's words."""
    def refused(path, *args, **kwargs):   # the tests run as root, whom chmod does not stop
        raise PermissionError(13, "Permission denied", str(path))

    if kind == "idx":
        write_mnist(tmp_path, gz=False)
        path = tmp_path / "train-images-idx3-ubyte"
        monkeypatch.setattr(formats, "open", refused, raising=False)
    else:
        path = tmp_path / "mnist.npz"
        write_mnist_npz(path)
        monkeypatch.setattr(formats.np, "load", refused)
    with pytest.raises(DataError) as info:
        load_dataset("mnist", tmp_path)
    assert str(info.value) == f"{path}: cannot read (Permission denied)"


@pytest.mark.parametrize("name", ["cifar10", "mnist", "svhn"])
def test_a_format_pointed_at_an_image_folder_says_to_read_it_as_one(tmp_path, name):
    """A JPEG copy of CIFAR-10 in train/<class>/ folders, given as --dataset cifar10, was refused with
    "no data_batch_1 in ...; try `diffnas download cifar10`": the download would not help."""
    write_image_folder(tmp_path)
    with pytest.raises(DataError) as info:
        load_dataset(name, tmp_path)
    assert str(info.value).endswith(f"; {tmp_path} holds train/<class>/ folders, an image folder: read it with "
                                    f"dataset='imagefolder'")
    assert "download" not in str(info.value)
    shutil.rmtree(tmp_path / "test")   # not the layout: the download hint as before
    with pytest.raises(DataError, match="try `diffnas download"):
        load_dataset(name, tmp_path)


@pytest.mark.parametrize("chunk", [1, 700, 64 << 20])
def test_channel_stats_count_values_instead_of_copying_the_images_to_float64(monkeypatch, chunk):
    """A float64 copy of 1,024 images at a time (8x their bytes) failed on a folder decoded at
    --image-size 8000 (34 GiB) after the uint8 array itself had passed the memory check. The counts of
    each value give the same mean and std (numpy's float64 ones), whatever the chunking."""
    from diffnas.data import types

    monkeypatch.setattr(types, "STATS_CHUNK_BYTES", chunk)
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (29, 3, 7, 5), dtype=np.uint8)
    images[:, 1] = 255   # a constant channel: std 0, not a tiny negative variance's NaN
    mean, std = channel_stats(images)
    reference = images.astype(np.float64) / 255
    np.testing.assert_allclose(mean, reference.mean(axis=(0, 2, 3)), rtol=0, atol=1e-15)
    np.testing.assert_allclose(std, reference.std(axis=(0, 2, 3)), rtol=0, atol=1e-12)
    assert std[1] == 0.0


def test_a_data_folder_of_another_dataset_or_the_binary_cifar_is_named(tmp_path):
    """--dataset cifar10 pointed at CIFAR-100's files (and the reverse), or at CIFAR-10's binary version,
    was told "no data_batch_1 ...; try diffnas download cifar10", a 170 MB download of what is there."""
    write_cifar100(tmp_path / "c100")
    with command_line():
        with pytest.raises(DataError, match=rf"; try `diffnas download cifar10 --data-dir [^`]*`; {tmp_path / 'c100'} "
                                            r"holds cifar100's files \(cifar-100-python\): --dataset cifar100 reads "
                                            r"them$"):
            load_dataset("cifar10", tmp_path / "c100")
        write_cifar10(tmp_path / "c10")
        with pytest.raises(DataError, match=r"holds cifar10's files \(cifar-10-batches-py\): --dataset cifar10 "
                                            r"reads them$"):
            load_dataset("cifar100", tmp_path / "c10")
        # a folder of several datasets: the one asked for is still offered for download
        with pytest.raises(DataError, match=r"; try `diffnas download svhn .*; .* holds cifar10's files"):
            load_dataset("svhn", tmp_path / "c10")
        (tmp_path / "bin" / "cifar-10-batches-bin").mkdir(parents=True)
        (tmp_path / "bin" / "cifar-10-batches-bin" / "data_batch_1.bin").write_bytes(bytes(3073))
        with pytest.raises(DataError, match=r"holds cifar10's binary version \(cifar-10-batches-bin\), and diffnas "
                                            r"reads the python version \(`diffnas download cifar10 --data-dir "):
            load_dataset("cifar10", tmp_path / "bin")
        with pytest.raises(DataError, match=r"; try `diffnas download svhn --data-dir [^`]*`$"):   # as before
            load_dataset("svhn", tmp_path / "bin")
