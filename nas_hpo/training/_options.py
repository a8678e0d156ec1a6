"""The options every training objective shares (``train``, ``learning_curve``,
``supernet``), declared once with what each allows, and what follows from them: the data
splits, the networks' input, the device."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from nas_hpo import data
from nas_hpo._objective import DataSource
from nas_hpo._options import check_declared, option
from nas_hpo.training._recipe import AUGMENT, resolve_device

__all__ = ["TrainingOptions", "check_device"]


def check_device(name: Any) -> str | None:
    """Why ``name`` is not a device this machine can train on (None: it is)."""
    if name == "auto":
        return None
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as e:
        return str(e)
    if dev.type == "cuda" and not torch.cuda.is_available():
        return f"{name!r} asked for, but CUDA is not available"
    return None


@dataclass(frozen=True)
class TrainingOptions:
    """Data (``dataset``, ``data_dir``, ``download``, ``split_seed``, ``val_fraction``),
    schedule length and batch (``epochs``, ``batch_size``), SGD's ``lr``, ``momentum`` and
    ``weight_decay``, ``label_smoothing``, the augmentation and the device. Subclasses add
    their own options; ``__post_init__`` checks every declared one."""

    dataset: str = option(data.DEFAULT, choices=data.names)
    data_dir: str | None = None
    download: bool = True
    split_seed: int = 0
    val_fraction: float = option(0.1, gt=0, lt=1)
    epochs: int = option(10, ge=1)
    batch_size: int = option(64, ge=1)
    lr: float = option(0.05, gt=0)
    momentum: float = option(0.9, ge=0)
    weight_decay: float = option(5e-4, ge=0)
    label_smoothing: float = option(0.1, ge=0, lt=1)
    augment: str = option("auto", choices=lambda: ["auto", *AUGMENT])
    device: str = option("cpu", check=check_device)

    def __post_init__(self) -> None:
        check_declared(self)

    @property
    def cost_device(self) -> str:
        return str(resolve_device(self.device))

    def splits(self) -> data.Splits:
        """The seeded train / validation / test splits of the dataset."""
        return data.load(self.dataset, split_seed=self.split_seed, data_dir=self.data_dir,
                         download=self.download, val_fraction=self.val_fraction)

    def data_source(self) -> DataSource:
        return DataSource(self.dataset, self.data_dir)

    def model_input(self) -> tuple[tuple[int, ...], int]:
        splits = self.splits()
        return splits.input_shape, splits.num_classes

    def replace(self, **changes: Any) -> Any:
        """These options with ``changes`` (checked again)."""
        return dataclasses.replace(self, **changes)
