"""Training helpers shared by the training objectives (``train``, ``learning_curve``,
``supernet``) and the zero-cost proxies: the recipe (optimizers, schedules, augmentation,
precision, evaluation), the training step (eager or a CUDA graph), the CPU rewrites of a
network, and the common options."""

from __future__ import annotations

from nas_hpo.training._cpu import (
    MIN_POOL_PIXELS,
    avg_pools_as_convs,
    avoid_strided_pointwise_convs,
    pytorch_avg_pools,
)
from nas_hpo.training._options import TrainingOptions, check_device
from nas_hpo.training._paths import SupernetPath, recalibrate_batch_norms
from nas_hpo.training._recipe import (
    AUGMENT,
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULES,
    autocast_dtype,
    evaluate,
    evaluation_sums,
    resolve_device,
    subset,
)
from nas_hpo.training._step import GRAPH_WARMUP, GraphedEvaluation, TrainStep

__all__ = [
    "AUGMENT",
    "GRAPH_WARMUP",
    "GraphedEvaluation",
    "MIN_POOL_PIXELS",
    "OPTIMIZERS",
    "PRECISIONS",
    "SCHEDULES",
    "SupernetPath",
    "TrainStep",
    "TrainingOptions",
    "autocast_dtype",
    "avg_pools_as_convs",
    "avoid_strided_pointwise_convs",
    "check_device",
    "evaluate",
    "evaluation_sums",
    "pytorch_avg_pools",
    "recalibrate_batch_norms",
    "resolve_device",
    "subset",
]
