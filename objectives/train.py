"""``train``: full training of the built network, the ground truth of every cheaper estimator.

The network is trained on the training split, validated after every epoch (reported to the
trial, so Optuna pruners can stop it) and finally scored on the test split, which is recorded
but never optimized. With the same seed on the same device (CPU) two runs give the same curve:
the model's initialization, the batch order, the augmentation and every random op draw from
the trial's seed.

The data stay on the training device as tensors for the whole run and batches are indexed
there (augmentation too), so no Python data pipeline runs per batch; the loss is checked once
per epoch, so the GPU is not synchronized after every step. Batches and weights are in
channels_last on the CPU and on a GPU (oneDNN's and cuDNN's fast layout; see
``avoid_strided_pointwise_convs`` for the one oneDNN shape that needs a rewrite); on the CPU
average pooling runs as a depthwise convolution (``avg_pools_as_convs``: PyTorch's CPU
pooling kernels are several times slower). Four low fidelities, as in the literature, are
options that multi-fidelity strategies can drive through ``Context.fidelity``: ``epochs``,
``data_fraction`` (a fixed, stratified part of the training split), ``resolution`` (inputs
resized once per trial) and ``width_mult`` (the space's own width option). The fidelity used
is stored on the trial.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nas_hpo import data, spaces
from nas_hpo._objective import Context, Objective, Result, TrialFailure
from nas_hpo.objectives import register
from nas_hpo.space import SearchSpace

FIDELITIES = ("epochs", "data_fraction", "resolution", "width_mult")


def _sgd(params: Any, o: Train, fused: bool) -> torch.optim.Optimizer:
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


def _adamw(params: Any, o: Train, fused: bool) -> torch.optim.Optimizer:
    return torch.optim.AdamW(
        params, lr=o.lr, weight_decay=o.weight_decay,
        **({"fused": True} if fused else {"foreach": True}),
    )


OPTIMIZERS = {"sgd": _sgd, "adamw": _adamw}


def _cosine(opt: torch.optim.Optimizer, o: Train, steps: int) -> Any:
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)


def _onecycle(opt: torch.optim.Optimizer, o: Train, steps: int) -> Any:
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=o.lr, total_steps=steps)


def _constant(opt: torch.optim.Optimizer, o: Train, steps: int) -> Any:
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)


SCHEDULES = {"cosine": _cosine, "onecycle": _onecycle, "constant": _constant}
PRECISIONS = ("auto", "fp32", "bf16")


def _device(name: str) -> torch.device:
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


def _subsample_input(module: nn.Module, args: tuple) -> tuple:
    (x,) = args
    pad, stride = module._subsample
    if pad:
        x = nn.functional.pad(x, (pad[1], pad[1], pad[0], pad[0]))
    return (x[:, :, :: stride[0], :: stride[1]],)


def avoid_strided_pointwise_convs(model: nn.Module) -> int:
    """Rewrite each strided 1×1 convolution of ``model`` (in place) as a subsampling of its
    input followed by the same 1×1 convolution at stride 1: the same function, the same
    parameters and state-dict keys. Returns how many were rewritten.

    Why: oneDNN's weight gradient of a strided 1×1 convolution in channels_last with fewer
    than 8 input channels writes out of bounds on its AVX2 code path (torch 2.14.1; found
    with ``ONEDNN_MAX_CPU_ISA=AVX2`` and glibc's malloc checks: a ResNet shortcut from 4 to 8
    channels at stride 2 aborts the backward pass on a corrupted heap; every other
    convolution shape we scanned, depthwise and dilated included, is clean). A 1×1
    convolution reads one pixel per output, so subsampling first computes exactly the same
    thing, and its stride-1 weight gradient is not affected."""
    n = 0
    for m in model.modules():
        if (isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.stride != (1, 1)
                and m.padding_mode == "zeros" and isinstance(m.padding, tuple)):
            m._subsample = (m.padding if any(m.padding) else None, m.stride)
            m.stride, m.padding = (1, 1), (0, 0)
            m.register_forward_pre_hook(_subsample_input)
            n += 1
    return n


#: Smaller maps in channels_last keep PyTorch's pooling: there it is as fast on 8×8 maps, and
#: the two extra Python calls per pooling made ``nb201`` training on digits ~8% slower. (In
#: the default layout PyTorch's pooling is slow at every size: 64×64×8×8 forward+backward
#: 1.7 vs 0.3 ms.)
MIN_POOL_PIXELS = 256


def _graph_constant(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """``fn``'s tensors cached by argument (read only: never a parameter or buffer); under
    ``torch.compile`` built in the graph instead (dynamo does not trace through a cache)."""
    cached = functools.lru_cache(maxsize=256)(fn)

    @functools.wraps(fn)
    def call(*args: Any) -> torch.Tensor:
        return fn(*args) if torch.compiler.is_compiling() else cached(*args)

    return call


@_graph_constant
def _ones_kernel(channels: int, size: tuple[int, int], dtype: torch.dtype,
                 device: torch.device) -> torch.Tensor:
    return torch.ones((channels, 1, *size), dtype=dtype, device=device)


@_graph_constant
def _window_counts(hw: tuple[int, int], size: tuple[int, int], stride: tuple[int, int],
                   padding: tuple[int, int], device: torch.device) -> torch.Tensor:
    """How many input pixels (padding excluded) each output pixel's window covers."""
    return nn.functional.conv2d(torch.ones((1, 1, *hw), device=device),
                                torch.ones((1, 1, *size), device=device), stride=stride,
                                padding=padding)


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[-1]))


