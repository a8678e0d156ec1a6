"""``train``: full training of the built network, the ground truth of every cheaper estimator.

The network is trained on the training split, validated after every epoch (reported to the
trial, so Optuna pruners can stop it) and finally scored on the test split, which is recorded
but never optimized. With the same seed on the same device (CPU) two runs give the same curve:
the model's initialization, the batch order and every random op draw from the trial's seed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nas_hpo import data
from nas_hpo._objective import Context, Objective, Result, TrialFailure
from nas_hpo.objectives import register
from nas_hpo.space import SearchSpace


def _sgd(params: Any, o: Train) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, nesterov=True,
                           weight_decay=o.weight_decay)


def _adamw(params: Any, o: Train) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)


OPTIMIZERS = {"sgd": _sgd, "adamw": _adamw}


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512
             ) -> tuple[float, float]:
    """Accuracy and mean cross-entropy of ``model`` on ``(x, y)`` in eval mode."""
    model.eval()
    correct, loss = 0, 0.0
    for i in range(0, len(x), batch_size):
        out = model(x[i:i + batch_size])
        loss += nn.functional.cross_entropy(out, y[i:i + batch_size], reduction="sum").item()
        correct += (out.argmax(1) == y[i:i + batch_size]).sum().item()
    return correct / len(x), loss / len(x)


@register("train")
@dataclass(frozen=True)
class Train(Objective):
    """Train with SGD + Nesterov (or AdamW) under a cosine schedule; return the final
    validation accuracy."""

    dataset: str = "digits"
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.05
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    split_seed: int = 0
    device: str = "cpu"

    directions = ("maximize",)

    def __post_init__(self) -> None:
        if self.dataset not in data.names():
            raise ValueError(f"dataset: unknown {self.dataset!r}; known: {', '.join(data.names())}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer: unknown {self.optimizer!r}; known: {', '.join(sorted(OPTIMIZERS))}"
            )
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")

    @property
    def cost_device(self) -> str:  # type: ignore[override]
        return str(_device(self.device))

    def model_input(self) -> tuple[tuple[int, ...], int]:
        splits = data.load(self.dataset, split_seed=self.split_seed)
        return splits.input_shape, splits.num_classes

    def __call__(self, config: Mapping[str, Any], *, space: SearchSpace, ctx: Context) -> Result:
        splits = data.load(self.dataset, split_seed=self.split_seed)
        device = _device(self.device)
        torch.manual_seed(ctx.seed)
        model = space.build(config, input_shape=splits.input_shape,
                            num_classes=splits.num_classes).to(device)
        n_params = sum(p.numel() for p in model.parameters())
        ctx.set_attr("params", n_params)
        x, y = splits.x_train.to(device), splits.y_train.to(device)
        x_val, y_val = splits.x_val.to(device), splits.y_val.to(device)
        gen = torch.Generator().manual_seed(ctx.seed)
        steps_per_epoch = math.ceil(len(x) / self.batch_size)
        opt = OPTIMIZERS[self.optimizer](model.parameters(), self)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, self.epochs * steps_per_epoch)
        loss_fn = nn.CrossEntropyLoss(label_smoothing=self.label_smoothing)
        curve: list[float] = []
        start = time.perf_counter()
        for epoch in range(1, self.epochs + 1):
            model.train()
            perm = torch.randperm(len(x), generator=gen).to(device)
            for i in range(0, len(x), self.batch_size):
                idx = perm[i:i + self.batch_size]
                if len(idx) < 2:
                    # BatchNorm cannot train on one sample once the map is 1×1; a lone
                    # trailing sample is dropped (as DataLoader's drop_last would).
                    continue
                loss = loss_fn(model(x[idx]), y[idx])
                if not torch.isfinite(loss):
                    raise TrialFailure(f"training loss became {loss.item()} in epoch {epoch}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
            val_acc, val_loss = evaluate(model, x_val, y_val)
            curve.append(val_acc)
            ctx.set_attr("learning_curve", curve)
            ctx.report(val_acc, epoch)
        train_time = time.perf_counter() - start
        test_acc, _ = evaluate(model, splits.x_test.to(device), splits.y_test.to(device))
        return Result(
            (curve[-1],),
            {
                "val_loss": val_loss,
                "test_accuracy": test_acc,
                "params": n_params,
                "learning_curve": curve,
                "fidelity": {"epochs": self.epochs, "dataset": self.dataset},
                "train_seconds": round(train_time, 3),
            },
        )
