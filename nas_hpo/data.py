"""Datasets as in-memory tensors with fixed, seeded train / validation / test splits.

The search optimizes validation accuracy; the test split is only reported. A split depends on
the dataset and ``split_seed`` alone, so every trial of a study sees the same three splits.

- ``digits`` (the embedded default): scikit-learn's bundled 1,797 real 8×8 images, no
  download; stratified 60 / 20 / 20 split.
- ``cifar10``, ``cifar100``, ``mnist``, ``fashion_mnist``, ``svhn``: read by torchvision from
  ``data_dir`` (downloaded there on first use when ``download`` is true). The official test set
  is the test split; a stratified ``val_fraction`` of the official training set is the
  validation split.
- ``imagefolder``: any ``torchvision.datasets.ImageFolder`` directory (``data_dir`` is the
  folder of class folders), images resized to ``image_size``; with ``train/`` and ``test/``
  sub-folders those are the splits, otherwise a stratified 60 / 20 / 20 split.

Everything is held as tensors (normalized with the training split's per-channel mean and
standard deviation), so training moves them to its device once and indexes batches there:
no per-batch Python data pipeline.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas_hpo._registry import Registry

__all__ = [
    "AUGMENTATIONS",
    "DEFAULT",
    "REGISTRY",
    "Source",
    "Splits",
    "default_data_dir",
    "load",
    "names",
    "register",
]

#: The embedded default: real images that need no download.
DEFAULT = "digits"

#: Augmentations a dataset may ask for (applied on the training device, per batch).
AUGMENTATIONS = ("none", "crop", "crop_flip")


@dataclass(frozen=True)
class Splits:
    """Normalized inputs ``(N, C, H, W)`` and integer labels for each split."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    #: The standard augmentation of this dataset (``"crop_flip"`` for natural 32×32 images,
    #: ``"crop"`` for house numbers, ``"none"`` for digits); ``Train(augment="auto")`` uses it.
    augment: str = "none"
    #: Per-channel mean and standard deviation of the training split (pixels in [0, 1]) that
    #: every split was normalized with.
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]


@dataclass(frozen=True)
class Source:
    """What a dataset reader returns: images ``(N, C, H, W)`` as uint8 (or floats in [0, 1])
    and labels; ``test`` is the official test set, or ``None`` where there is none."""

    train: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray] | None
    num_classes: int
    augment: str = "none"


Reader = Callable[[Path, bool, int], Source]
#: Name → reader; metadata: ``embedded`` (it needs no files: the contract tests load it),
#: ``num_classes``.
REGISTRY: Registry[Reader] = Registry("dataset")
_DATASETS = REGISTRY


def register(name: str, **meta: Any) -> Callable[[Reader], Reader]:
    """Register a dataset reader ``f(data_dir, download, image_size) -> Source`` under
    ``name`` (then ``dataset = "name"`` in a study file); a duplicate name is an error."""
    return REGISTRY.register(name, **meta)


def default_data_dir() -> Path:
    """Where downloaded datasets live: ``$NAS_HPO_DATA`` or ``~/.cache/nas-hpo/data``."""
    env = os.environ.get("NAS_HPO_DATA")
    return Path(env) if env else Path.home() / ".cache" / "nas-hpo" / "data"


@_DATASETS.register("digits", embedded=True, num_classes=10)
def _digits(data_dir: Path, download: bool, image_size: int) -> Source:
    """scikit-learn's bundled 8×8 handwritten digits (1,797 real images, no download)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.images.astype(np.float32)[:, None, :, :] / 16.0
    return Source((x, d.target.astype(np.int64)), None, 10)


def _hwc(data: np.ndarray | torch.Tensor) -> np.ndarray:
    """torchvision's ``.data`` (N, H, W[, C]) as (N, C, H, W) uint8."""
    a = np.asarray(data)
    if a.ndim == 3:
        return a[:, None, :, :]
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def _torchvision(cls_name: str, *, augment: str, num_classes: int) -> Reader:
    def read(data_dir: Path, download: bool, image_size: int) -> Source:
        from torchvision import datasets

        cls = getattr(datasets, cls_name)
        try:
            train = cls(str(data_dir), train=True, download=download)
            test = cls(str(data_dir), train=False, download=download)
        except RuntimeError as e:
            raise FileNotFoundError(
                f"{cls_name} not found in {data_dir} ({e}); set download = true or data_dir"
            ) from None
        return Source(
            (_hwc(train.data), np.asarray(train.targets, dtype=np.int64)),
            (_hwc(test.data), np.asarray(test.targets, dtype=np.int64)),
            num_classes,
            augment,
        )

    read.__doc__ = f"torchvision's {cls_name} (downloaded into data_dir when missing)."
    return read


_DATASETS.add("cifar10", _torchvision("CIFAR10", augment="crop_flip", num_classes=10),
              num_classes=10)
_DATASETS.add("cifar100", _torchvision("CIFAR100", augment="crop_flip", num_classes=100),
              num_classes=100)
_DATASETS.add("mnist", _torchvision("MNIST", augment="none", num_classes=10), num_classes=10)
_DATASETS.add("fashion_mnist", _torchvision("FashionMNIST", augment="none", num_classes=10),
              num_classes=10)