class _WindowSum(torch.autograd.Function):
    """Σ over each pooling window, per channel: a depthwise convolution with a kernel of
    ones. Its gradient is the transposed convolution (``_WindowSumT``), whose gradient is
    this again, so every order of derivative (GraSP's double backward) stays on these two
    oneDNN kernels. (Left to autograd, the double backward of a grouped convolution runs
    one convolution per channel.)"""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, size: tuple[int, int], stride: tuple[int, int],
                padding: tuple[int, int]) -> torch.Tensor:
        ctx.geometry = (size, stride, padding, tuple(x.shape[-2:]))
        c = x.shape[1]
        kernel = _ones_kernel(c, size, x.dtype, x.device)
        return nn.functional.conv2d(x, kernel, None, stride, padding, 1, c)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        return _WindowSumT.apply(grad, *ctx.geometry), None, None, None


class _WindowSumT(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, grad: torch.Tensor, size: tuple[int, int], stride: tuple[int, int],
                padding: tuple[int, int], hw: tuple[int, int]) -> torch.Tensor:
        ctx.geometry = (size, stride, padding)
        # The rows / columns that no window reached when the stride does not divide evenly.
        extra = tuple((n + 2 * p - k) % s for n, k, s, p in zip(hw, size, stride, padding,
                                                               strict=True))
        c = grad.shape[1]
        kernel = _ones_kernel(c, size, grad.dtype, grad.device)
        return nn.functional.conv_transpose2d(grad, kernel, None, stride, padding, extra, c)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        return _WindowSum.apply(grad, *ctx.geometry), None, None, None, None


