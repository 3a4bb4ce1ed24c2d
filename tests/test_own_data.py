"""Images of one's own, registered from Python (diffnas.data.register_tensors), through search,
training, evaluation and resume."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from diffnas import search, search_config, train, train_config
from diffnas.data import DATASETS, load_dataset, register_tensors
from diffnas.data.datasets import flips
from diffnas.errors import ConfigError, DataError
from diffnas.evaluate import evaluate


@pytest.fixture(autouse=True)
def registry_restored():
    before = dict(DATASETS)
    yield
    DATASETS.clear()
    DATASETS.update(before)


def images(n, seed=0, size=12, classes=3):
    """Learnable uint8 images: class k brightens channel k."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=g)
    x = torch.randint(0, 128, (n, 3, size, size), generator=g, dtype=torch.uint8)
    x[torch.arange(n), labels % 3] += 100
    return x, labels


def test_registered_tensors_load_as_they_were_given_with_their_own_statistics():
    (x, y), (xt, yt) = images(40), images(20, seed=1)
    register_tensors("mine", (x, y), (xt.numpy(), yt.numpy()), class_names=["r", "g", "b"])
    ds = load_dataset("mine")
    assert torch.equal(ds.train.images, x) and torch.equal(ds.train.labels, y) and torch.equal(ds.test.images, xt)
    assert ds.classes == 3 and ds.class_names == ("r", "g", "b") and ds.shape == (3, 12, 12)
    scaled = x.numpy().astype(np.float64) / 255
    np.testing.assert_allclose(ds.mean, scaled.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(ds.std, scaled.std(axis=(0, 2, 3)), rtol=1e-9)
    assert flips(ds)
    register_tensors("mine", (x, y), (xt, yt), flip=False, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    ds = load_dataset("mine")   # registered again: replaced
    assert not flips(ds) and ds.mean == (0.5, 0.5, 0.5) and ds.std == (0.25, 0.25, 0.25)
    # one of the two given: kept, the other the images' own (a given std alone was replaced by theirs)
    register_tensors("mine", (x, y), (xt, yt), std=(0.25, 0.25, 0.25))
    ds = load_dataset("mine")
    assert ds.std == (0.25, 0.25, 0.25)
    np.testing.assert_allclose(ds.mean, scaled.mean(axis=(0, 2, 3)), rtol=1e-12)
    with pytest.raises(ConfigError, match=r"^register_tensors: std must be finite numbers, got \(nan, 1.0, 1.0\)$"):
        register_tensors("mine", (x, y), (xt, yt), std=(float("nan"), 1.0, 1.0))   # a NaN search, blamed on its lr


def test_float_images_in_0_1_are_rounded_to_the_uint8_an_image_file_would_hold():
    x = torch.rand(8, 1, 6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = torch.arange(8) % 2
    ds = register_tensors("floats", (x, y), (x, y))
    assert torch.equal(ds.train.images, torch.round(x * 255).to(torch.uint8))
    assert ds.classes == 2


@pytest.mark.parametrize("train,kw,error,message", [
    ((torch.full((4, 1, 8, 8), 2.0), torch.zeros(4, dtype=torch.long)), {}, DataError,
     "floating-point images must lie in [0, 1] (got 2..2)"),
    ((torch.zeros(4, 8, 8, dtype=torch.uint8), torch.zeros(4, dtype=torch.long)), {}, DataError,
     "images must be (N, C, H, W), got shape (4, 8, 8)"),
    ((torch.zeros(4, 1, 8, 8, dtype=torch.uint8), torch.tensor([0, 1, -1, 0])), {}, DataError,
     "labels must be 0..classes-1, got -1"),
    ((torch.zeros(4, 1, 8, 8, dtype=torch.uint8), torch.tensor([0.0, 1, 1, 0])), {}, DataError,
     "labels must be a 1-d array of integers"),
    ((torch.zeros(4, 1, 8, 8, dtype=torch.uint8), torch.tensor([0, 1, 1, 0])), {"class_names": ["a"]},
     ConfigError, "1 class names for 2 classes"),
    ((torch.zeros(4, 1, 8, 8, dtype=torch.uint8), torch.tensor([0, 1, 1, 0])), {"classes": 1}, DataError,
     "labels span 0..1, expected 0..0"),
    ((torch.zeros(4, 1, 8, 8, dtype=torch.uint8), torch.tensor([0, 1, 1, 0])), {}, DataError,
     "channel 0 of the training images is constant (std 0, every value 0), as every channel is"),
    ((torch.zeros(4, 1, 8, 8, dtype=torch.uint8),), {}, ConfigError, "train must be an (images, labels) pair"),
    # flip="no" is true: the images would have been mirrored
    ((torch.zeros(4, 1, 8, 8, dtype=torch.uint8), torch.tensor([0, 1, 1, 0])), {"flip": "no"}, ConfigError,
     "register_tensors: flip must be True or False, got 'no'"),
])
def test_data_that_cannot_be_trained_on_is_refused_when_registered(train, kw, error, message):
    test = (torch.zeros(2, 1, 8, 8, dtype=torch.uint8), torch.zeros(2, dtype=torch.long))
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]").replace(".", r"\.")):
        register_tensors("bad", train, test, **kw)
    assert "bad" not in DATASETS


def test_images_that_are_not_square_are_searched_and_trained(tmp_path):
    """register_tensors refused 12x20 images ("the networks take square images") that an image folder of
    the same files searched and trained; image_size, which resizes image files only, is refused for them."""
    from diffnas.data.datasets import check_image_size

    g = torch.Generator().manual_seed(0)
    x, y = torch.randint(0, 256, (32, 3, 12, 20), dtype=torch.uint8, generator=g), torch.arange(32) % 2
    register_tensors("rect", (x, y), (x[:8], y[:8]))
    found = search(search_config("darts-1st", dataset="rect", layers=3, channels=4, nodes=2, batch_size=8,
                                 epochs=1, max_steps=1, plots=False, run_dir=str(tmp_path / "s")))
    trained = train(train_config("cifar", dataset="rect", layers=3, channels=4, batch_size=8, epochs=1, max_steps=1,
                                 cutout=8, plots=False, run_dir=str(tmp_path / "t")), found.genotype)
    assert trained.test_images == 8
    with pytest.raises(ConfigError, match=r"^image_size: rect images are 12x20 \(height x width\), fixed by the "
                                            r"format; .* leave it 0$"):
        check_image_size("rect", 12)


def test_a_built_in_name_is_not_replaced():
    x, y = images(8)
    with pytest.raises(ConfigError, match="'cifar10' is a built-in dataset"):
        register_tensors("cifar10", (x, y), (x, y))
    assert DATASETS["cifar10"].files


def test_search_train_evaluate_and_resume_on_registered_images(tmp_path):
    train_set, test_set = images(64), images(32, seed=1)
    register_tensors("mine", train_set, test_set)
    tiny = dict(dataset="mine", layers=3, channels=4, batch_size=8, plots=False)
    first = dict(order="first", max_steps=2)
    assert search(search_config(epochs=1, run_dir=str(tmp_path / "s"), **first, **tiny)).exit_code == 0
    # a new process knows no registration: a resume (to 2 epochs) says so, then runs once it is registered again
    longer = search_config(epochs=2, **first, **tiny)
    del DATASETS["mine"]
    with pytest.raises(ConfigError, match="registered with diffnas.data.register_tensors is known only to the "
                                          "process that registered it: register it again first"):
        search(longer, resume=tmp_path / "s")
    register_tensors("mine", train_set, test_set)
    found = search(longer, resume=tmp_path / "s")
    assert found.exit_code == 0 and len(found.history) == 3   # psi at the start and after each epoch
    t = train(train_config(epochs=1, run_dir=str(tmp_path / "t"), **tiny), found.genotype)
    scored = evaluate(tmp_path / "t")
    assert scored["test_images"] == 32 and scored["test_acc"] == pytest.approx(t.test_acc)


@pytest.mark.parametrize("labels,message", [
    (torch.tensor([2**62, 0, 1, 0]), "labels must be 0..classes-1, got 4611686018427387904"),   # a stray label
    (torch.tensor([1, 2, 1, 2]), "labels run to 2, but no training image has label 0: labels must count the "
                                 "classes from 0 without gaps"),
    (np.array([2**64 - 1, 0, 1, 0], dtype=np.uint64), "labels must be 0..classes-1, got 18446744073709551615"),
])
def test_labels_that_would_make_a_huge_or_gapped_classifier_are_refused(labels, message):
    """One label of 2**62 registered, then the network's classifier overflowed in a traceback; labels
    counted from 1 added an empty class 0 silently; a uint64 label wrapped to -1."""
    x = torch.randint(0, 255, (4, 1, 6, 6), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with pytest.raises(DataError, match=re.escape(message)):
        register_tensors("bad", (x, labels), (x, torch.tensor([0, 1, 0, 1])))
    assert register_tensors("ok", (x, torch.tensor([1, 2, 1, 2])), (x, torch.tensor([1, 2, 1, 2])), classes=3).classes == 3


def test_channels_last_and_half_precision_images_are_told_or_taken():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randint(0, 255, (4, 1, 6, 6), dtype=torch.uint8, generator=g), torch.tensor([0, 1, 0, 1])
    with pytest.raises(DataError, match=re.escape("look channels-last (N, H, W, C); pass them as (N, C, H, W): "
                                                  "images.permute(0, 3, 1, 2)")):
        register_tensors("last", (x.permute(0, 2, 3, 1), y), (x, y))
    halves = (x.float() / 255).bfloat16()
    taken = register_tensors("half", (halves, y), (x, y))
    assert torch.equal(taken.train.images, torch.round(halves.float() * 255).to(torch.uint8))
    wide = torch.randint(0, 255, (4, 16, 4, 4), dtype=torch.uint8, generator=g)   # 16 channels of 4x4: not channels-last
    assert register_tensors("wide", (wide, y), (wide, y)).shape == (16, 4, 4)


def test_a_search_refuses_images_its_genotype_could_not_be_trained_on(tmp_path):
    """search() ran on registered 1x1 to 3x3 images; train() on the same data refused them (4x4 at least)."""
    from diffnas import search, search_config
    from diffnas.errors import DataError

    x = torch.randint(0, 256, (16, 3, 3, 3), dtype=torch.uint8)
    register_tensors("tiny3", (x, torch.arange(16) % 2), (x[:4], torch.arange(4) % 2))
    try:
        with pytest.raises(DataError, match=r"^tiny3: the search needs images of at least 4x4, as the training of "
                                            r"the genotype it finds does; the dataset's are 3x3$"):
            search(search_config("darts-1st", dataset="tiny3", layers=3, channels=4, epochs=1, batch_size=4,
                                 run_dir=str(tmp_path / "r")))
        assert not (tmp_path / "r").exists()
    finally:
        del DATASETS["tiny3"]