@_DATASETS.register("svhn", num_classes=10)
def _svhn(data_dir: Path, download: bool, image_size: int) -> Source:
    """torchvision's SVHN (train and test splits; ``extra`` is not used). Digits are not
    mirror-symmetric, so its augmentation is crops only."""
    from torchvision import datasets

    try:
        train = datasets.SVHN(str(data_dir), split="train", download=download)
        test = datasets.SVHN(str(data_dir), split="test", download=download)
    except RuntimeError as e:
        raise FileNotFoundError(
            f"SVHN not found in {data_dir} ({e}); set download = true or data_dir"
        ) from None
    return Source(
        (np.asarray(train.data), np.asarray(train.labels, dtype=np.int64)),
        (np.asarray(test.data), np.asarray(test.labels, dtype=np.int64)),
        10,
        "crop",
    )


def _read_folder(root: Path, image_size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from torchvision import datasets, transforms

    tf = transforms.Compose(
        [transforms.Resize(image_size), transforms.CenterCrop(image_size), transforms.PILToTensor()]
    )
    folder = datasets.ImageFolder(str(root), transform=tf)
    if len(folder) == 0:
        raise FileNotFoundError(f"no images in {root}")
    xs, ys = [], []
    for img, label in folder:
        if img.shape[0] == 1:
            img = img.expand(3, -1, -1)
        xs.append(img[:3].numpy())
        ys.append(label)
    return np.stack(xs), np.asarray(ys, dtype=np.int64), folder.classes


@_DATASETS.register("imagefolder")
def _imagefolder(data_dir: Path, download: bool, image_size: int) -> Source:
    """A ``torchvision.datasets.ImageFolder`` tree (``data_dir/<class>/<image>``, or
    ``data_dir/train/<class>/...`` with ``data_dir/test/<class>/...``), read once into memory
    as RGB images of ``image_size`` × ``image_size`` (resize, centre crop)."""
    if not data_dir.is_dir():
        raise FileNotFoundError(f"imagefolder: {data_dir} is not a directory")
    if (data_dir / "train").is_dir() and (data_dir / "test").is_dir():
        x, y, classes = _read_folder(data_dir / "train", image_size)
        xt, yt, test_classes = _read_folder(data_dir / "test", image_size)
        if test_classes != classes:
            raise ValueError(
                f"imagefolder: {data_dir}/test has classes {test_classes}, train has {classes}"
            )
        return Source((x, y), (xt, yt), len(classes), "crop_flip")
    x, y, classes = _read_folder(data_dir, image_size)
    return Source((x, y), None, len(classes), "crop_flip")


def _split(idx: np.ndarray, y: np.ndarray, test_size: float, seed: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of the indices ``idx`` (every class in the same proportion in each
    part; unstratified where a class has a single image)."""
    from sklearn.model_selection import train_test_split

    labels = y[idx]
    counts = np.bincount(labels)
    stratify = labels if counts[counts > 0].min() >= 2 else None
    a, b = train_test_split(idx, test_size=test_size, random_state=seed, stratify=stratify)
    return a, b


def _as_float(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)


@lru_cache(maxsize=8)
def load(
    name: str,
    *,
    split_seed: int = 0,
    data_dir: str | None = None,
    download: bool = True,
    val_fraction: float = 0.1,
    image_size: int = 32,
) -> Splits:
    """Dataset ``name`` split into train / validation / test, normalized with the training
    split's per-channel mean and standard deviation.

    With an official test set, ``val_fraction`` of the official training set is held out for
    validation; without one (digits, a flat image folder) the split is 60 / 20 / 20."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    root = Path(data_dir).expanduser() if data_dir else default_data_dir()
    if name == "imagefolder" and not data_dir:
        raise ValueError("imagefolder: data_dir (the folder of class folders) is required")
    src = _DATASETS.entry(name)(root, download, image_size)
    x, y = src.train
    idx = np.arange(len(y))
    if src.test is None:
        rest, te = _split(idx, y, 0.2, split_seed)
        tr, va = _split(rest, y, 0.25, split_seed)
        te = np.sort(te)
        x_test, y_test = x[te], y[te]
    else:
        tr, va = _split(idx, y, val_fraction, split_seed)
        x_test, y_test = src.test
    tr, va = np.sort(tr), np.sort(va)
    x_train = _as_float(x[tr])
    mean = x_train.mean(axis=(0, 2, 3), keepdims=True)
    std = x_train.std(axis=(0, 2, 3), keepdims=True) + 1e-8

    def t(a: np.ndarray, labels: bool = False) -> torch.Tensor:
        a = a if labels else (_as_float(a) - mean) / std
        return torch.from_numpy(np.ascontiguousarray(a))

    return Splits(
        t(x[tr]),
        t(y[tr], True),
        t(x[va]),
        t(y[va], True),
        t(x_test),
        t(y_test, True),
        src.num_classes,
        src.augment,
        tuple(float(v) for v in mean.flatten()),
        tuple(float(v) for v in std.flatten()),
    )


def names() -> list[str]:
    return _DATASETS.names()