class _AvgPoolByConv(nn.AvgPool2d):
    """``nn.AvgPool2d`` computed as window sums (``_WindowSum``) divided by the window
    sizes: the same function (up to float rounding). What it does not cover
    (``divisor_override``, a ``ceil_mode`` that adds a partial window, inputs other than
    float32) and channels_last maps under ``MIN_POOL_PIXELS`` run the pooling itself."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.dtype != torch.float32 or self.divisor_override:
            return super().forward(x)
        size = _pair(self.kernel_size)
        stride = _pair(self.stride if self.stride else self.kernel_size)
        padding = _pair(self.padding)
        hw = (int(x.shape[-2]), int(x.shape[-1]))
        partial = self.ceil_mode and any(
            (n + 2 * p - k) % s for n, k, s, p in zip(hw, size, stride, padding, strict=True))
        small = (hw[0] * hw[1] < MIN_POOL_PIXELS
                 and x.is_contiguous(memory_format=torch.channels_last))
        if partial or small:
            return super().forward(x)
        out = _WindowSum.apply(x, size, stride, padding)
        if self.count_include_pad or not any(padding):
            return out / (size[0] * size[1])
        return out / _window_counts(hw, size, stride, padding, x.device)


def avg_pools_as_convs(model: nn.Module) -> int:
    """Make each ``nn.AvgPool2d`` of ``model`` (in place) compute as a depthwise convolution
    of ones (``_AvgPoolByConv``, a subclass): the same module otherwise (its options,
    hooks, no parameters). Returns how many were changed.

    Why: PyTorch's CPU average pooling is slow next to oneDNN's depthwise convolution
    (torch 2.14.1, 2-core AVX-512 EPYC, NAS-Bench-201's 3×3 stride-1 pooling without the
    padding on 64×16×32×32: forward 3.6 vs 0.45 ms, forward+backward 7.9 vs 1.1 ms, a
    double backward 17.6 vs 5.2 ms in the default layout; 1.0 vs 0.2, 1.6 vs 0.6 and 7.1
    vs 3.8 ms in channels_last); in a default-layout NAS-Bench-201 step it was most of the
    time."""
    n = 0
    for m in model.modules():
        if type(m) is nn.AvgPool2d:
            m.__class__ = _AvgPoolByConv
            n += 1
    return n


@contextlib.contextmanager
def pytorch_avg_pools(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` with PyTorch's own pooling in ``avg_pools_as_convs``'s modules for the
    duration (what FLOP counters should see: a pooling, not a convolution)."""
    changed = [m for m in model.modules() if type(m) is _AvgPoolByConv]
    for m in changed:
        m.__class__ = nn.AvgPool2d
    try:
        yield model
    finally:
        for m in changed:
            m.__class__ = _AvgPoolByConv


@torch.no_grad()
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
    for i in range(0, len(x), batch_size):
        with torch.autocast(x.device.type, dtype=autocast or torch.float32,
                            enabled=autocast is not None):
            out = model(x[i : i + batch_size]).float()
        loss += nn.functional.cross_entropy(out, y[i : i + batch_size], reduction="sum")
        correct += (out.argmax(1) == y[i : i + batch_size]).sum()
    return correct.item() / len(x), loss.item() / len(x)


