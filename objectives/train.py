"""``train``: full training of the built network, the ground truth of every cheaper estimator.

The network is trained on the training split, validated after every epoch (reported to the
trial, so Optuna pruners can stop it) and finally scored on the test split, which is recorded
but never optimized. With the same seed on the same device (CPU) two runs give the same curve:
the model's initialization, the batch order, the augmentation and every random op draw from
the trial's seed.

The data stay on the training device as tensors for the whole run and batches are indexed
there (augmentation too), so no Python data pipeline runs per batch; the loss is checked once
per epoch, so the GPU is not synchronized after every step. On a CUDA device the step is
captured as a CUDA graph and replayed (``cuda_graph``; ``nas_hpo.training.TrainStep``: one
graph for the full batches, one for the epoch's last, partial batch), and so is the
validation pass (``nas_hpo.training.GraphedEvaluation``): a small network's step is hundreds
of short kernels whose launches cost more than running them. Batches and weights are in
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

import dataclasses
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nas_hpo import spaces
from nas_hpo._objective import Context, Objective, Result, TrialFailure
from nas_hpo._options import option
from nas_hpo.objectives import register
from nas_hpo.space import SearchSpace
from nas_hpo.training import (
    AUGMENT,
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULES,
    GraphedEvaluation,
    TrainingOptions,
    TrainStep,
    autocast_dtype,
    avg_pools_as_convs,
    avoid_strided_pointwise_convs,
    evaluate,
    resolve_device,
    subset,
)

FIDELITIES = ("epochs", "data_fraction", "resolution", "width_mult")


@register("train", test_options={"epochs": 1, "data_fraction": 0.3})
@dataclass(frozen=True)
class Train(TrainingOptions, Objective):
    """Train with SGD + Nesterov (or AdamW) under a cosine (or one-cycle) schedule with label
    smoothing, weight decay and the dataset's standard augmentation; return the final
    validation accuracy."""

    optimizer: str = option("sgd", choices=lambda: list(OPTIMIZERS))
    schedule: str = option("cosine", choices=lambda: list(SCHEDULES))
    data_fraction: float = option(1.0, gt=0, le=1)
    resolution: int | None = option(None, ge=1)
    width_mult: float = option(1.0, gt=0)
    precision: str = option("auto", choices=PRECISIONS)
    channels_last: bool | None = None
    compile: bool = False
    #: On a CUDA device, capture the training step (``nas_hpo.training.TrainStep``) and the
    #: evaluation passes (``GraphedEvaluation``) as CUDA graphs and replay them; false:
    #: launch them eagerly. Not used with ``compile``
    #: or the ``onecycle`` schedule (it cycles the momentum, a constant in a captured step).
    cuda_graph: bool = True
    diverge_loss: float | None = option(None, gt=0)
    #: Also score the test split after every epoch (``test_accuracy_curve``,
    #: ``test_loss_curve``): what a tabular benchmark's per-epoch rows hold. Off by default:
    #: the test split is never looked at during a search.
    test_every_epoch: bool = False

    directions = ("maximize",)
    fidelities = FIDELITIES

    # ------------------------------------------------------------------ settings

    @property
    def metric_names(self) -> tuple[str, ...]:
        return ("val_accuracy",)

    @property
    def max_steps(self) -> int:
        return self.epochs

    def at(self, fidelity: Mapping[str, Any]) -> Train:
        """These settings at another fidelity (names from ``FIDELITIES``)."""
        unknown = sorted(set(fidelity) - set(FIDELITIES))
        if unknown:
            raise ValueError(
                f"train has no fidelity {', '.join(unknown)}; known: {', '.join(FIDELITIES)}"
            )
        return dataclasses.replace(self, **fidelity) if fidelity else self

    def model_input(self) -> tuple[tuple[int, ...], int]:
        shape, num_classes = super().model_input()
        if self.resolution is not None:
            shape = (shape[0], self.resolution, self.resolution)
        return shape, num_classes

    def check_space(self, space: SearchSpace) -> None:
        """Before the first trial: the memory the inputs take at ``resolution`` (each split is
        resized at once, as float32) must fit this machine's free memory."""
        if self.resolution is None:
            return
        import psutil

        splits = self.splits()
        n = int(len(splits.y_train) * self.data_fraction) + len(splits.y_val)
        need = n * splits.input_shape[0] * self.resolution ** 2 * 4
        free = psutil.virtual_memory().available
        if need > free // 2:
            raise ValueError(
                f"resolution: {self.resolution} resizes {n:,} training and validation images "
                f"of {splits.input_shape[0]} channel(s) to {self.resolution}×{self.resolution}: "
                f"{need / 2**30:,.1f} GiB of float32, more than half of the "
                f"{free / 2**30:,.1f} GiB this machine has free"
            )

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
        splits = self.splits()
        device = resolve_device(self.device)
        autocast = autocast_dtype(self.precision, device)
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
            keep = subset(y, self.data_fraction, self.split_seed)
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
        # The step as a CUDA graph needs a constant step apart from the learning rate:
        # one-cycle also cycles the momentum, which the fused optimizers read as a constant.
        graph = (self.cuda_graph and device.type == "cuda" and not self.compile
                 and self.schedule != "onecycle")
        opt = OPTIMIZERS[self.optimizer](model.parameters(), self, device.type == "cuda",
                                         capturable=graph)
        sched = SCHEDULES[self.schedule](opt, self, self.epochs * steps_per_epoch)
        loss_fn = nn.CrossEntropyLoss(label_smoothing=self.label_smoothing)
        step = TrainStep(step_model, opt, loss_fn, device=device, autocast=autocast,
                         batch_size=self.batch_size, graph=graph)
        # Chance level is ln K; a mean loss far above it means the run diverged.
        diverge = self.diverge_loss or 10 * math.log(max(splits.num_classes, 2)) + 10
        curve: list[float] = []
        val_losses: list[float] = []
        train_losses: list[float] = []
        train_accs: list[float] = []
        epoch_seconds: list[float] = []
        test_curve: list[float] = []
        test_losses: list[float] = []
        # (the validation pass, and the test pass of every epoch, as CUDA graphs with the step)
        val_eval = GraphedEvaluation(model, x_val, y_val, autocast=autocast, graph=graph)
        test_eval = None
        if self.test_every_epoch:
            test_eval = GraphedEvaluation(model, prepare(splits.x_test),
                                          splits.y_test.to(device), autocast=autocast,
                                          graph=graph)
        start = time.perf_counter()
        seen = 0
        for epoch in range(1, min(self.epochs, stop_after or self.epochs) + 1):
            model.train()
            perm = torch.randperm(len(x), generator=gen).to(device)
            step.reset()
            steps = 0
            epoch_start, epoch_seen = time.perf_counter(), seen
            for i in range(0, len(x), self.batch_size):
                idx = perm[i : i + self.batch_size]
                if len(idx) < min_batch:
                    continue
                # (the crop's gather returns the default layout; a no-op otherwise)
                xb = augment(x[idx], aug_gen).contiguous(memory_format=memory_format)
                step(xb, y[idx])
                sched.step()
                steps += 1
                seen += len(idx)
            # One synchronization per epoch: the check that the run is still sane.
            mean_loss = (step.loss_sum / steps).item()
            if not math.isfinite(mean_loss):
                raise TrialFailure(f"training loss became {mean_loss} in epoch {epoch}")
            if mean_loss > diverge:
                raise TrialFailure(
                    f"training diverged: mean loss {mean_loss:.4g} in epoch {epoch} "
                    f"(chance level ln {splits.num_classes} = "
                    f"{math.log(splits.num_classes):.3g}, limit {diverge:.3g})"
                )
            train_losses.append(mean_loss)
            # (the accuracy on the augmented training batches as they were trained on)
            train_accs.append(step.correct.item() / max(seen - epoch_seen, 1))
            epoch_seconds.append(round(time.perf_counter() - epoch_start, 6))
            val_acc, val_loss = val_eval()
            if test_eval is not None:
                test_epoch_acc, test_epoch_loss = test_eval()
                test_curve.append(test_epoch_acc)
                test_losses.append(test_epoch_loss)
            curve.append(val_acc)
            val_losses.append(val_loss)
            ctx.set_attr("learning_curve", curve)
            ctx.report(val_acc, epoch)
        train_time = time.perf_counter() - start
        if test_eval is not None:
            test_acc = test_curve[-1]
        else:
            test_acc, _ = evaluate(
                model, prepare(splits.x_test), splits.y_test.to(device), autocast=autocast
            )
        fallback = "; ".join(f"{what}: {e.fallback}" if what else e.fallback
                             for what, e in (("", step), ("validation", val_eval),
                                             ("test", test_eval))
                             if e is not None and e.fallback)
        more: dict[str, Any] = {}
        if test_eval is not None:
            more = {"test_accuracy_curve": test_curve, "test_loss_curve": test_losses}
        return Result(
            (curve[-1],),
            {
                **more,
                "val_loss": val_losses[-1],
                "test_accuracy": test_acc,
                "params": n_params,
                "learning_curve": curve,
                "val_loss_curve": val_losses,
                "train_loss_curve": train_losses,
                "train_accuracy_curve": train_accs,
                "epoch_seconds": epoch_seconds,
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
                "cuda_graph": step.captured,
                **({"cuda_graph_fallback": fallback} if fallback else {}),
                "precision": "bf16" if autocast is not None else "fp32",
            },
        )
