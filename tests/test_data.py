"""Dataset loading through torchvision's real readers, on small files written here in each
dataset's on-disk format (nothing is downloaded)."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest
import torch

from nas_hpo import data


@pytest.fixture
def no_md5(monkeypatch):
    """torchvision checks CIFAR / SVHN files against the md5 of the real downloads; our small
    files exist but cannot match, so the check is reduced to 'the file exists'."""
    import os

    import torchvision.datasets.cifar as cifar
    import torchvision.datasets.svhn as svhn

    def exists(path, md5=None):
        return os.path.isfile(path)

    monkeypatch.setattr(cifar, "check_integrity", exists)
    monkeypatch.setattr(svhn, "check_integrity", exists)


def _images(rng, n, c, h, w):
    return rng.integers(0, 256, size=(n, c, h, w), dtype=np.uint8)


def _balanced_labels(n, k):
    return np.arange(n) % k


def pixels(x: torch.Tensor, s: data.Splits) -> np.ndarray:
    """Back to uint8 pixels with the statistics the splits were normalized with."""
    mean = np.asarray(s.mean, dtype=np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(s.std, dtype=np.float32).reshape(1, -1, 1, 1)
    return np.rint((x.numpy() * std + mean) * 255).astype(np.int64)


def write_cifar(root, rng, *, hundred=False, n_train=60, n_test=20):
    k = 100 if hundred else 10
    folder = root / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    folder.mkdir(parents=True)
    x = _images(rng, n_train + n_test, 3, 32, 32)
    y = _balanced_labels(n_train + n_test, k if not hundred else 5)  # 5 of the 100 classes
    key = "fine_labels" if hundred else "labels"

    def dump(name, xs, ys):
        with open(folder / name, "wb") as f:
            pickle.dump({"data": xs.reshape(len(xs), -1), key: ys.tolist()}, f)

    if hundred:
        dump("train", x[:n_train], y[:n_train])
        with open(folder / "meta", "wb") as f:
            pickle.dump({"fine_label_names": [f"c{i}" for i in range(100)]}, f)
    else:
        per = n_train // 5
        for b in range(5):
            sl = slice(b * per, (b + 1) * per)
            dump(f"data_batch_{b + 1}", x[sl], y[sl])
        with open(folder / "batches.meta", "wb") as f:
            pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)
    dump("test_batch" if not hundred else "test", x[n_train:], y[n_train:])
    return x, y


@pytest.mark.parametrize("hundred", [False, True])
def test_cifar_through_torchvision(tmp_path, no_md5, hundred):
    x, y = write_cifar(tmp_path, np.random.default_rng(0), hundred=hundred)
    name = "cifar100" if hundred else "cifar10"
    s = data.load(name, data_dir=str(tmp_path), download=False, val_fraction=0.25)
    assert s.input_shape == (3, 32, 32) and s.num_classes == (100 if hundred else 10)
    assert (len(s.x_train), len(s.x_val), len(s.x_test)) == (45, 15, 20)
    assert s.augment == "crop_flip"
    # The official test set is the test split, in its order and with its pixels.
    assert torch.equal(s.y_test, torch.from_numpy(y[60:]))
    assert sorted(s.y_train.tolist() + s.y_val.tolist()) == sorted(y[:60].tolist())
    # Pixels survive the trip, and the training split's statistics are the ones used.
    assert np.array_equal(pixels(s.x_test, s), x[60:])
    assert abs(float(s.x_train[:, 0].mean())) < 1e-4


def _idx(path, array: np.ndarray, magic: int):
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic))
        for d in array.shape:
            f.write(struct.pack(">I", d))
        f.write(array.astype(np.uint8).tobytes())


@pytest.mark.parametrize(("name", "folder"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_family_through_torchvision(tmp_path, name, folder):
    rng = np.random.default_rng(1)
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    x = rng.integers(0, 256, size=(50, 28, 28), dtype=np.uint8)
    y = _balanced_labels(50, 10).astype(np.uint8)
    xt = rng.integers(0, 256, size=(10, 28, 28), dtype=np.uint8)
    yt = _balanced_labels(10, 10).astype(np.uint8)
    _idx(raw / "train-images-idx3-ubyte", x, 2051)
    _idx(raw / "train-labels-idx1-ubyte", y, 2049)
    _idx(raw / "t10k-images-idx3-ubyte", xt, 2051)
    _idx(raw / "t10k-labels-idx1-ubyte", yt, 2049)
    s = data.load(name, data_dir=str(tmp_path), download=False, val_fraction=0.2)
    assert s.input_shape == (1, 28, 28) and s.num_classes == 10 and s.augment == "none"
    assert (len(s.x_train), len(s.x_val), len(s.x_test)) == (40, 10, 10)
    assert torch.equal(s.y_test, torch.from_numpy(yt.astype(np.int64)))
    # validation is stratified: one image of each class
    assert sorted(s.y_val.tolist()) == list(range(10))


def test_svhn_through_torchvision(tmp_path, no_md5):
    from scipy.io import savemat

    rng = np.random.default_rng(2)
    for split, n in (("train", 40), ("test", 10)):
        x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
        y = (np.arange(n) % 10 + 1).reshape(n, 1)  # SVHN labels digit 0 as 10
        savemat(tmp_path / f"{split}_32x32.mat", {"X": x, "y": y})
    s = data.load("svhn", data_dir=str(tmp_path), download=False, val_fraction=0.25)
    assert s.input_shape == (3, 32, 32) and s.augment == "crop"
    assert s.y_test.tolist() == [(i % 10 + 1) % 10 for i in range(10)]
    assert (len(s.x_train), len(s.x_val)) == (30, 10)


def _png(path, rng, size):
    from PIL import Image

    Image.fromarray(rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)).save(path)


def test_imagefolder_flat_and_with_train_test(tmp_path):
    rng = np.random.default_rng(3)
    flat = tmp_path / "flat"
    for c in ("cat", "dog"):
        (flat / c).mkdir(parents=True)
        for i in range(10):
            _png(flat / c / f"{i}.png", rng, 20)
    s = data.load("imagefolder", data_dir=str(flat), image_size=16)
    assert s.input_shape == (3, 16, 16) and s.num_classes == 2
    assert (len(s.x_train), len(s.x_val), len(s.x_test)) == (12, 4, 4)
    both = tmp_path / "both"
    for part, n in (("train", 6), ("test", 2)):
        for c in ("a", "b", "c"):
            (both / part / c).mkdir(parents=True)
            for i in range(n):
                _png(both / part / c / f"{i}.png", rng, 12)
    s = data.load("imagefolder", data_dir=str(both), image_size=8, val_fraction=0.5)
    assert s.input_shape == (3, 8, 8) and s.num_classes == 3 and len(s.x_test) == 6
    assert sorted(s.y_test.tolist()) == [0, 0, 1, 1, 2, 2]


def test_missing_files_say_where_and_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match=rf"CIFAR10 not found in {tmp_path}.*download"):
        data.load("cifar10", data_dir=str(tmp_path), download=False)
    with pytest.raises(ValueError, match="imagefolder: data_dir"):
        data.load("imagefolder")
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        data.load("imagefolder", data_dir=str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="unknown dataset 'cifar11'"):
        data.load("cifar11")


def test_digits_split_is_fixed_and_disjoint():
    a = data.load("digits", split_seed=0)
    assert (len(a.x_train), len(a.x_val), len(a.x_test)) == (1077, 360, 360)
    assert a.augment == "none"
    # Normalized with the training split's statistics.
    assert abs(float(a.x_train.mean())) < 1e-5
    b = data.load("digits", split_seed=1)
    assert not torch.equal(a.y_val, b.y_val)


def test_default_data_dir_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("NAS_HPO_DATA", str(tmp_path))
    assert data.default_data_dir() == tmp_path
    monkeypatch.delenv("NAS_HPO_DATA")
    assert data.default_data_dir().parts[-3:] == (".cache", "nas-hpo", "data")