def _subset(y: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
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


def check_training_options(o: Any, known: Mapping[str, tuple[Any, list[str]]]) -> None:
    """The checks every training objective's options share (``o``: its settings, with
    ``dataset``, ``augment``, ``epochs``, ``batch_size``, ``lr``, ``label_smoothing``,
    ``device``), plus ``known``: more names with their allowed values."""
    names = {
        "dataset": (o.dataset, data.names()),
        "augment": (o.augment, ["auto", *AUGMENT]),
        **known,
    }
    for key, (value, allowed) in names.items():
        if value not in allowed:
            raise ValueError(f"{key}: unknown {value!r}; known: {', '.join(sorted(allowed))}")
    for name in ("epochs", "batch_size"):
        if getattr(o, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(o, name)}")
    if not o.lr > 0:
        raise ValueError(f"lr must be > 0, got {o.lr}")
    if not 0 <= o.label_smoothing < 1:
        raise ValueError(f"label_smoothing must be in [0, 1), got {o.label_smoothing}")
    if o.device != "auto":
        try:
            dev = torch.device(o.device)
        except RuntimeError as e:
            raise ValueError(f"device: {e}") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device: {o.device!r} asked for, but CUDA is not available")


@register("train")
@dataclass(frozen=True)
class Train(Objective):
    """Train with SGD + Nesterov (or AdamW) under a cosine (or one-cycle) schedule with label
    smoothing, weight decay and the dataset's standard augmentation; return the final
    validation accuracy."""

    dataset: str = data.DEFAULT
    data_dir: str | None = None
    download: bool = True
    split_seed: int = 0
    val_fraction: float = 0.1
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.05
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    schedule: str = "cosine"
    augment: str = "auto"
    data_fraction: float = 1.0
    resolution: int | None = None
    width_mult: float = 1.0
    device: str = "cpu"
    precision: str = "auto"
    channels_last: bool | None = None
    compile: bool = False
    diverge_loss: float | None = None

    directions = ("maximize",)
    fidelities = FIDELITIES

    def __post_init__(self) -> None:
        check_training_options(self, {
            "optimizer": (self.optimizer, list(OPTIMIZERS)),
            "schedule": (self.schedule, list(SCHEDULES)),
            "precision": (self.precision, list(PRECISIONS)),
        })
        if not 0 < self.data_fraction <= 1:
            raise ValueError(f"data_fraction must be in (0, 1], got {self.data_fraction}")
        if self.resolution is not None and self.resolution < 1:
            raise ValueError(f"resolution must be >= 1, got {self.resolution}")
        if not self.width_mult > 0:
            raise ValueError(f"width_mult must be > 0, got {self.width_mult}")

    # ------------------------------------------------------------------ settings

    def at(self, fidelity: Mapping[str, Any]) -> Train:
        """These settings at another fidelity (names from ``FIDELITIES``)."""
        unknown = sorted(set(fidelity) - set(FIDELITIES))
        if unknown:
            raise ValueError(
                f"train has no fidelity {', '.join(unknown)}; known: {', '.join(FIDELITIES)}"
            )
        return dataclasses.replace(self, **fidelity) if fidelity else self

    @property
    def cost_device(self) -> str:  # type: ignore[override]
        return str(_device(self.device))

    def _splits(self) -> data.Splits:
        return data.load(
            self.dataset,
            split_seed=self.split_seed,
            data_dir=self.data_dir,
            download=self.download,
            val_fraction=self.val_fraction,
        )

    def model_input(self) -> tuple[tuple[int, ...], int]:
        splits = self._splits()
        shape = splits.input_shape
        if self.resolution is not None:
            shape = (shape[0], self.resolution, self.resolution)
        return shape, splits.num_classes

    def _autocast(self, device: torch.device) -> torch.dtype | None:
        precision = self.precision
        if precision == "auto":
            precision = "bf16" if device.type == "cuda" else "fp32"
        return torch.bfloat16 if precision == "bf16" else None

    # ------------------------------------------------------------------ evaluation

    def __call__(self, config: Mapping[str, Any], *, space: SearchSpace, ctx: Context) -> Result:
        o = self.at(ctx.fidelity)
        try:
            return o._evaluate(config, space, ctx)
        except torch.cuda.OutOfMemoryError as e:
            # A failed trial, not a crashed study; free what it held for the next one.
            torch.cuda.empty_cache()
            raise TrialFailure(f"CUDA out of memory: {str(e).splitlines()[0]}") from None

    def _evaluate(self, config: Mapping[str, Any], space: SearchSpace, ctx: Context) -> Result:
        """The evaluation at these settings (``learning_curve`` observes and extrapolates)."""
        return self._train(config, space, ctx)

    def _train(self, config: Mapping[str, Any], space: SearchSpace, ctx: Context,
               stop_after: int | None = None) -> Result:
        """Train under an ``epochs``-long schedule; ``stop_after``: only its first epochs
        (what ``learning_curve`` observes of the full run)."""
        splits = self._splits()
        device = _device(self.device)
        autocast = self._autocast(device)
        # channels_last is cuDNN's fast layout, and oneDNN's on the CPU (there 1.3-2.5x
        # faster per training step than the default layout for digits-sized nets); the
        # default for image batches on both.
        channels_last = (device.type in ("cuda", "cpu") if self.channels_last is None
                         else self.channels_last)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        augment = AUGMENT[splits.augment if self.augment == "auto" else self.augment]

        def prepare(x: torch.Tensor) -> torch.Tensor:
            x = x.to(device, non_blocking=True)
            if self.resolution is not None and x.shape[-1] != self.resolution:
                x = nn.functional.interpolate(
                    x, size=(self.resolution, self.resolution), mode="bilinear",
                    antialias=True, align_corners=False,
                )
            return x.contiguous(memory_format=memory_format)

        x, y = splits.x_train, splits.y_train
        if self.data_fraction < 1:
            keep = _subset(y, self.data_fraction, self.split_seed)
            x, y = x[keep], y[keep]
        x, y = prepare(x), y.to(device)
        x_val, y_val = prepare(splits.x_val), splits.y_val.to(device)
        input_shape = tuple(x.shape[1:])

        torch.manual_seed(ctx.seed)
        net_space = spaces.widened(space, self.width_mult)
        model = net_space.build(config, input_shape=input_shape, num_classes=splits.num_classes)
        model = model.to(device, memory_format=memory_format)
        if channels_last and device.type == "cpu":
            avoid_strided_pointwise_convs(model)
        if device.type == "cpu":
            avg_pools_as_convs(model)
        n_params = sum(p.numel() for p in model.parameters())
        ctx.set_attr("params", n_params)
        # Compiled for the training step only, with static shapes: evaluation (another grad
        # mode and batch size) runs the eager module, which shares the weights, rather than
        # forcing recompilations.
        step_model = torch.compile(model, dynamic=False) if self.compile else model
        # BatchNorm cannot train on one sample once the map is 1×1, and a compiled step
        # should not see a second batch shape: short trailing batches are dropped (as
        # DataLoader's drop_last would).
        min_batch = self.batch_size if self.compile else 2

        gen = torch.Generator().manual_seed(ctx.seed)
        aug_gen = torch.Generator(device=device).manual_seed(ctx.seed)
        steps_per_epoch = sum(
            1
            for i in range(0, len(x), self.batch_size)
            if min(self.batch_size, len(x) - i) >= min_batch
        )
        if steps_per_epoch == 0:
            raise TrialFailure(
                f"{len(x)} training image(s): too few for one batch of {min_batch}"
            )
        opt = OPTIMIZERS[self.optimizer](model.parameters(), self, device.type == "cuda")
        sched = SCHEDULES[self.schedule](opt, self, self.epochs * steps_per_epoch)
        loss_fn = nn.CrossEntropyLoss(label_smoothing=self.label_smoothing)
        # Chance level is ln K; a mean loss far above it means the run diverged.
        diverge = self.diverge_loss or 10 * math.log(max(splits.num_classes, 2)) + 10
        curve: list[float] = []
        val_losses: list[float] = []
        train_losses: list[float] = []
        start = time.perf_counter()
        seen = 0
        for epoch in range(1, min(self.epochs, stop_after or self.epochs) + 1):
            model.train()
            perm = torch.randperm(len(x), generator=gen).to(device)
            loss_sum = torch.zeros((), device=device)
            steps = 0
            for i in range(0, len(x), self.batch_size):
                idx = perm[i : i + self.batch_size]
                if len(idx) < min_batch:
                    continue
                # (the crop's gather returns the default layout; a no-op otherwise)
                xb = augment(x[idx], aug_gen).contiguous(memory_format=memory_format)
                with torch.autocast(device.type, dtype=autocast or torch.float32,
                                    enabled=autocast is not None):
                    out = step_model(xb)
                loss = loss_fn(out.float(), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                loss_sum += loss.detach()
                steps += 1
                seen += len(idx)
            # One synchronization per epoch: the check that the run is still sane.
            mean_loss = (loss_sum / steps).item()
            if not math.isfinite(mean_loss):
                raise TrialFailure(f"training loss became {mean_loss} in epoch {epoch}")
            if mean_loss > diverge:
                raise TrialFailure(
                    f"training diverged: mean loss {mean_loss:.4g} in epoch {epoch} "
                    f"(chance level ln {splits.num_classes} = "
                    f"{math.log(splits.num_classes):.3g}, limit {diverge:.3g})"
                )
            train_losses.append(mean_loss)
            val_acc, val_loss = evaluate(model, x_val, y_val, autocast=autocast)
            curve.append(val_acc)
            val_losses.append(val_loss)
            ctx.set_attr("learning_curve", curve)
            ctx.report(val_acc, epoch)
        train_time = time.perf_counter() - start
        test_acc, _ = evaluate(
            model, prepare(splits.x_test), splits.y_test.to(device), autocast=autocast
        )
        return Result(
            (curve[-1],),
            {
                "val_loss": val_losses[-1],
                "test_accuracy": test_acc,
                "params": n_params,
                "learning_curve": curve,
                "val_loss_curve": val_losses,
                "train_loss_curve": train_losses,
                "fidelity": {
                    "epochs": self.epochs,
                    "data_fraction": self.data_fraction,
                    "resolution": input_shape[-1],
                    "width_mult": self.width_mult,
                    "dataset": self.dataset,
                },
                "train_seconds": round(train_time, 3),
                "images_per_second": round(seen / train_time, 1) if train_time > 0 else None,
                "device": str(device),
                "channels_last": channels_last,
                "precision": "bf16" if autocast is not None else "fp32",
            },
        )
