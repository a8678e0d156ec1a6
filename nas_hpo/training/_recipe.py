"""The training recipe the training objectives share: optimizers, learning-rate schedules,
numeric precision, the device, the standard augmentations, evaluation and stratified data
subsets.

Optimizers and schedules are looked up by name from the objective's options (``o``: anything
with ``lr``, ``momentum`` and ``weight_decay``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = ["AUGMENT", "OPTIMIZERS", "PRECISIONS", "SCHEDULES", "autocast_dtype",
           "evaluate", "evaluation_sums", "resolve_device", "subset"]


def _sgd(params: Any, o: Any, fused: bool, capturable: bool = False) -> torch.optim.Optimizer:
    # (SGD has no ``capturable`` option: its fused step is graph-safe as it is, given a
    # learning rate that lives on the device when it is to change between replays)
    return torch.optim.SGD(
        params,
        lr=o.lr,
        momentum=o.momentum,
        nesterov=o.momentum > 0,
        weight_decay=o.weight_decay,
        # fused on a GPU; on the CPU the multi-tensor (foreach) kernels, not the default
        # per-parameter loop: 1.25x faster per step for an nb201 net of ~200 small tensors.
        **({"fused": True} if fused else {"foreach": True}),
    )


def _adamw(params: Any, o: Any, fused: bool, capturable: bool = False) -> torch.optim.Optimizer:
    # capturable: the step count and bias corrections stay on the device (a CUDA graph
    # cannot read a host-side step count)
    return torch.optim.AdamW(
        params, lr=o.lr, weight_decay=o.weight_decay,
        **({"fused": True} if fused else {"foreach": True}),
        **({"capturable": True} if capturable else {}),
    )


OPTIMIZERS = {"sgd": _sgd, "adamw": _adamw}


def _cosine(opt: torch.optim.Optimizer, o: Any, steps: int) -> Any:
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)


def _onecycle(opt: torch.optim.Optimizer, o: Any, steps: int) -> Any:
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=o.lr, total_steps=steps)


def _constant(opt: torch.optim.Optimizer, o: Any, steps: int) -> Any:
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)


SCHEDULES = {"cosine": _cosine, "onecycle": _onecycle, "constant": _constant}
PRECISIONS = ("auto", "fp32", "bf16")


def resolve_device(name: str) -> torch.device:
    """``"auto"``: the GPU where there is one, else the CPU; any other name as torch reads it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _crop(x: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    """Random crops of the zero-padded batch (the standard CIFAR augmentation), one offset per
    image, by gathering rows and columns: no per-image Python loop."""
    b, _, h, w = x.shape
    padded = nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=gen, device=gen.device).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=gen, device=gen.device).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chan = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


def _flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    mask = torch.rand(x.shape[0], generator=gen, device=gen.device).to(x.device) < 0.5
    return torch.where(mask[:, None, None, None], x.flip(3), x)


def _augment_none(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return x


def _augment_crop(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    # Padding 4 on 32×32 images (the usual recipe), in proportion on other sizes.
    return _crop(x, max(1, x.shape[-1] // 8), gen)


def _augment_crop_flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return _flip(_augment_crop(x, gen), gen)


AUGMENT: dict[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = {
    "none": _augment_none,
    "crop": _augment_crop,
    "crop_flip": _augment_crop_flip,
}



def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device`` (None: float32 throughout);
    ``"auto"`` is bf16 on a GPU and fp32 on the CPU."""
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    return torch.bfloat16 if precision == "bf16" else None


def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int = 1024,
    autocast: torch.dtype | None = None,
) -> tuple[float, float]:
    """Accuracy and mean cross-entropy of ``model`` on ``(x, y)`` in eval mode."""
    model.eval()
    correct = torch.zeros((), device=x.device)
    loss = torch.zeros((), device=x.device)
    evaluation_sums(model, x, y, correct, loss, batch_size=batch_size, autocast=autocast)
    return correct.item() / len(x), loss.item() / len(x)


@torch.no_grad()
def evaluation_sums(model: nn.Module, x: torch.Tensor, y: torch.Tensor, correct: torch.Tensor,
                    loss: torch.Tensor, *, batch_size: int = 1024,
                    autocast: torch.dtype | None = None, cache: bool = True) -> None:
    """Set ``correct`` and ``loss`` (0-d tensors on ``x``'s device) to the number of correct
    predictions and the summed cross-entropy of ``model`` on ``(x, y)``, in chunks of
    ``batch_size``, without a synchronization; ``cache``: autocast's weight-cast cache."""
    correct.zero_()
    loss.zero_()
    for i in range(0, len(x), batch_size):
        with torch.autocast(x.device.type, dtype=autocast or torch.float32,
                            enabled=autocast is not None, cache_enabled=cache):
            out = model(x[i : i + batch_size]).float()
        loss += nn.functional.cross_entropy(out, y[i : i + batch_size], reduction="sum")
        correct += (out.argmax(1) == y[i : i + batch_size]).sum()


def subset(y: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """A fixed, stratified ``fraction`` of the indices (the same for every trial of a study)."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    labels = y.numpy()
    n_keep = max(2, int(round(fraction * len(labels))))
    idx = np.arange(len(labels))
    counts = np.bincount(labels)
    k = int((counts > 0).sum())
    stratify = labels if n_keep >= k and len(labels) - n_keep >= k and counts.min() >= 2 else None
    keep, _ = train_test_split(idx, train_size=n_keep, random_state=seed, stratify=stratify)
    return torch.from_numpy(np.sort(keep))


