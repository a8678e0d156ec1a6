"""``supernet``: weight sharing — one supernet trained once, every architecture scored with its
inherited weights.

The space's supernet (``SearchSpace.build_supernet``; in the catalogue: every space but
``chain``) holds the weights of every architecture; an architecture is a path through it. The
supernet is trained once per study setting with single-path sampling, by one of:

- ``spos``: Single Path One-Shot (Guo et al., ECCV 2020): each step trains one path drawn
  uniformly (``SearchSpace.sample``);
- ``fairnas``: FairNAS's strict fairness (Chu et al., ICCV 2021): each step draws ``m`` paths
  (``m`` = the most choices of a parameter) such that every choice of every parameter is on
  exactly one of them, accumulates their gradients and updates once. It needs a space of
  unconditional categorical parameters without forbidden clauses; a parameter with fewer
  than ``m`` choices repeats some (fair up to that).

A trial then scores its architecture without training: the batch-norm statistics of its path
are recomputed on ``bn_batches`` training batches (as SPOS does: statistics accumulated over
every path fit none of them), and the value is the path's validation accuracy. The test
accuracy is recorded, never optimized.

The trained supernet is kept in memory for the process and on disk (``cache_dir``, default
``$NAS_HPO_CACHE/supernets`` or ``~/.cache/nas-hpo/supernets``) under a key of everything that
determines it (space and its options, input, method, training options, seed, torch version):
other worker processes and later runs load it instead of training again, and a file lock makes
concurrent workers train it once.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nas_hpo._locks import file_lock
from nas_hpo._objective import Context, Objective, Result, TrialFailure
from nas_hpo._options import option
from nas_hpo.objectives import register
from nas_hpo.space import Categorical, SearchSpace
from nas_hpo.training import (
    AUGMENT,
    OPTIMIZERS,
    SCHEDULES,
    SupernetPath,
    TrainingOptions,
    avg_pools_as_convs,
    avoid_strided_pointwise_convs,
    evaluate,
    recalibrate_batch_norms,
    resolve_device,
)

METHODS = ("spos", "fairnas")


def default_cache_dir() -> Path:
    """``$NAS_HPO_CACHE/supernets`` or ``~/.cache/nas-hpo/supernets``."""
    env = os.environ.get("NAS_HPO_CACHE")
    return (Path(env) if env else Path.home() / ".cache" / "nas-hpo") / "supernets"


def fair_paths(space: SearchSpace, rng: np.random.Generator) -> list[dict[str, Any]]:
    """FairNAS's strictly fair draw: ``m`` configurations such that each choice of each
    parameter is on one of them (each parameter's choices in a random order; a parameter
    with fewer than ``m`` choices repeats some, in a random order too)."""
    params = list(space.params.values())
    m = max(len(p.choices) for p in params)
    columns = {}
    for p in params:
        k = len(p.choices)
        order = [p.choices[i] for i in rng.permutation(k)]
        extra = [p.choices[i] for i in rng.permutation(k)[: m - k]] if m > k else []
        columns[p.name] = order + extra
    return [{name: column[i] for name, column in columns.items()} for i in range(m)]


def _check_fair(space: SearchSpace) -> None:
    params = list(space.params.values())
    if (not all(isinstance(p, Categorical) for p in params) or space.conditions
            or space.forbidden):
        raise ValueError(
            "method fairnas needs a space of unconditional categorical parameters without "
            f"forbidden clauses; space {space.name or '(unnamed)'} is not (use spos)"
        )


@dataclass
class _Trained:
    """A trained supernet in memory, its BN statistics as training left them (recalibrating a
    path overwrites them), what its training measured (or why it failed), and the batches
    paths recalibrate on (per objective setting)."""

    model: nn.Module | None
    bn_state: dict[str, torch.Tensor]
    info: dict[str, Any]
    error: str | None = None
    calibration: dict[tuple[Any, ...], list[torch.Tensor]] = field(default_factory=dict)

    @classmethod
    def of(cls, model: nn.Module, info: dict[str, Any]) -> _Trained:
        norms = {name for name, m in model.named_modules()
                 if isinstance(m, nn.modules.batchnorm._BatchNorm)}
        state = {k: v.clone() for k, v in model.state_dict().items()
                 if k.rpartition(".")[0] in norms and not k.endswith(("weight", "bias"))}
        return cls(model, state, info)


_TRAINED: dict[str, _Trained] = {}


@register("supernet", test_options={"epochs": 1, "bn_batches": 1})
@dataclass(frozen=True)
class Supernet(TrainingOptions, Objective):
    """Train the space's supernet once (``method``: spos or fairnas, ``epochs``, SGD +
    Nesterov with a cosine schedule, label smoothing, the dataset's augmentation, ``seed``),
    then score each architecture by its path's validation accuracy after recalibrating its
    batch norms on ``bn_batches`` training batches."""

    method: str = option("spos", choices=METHODS)
    epochs: int = option(30, ge=1)
    seed: int = 0
    bn_batches: int = option(4, ge=0)
    cache_dir: str | None = None

    directions = ("maximize",)

    @property
    def metric_names(self) -> tuple[str, ...]:
        return ("supernet_val_accuracy",)

    # ------------------------------------------------------------------ the supernet

    def key(self, space: SearchSpace) -> str:
        """What determines the trained supernet, hashed: its file name in the cache."""
        splits = self.splits()
        what = {
            "space": space.name,
            "space_options": getattr(space, "build_options", {}),
            "params": [repr(p) for p in space.params.values()],
            "input": [list(splits.input_shape), splits.num_classes],
            # data_dir stays: an image folder is its data (a CIFAR copy elsewhere only
            # costs a second training).
            "train": {k: v for k, v in asdict(self).items()
                      if k not in ("bn_batches", "cache_dir", "download")},
            "device": resolve_device(self.device).type,
            "torch": torch.__version__,
        }
        text = json.dumps(what, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def check_space(self, space: SearchSpace) -> None:
        if not space.has_supernet:
            raise ValueError(
                f"space {space.name or '(unnamed)'} has no supernet; the supernet objective "
                "needs one (in the catalogue: every space but chain)"
            )
        if self.method == "fairnas":
            _check_fair(space)

    def trained(self, space: SearchSpace) -> _Trained:
        """The trained supernet of ``space``: from this process's memory, from the disk
        cache, or trained now (and saved)."""
        try:
            self.check_space(space)
        except ValueError as e:
            raise TrialFailure(str(e)) from None
        key = self.key(space)
        held = _TRAINED.get(key)
        if held is None:
            held = self._load_or_train(space, key)
            _TRAINED.clear()  # one supernet per process: they can be large
            _TRAINED[key] = held
        if held.error is not None:
            raise TrialFailure(held.error)
        return held

    def _build(self, space: SearchSpace) -> tuple[nn.Module, torch.device, torch.memory_format]:
        splits = self.splits()
        device = resolve_device(self.device)
        memory_format = torch.channels_last  # oneDNN's and cuDNN's fast layout (see train)
        torch.manual_seed(self.seed)
        model = space.build_supernet(input_shape=splits.input_shape,
                                     num_classes=splits.num_classes)
        model = model.to(device, memory_format=memory_format)
        if device.type == "cpu":
            avoid_strided_pointwise_convs(model)
            avg_pools_as_convs(model)
        return model, device, memory_format

    def _load_or_train(self, space: SearchSpace, key: str) -> _Trained:
        folder = Path(self.cache_dir).expanduser() if self.cache_dir else default_cache_dir()
        path = folder / f"{key}.pt"
        model, device, memory_format = self._build(space)
        with file_lock(folder / f"{key}.lock"):
            if path.exists():
                try:
                    saved = torch.load(path, map_location=device, weights_only=True)
                    model.load_state_dict(saved["state"])
                    info = {**saved["info"], "file": str(path), "trained_here": False}
                    return _Trained.of(model, info)
                except Exception as e:  # a damaged file: trained again and replaced
                    bad = f"{type(e).__name__}: {e}"
            else:
                bad = None
            try:
                info = self._train(space, model, device, memory_format)
            except TrialFailure as e:
                return _Trained(None, {}, {}, error=f"supernet training failed: {e}")
            if bad:
                info["replaced_damaged_file"] = bad
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            torch.save({"state": model.state_dict(), "info": info}, tmp)
            os.replace(tmp, path)
        return _Trained.of(model, {**info, "file": str(path), "trained_here": True})

    def _calibration_batches(self, device: torch.device,
                             memory_format: torch.memory_format) -> list[torch.Tensor]:
        """The training batches each path's BN statistics are recomputed on: fixed by the
        seed, without augmentation, so a path scores the same in every process."""
        splits = self.splits()
        gen = torch.Generator().manual_seed(self.seed + 1)
        perm = torch.randperm(len(splits.x_train), generator=gen)
        batches = []
        for b in range(self.bn_batches):
            idx = perm[b * self.batch_size: (b + 1) * self.batch_size]
            if len(idx) < 2:
                break
            batches.append(splits.x_train[idx].to(device).contiguous(
                memory_format=memory_format))
        return batches

    def _train(self, space: SearchSpace, model: nn.Module, device: torch.device,
               memory_format: torch.memory_format) -> dict[str, Any]:
        splits = self.splits()
        x, y = splits.x_train.to(device), splits.y_train.to(device)
        x = x.contiguous(memory_format=memory_format)
        augment = AUGMENT[splits.augment if self.augment == "auto" else self.augment]
        gen = torch.Generator().manual_seed(self.seed)
        aug_gen = torch.Generator(device=device).manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        # BatchNorm cannot train on one sample once a map is 1×1: a short last batch is dropped.
        steps = sum(1 for i in range(0, len(x), self.batch_size)
                    if min(self.batch_size, len(x) - i) >= 2)
        # train's SGD + Nesterov and cosine schedule, read from these same option names.
        opt = OPTIMIZERS["sgd"](model.parameters(), self, device.type == "cuda")
        sched = SCHEDULES["cosine"](opt, self, self.epochs * steps)
        loss_fn = nn.CrossEntropyLoss(label_smoothing=self.label_smoothing)
        losses: list[float] = []
        paths = 0
        start = time.perf_counter()
        model.train()
        for epoch in range(1, self.epochs + 1):
            perm = torch.randperm(len(x), generator=gen).to(device)
            loss_sum = torch.zeros((), device=device)
            n = 0
            for i in range(0, len(x), self.batch_size):
                idx = perm[i: i + self.batch_size]
                if len(idx) < 2:
                    continue
                xb = augment(x[idx], aug_gen).contiguous(memory_format=memory_format)
                configs = (fair_paths(space, rng) if self.method == "fairnas"
                           else [space.sample(seed=rng)])
                opt.zero_grad(set_to_none=True)
                for config in configs:
                    loss = loss_fn(model(xb, config).float(), y[idx])
                    loss.backward()  # FairNAS: the paths' gradients add up, one update
                    loss_sum += loss.detach()
                    n += 1
                opt.step()
                sched.step()
                paths += len(configs)
            mean = (loss_sum / max(n, 1)).item()
            if not math.isfinite(mean):
                raise TrialFailure(f"training loss became {mean} in epoch {epoch}")
            losses.append(round(mean, 5))
        return {"method": self.method, "epochs": self.epochs, "paths_trained": paths,
                "train_seconds": round(time.perf_counter() - start, 3), "loss_curve": losses}

    # ------------------------------------------------------------------ one architecture

    def __call__(self, config: Mapping[str, Any], *, space: SearchSpace, ctx: Context) -> Result:
        trained = self.trained(space)
        model = trained.model
        assert model is not None
        splits = self.splits()
        device = resolve_device(self.device)
        memory_format = torch.channels_last

        def prepare(t: torch.Tensor) -> torch.Tensor:
            return t.to(device).contiguous(memory_format=memory_format)

        setting = (self.seed, self.bn_batches, self.batch_size)
        if setting not in trained.calibration:
            trained.calibration[setting] = self._calibration_batches(device, memory_format)
        batches = trained.calibration[setting]
        path = SupernetPath(model, dict(config))
        if batches:
            recalibrate_batch_norms(path, batches)
        else:  # the statistics training left, not those of the last path recalibrated
            model.load_state_dict(trained.bn_state, strict=False)
        val_acc, val_loss = evaluate(path, prepare(splits.x_val), splits.y_val.to(device))
        test_acc, _ = evaluate(path, prepare(splits.x_test), splits.y_test.to(device))
        info = {k: v for k, v in trained.info.items() if k != "loss_curve"}
        # Only the trial that trained it says how long that took (the others did not pay).
        trained.info["trained_here"] = False
        return Result((val_acc,), {
            "val_loss": val_loss,
            "test_accuracy": test_acc,
            "supernet": {**info, "bn_batches": len(batches)},
            "supernet_loss_curve": trained.info.get("loss_curve", []),
        })
