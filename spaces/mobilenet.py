"""``mobilenet``: MobileNetV2 stages of inverted residual blocks, each block's kernel and
expansion and each stage's depth searched.

The network is MobileNetV2's (Sandler et al., "MobileNetV2: Inverted Residuals and Linear
Bottlenecks", CVPR 2018). What is searched follows ProxylessNAS (Cai, Zhu and Han, ICLR 2019),
whose blocks on this skeleton choose a kernel of 3, 5 or 7 and an expansion ratio of 3 or 6 and
may be skipped (so each stage has a searched depth), and the elastic depth of Once-for-All (Cai
et al., ICLR 2020), where a stage runs its first ``d`` blocks.

An inverted residual block is: 1×1 expansion to ``expand × c_in`` channels, BN, ReLU6; depthwise
k×k convolution (with the stage's stride in the first block), BN, ReLU6; 1×1 linear projection,
BN; plus the input where the stride is 1 and the channel count unchanged.

Skeleton (channels before ``width_mult``):

- fixed stem: 3×3 convolution to 32 channels, BN, ReLU6; then MobileNetV2's fixed first block
  (depthwise 3×3, no expansion, projection to 16 channels);
- searchable stages ``s = 1..5`` with MobileNetV2's output channels and strides
  (24, s2), (32, s2), (64, s2), (96, s1), (160, s2), of 1 to ``max_depth`` blocks;
- stage 6, MobileNetV2's (320, s1) stage of a single block: its kernel and expansion are
  searched, its depth is not (``stage6_depth`` is a constant 1, as in MobileNetV2);
- fixed head: 1×1 convolution to 1280 channels, BN, ReLU6, global average pooling, linear.

Parameters:

- ``stage{s}_depth``: the number of blocks of stage ``s``.
- ``stage{s}_block{b}_kernel``: the depthwise kernel, 3, 5 or 7; active when the stage has at
  least ``b`` blocks.
- ``stage{s}_block{b}_expand``: the expansion ratio, 3 or 6; active likewise.

The default configuration is MobileNetV2 itself (its depths, where ``max_depth`` allows, kernel
3, expansion 6). Each block has 6 choices, so a stage of depth ``d`` has ``6**d`` and the space
``prod_s sum_d 6**d`` members.

Channels are ``width_mult`` times MobileNetV2's, rounded to a multiple of 8 as MobileNetV2 does
(the 1280 of the head only grows, never shrinks). Strides adapt to the input: the stem has
ImageNet's stride 2 only for inputs of at least 128 pixels (the usual CIFAR-sized MobileNetV2
keeps the full resolution there), and a stage halves the feature map only while it is at least
2×2, so 8×8 digits end at 1×1 and 32×32 images at 2×2.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from nas_hpo._options import AtLeast1, Positive
from nas_hpo.oneshot import is_relaxed, is_zero, mixed, weight_of
from nas_hpo.space import Categorical, Condition, Constant, GreaterThan, Hyperparameter, SearchSpace
from nas_hpo.spaces import register

KERNELS = (3, 5, 7)
EXPANDS = (3, 6)
STEM_CHANNELS = 32
FIRST_BLOCK_CHANNELS = 16
# (output channels, stride of the first block, MobileNetV2's depth) of the searchable-depth
# stages, then of the single-block last stage: MobileNetV2's table without its first (t = 1)
# stage.
STAGES = ((24, 2, 2), (32, 2, 3), (64, 2, 4), (96, 1, 3), (160, 2, 3))
LAST_STAGE = (320, 1, 1)
LAST_CHANNELS = 1280
LARGE_INPUT = 128


def make_divisible(value: float, divisor: int = 8) -> int:
    """``value`` rounded to the nearest multiple of ``divisor``, never below ``divisor`` and never
    more than 10% below ``value`` (MobileNetV2's rule for scaled channel counts)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def _conv_bn(
    c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1
) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]


class InvertedResidual(nn.Module):
    """Expand 1×1 → depthwise k×k → project 1×1 (linear), with identity shortcut where shapes
    allow. ``expand == 1`` leaves out the expansion, as MobileNetV2's first block does."""

    def __init__(self, c_in: int, c_out: int, kernel: int, expand: int, stride: int) -> None:
        super().__init__()
        hidden = int(round(c_in * expand))
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [*_conv_bn(c_in, hidden, 1), nn.ReLU6(inplace=True)]
        layers += [*_conv_bn(hidden, hidden, kernel, stride, groups=hidden), nn.ReLU6(inplace=True)]
        layers += _conv_bn(hidden, c_out, 1)
        self.conv = nn.Sequential(*layers)
        self.kernel, self.expand, self.stride = kernel, expand, stride
        self.use_residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


class MobileNet(nn.Module):
    """Stem and first block, the stages (an ``nn.Sequential`` of blocks each), head."""

    def __init__(self, stem: nn.Module, stages: list[nn.Sequential], head: nn.Module) -> None:
        super().__init__()
        self.stem = stem
        self.stages = nn.Sequential(*stages)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


def _stage_table() -> list[tuple[int, int, int]]:
    return [*STAGES, LAST_STAGE]


def _stem_geometry(input_shape: tuple[int, ...], width_mult: float) -> tuple[int, int, int, int]:
    """The stem's stride, and the channels and map size after the first block."""
    _, h, w = input_shape
    stride = 2 if min(h, w) >= LARGE_INPUT else 1
    c = make_divisible(FIRST_BLOCK_CHANNELS * width_mult)
    return stride, c, -(-h // stride), -(-w // stride)


def _stem(input_shape: tuple[int, ...], width_mult: float) -> tuple[nn.Module, int]:
    """The stem and first block, and its output channels."""
    stride, c, _, _ = _stem_geometry(input_shape, width_mult)
    c_stem = make_divisible(STEM_CHANNELS * width_mult)
    stem = nn.Sequential(
        *_conv_bn(input_shape[0], c_stem, 3, stride),
        nn.ReLU6(inplace=True),
        InvertedResidual(c_stem, c, 3, 1, 1),
    )
    return stem, c


def _head(c: int, width_mult: float, num_classes: int) -> nn.Module:
    c_last = make_divisible(LAST_CHANNELS * max(1.0, width_mult))
    return nn.Sequential(
        *_conv_bn(c, c_last, 1),
        nn.ReLU6(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(1),
        nn.Linear(c_last, num_classes),
    )


def _blocks(input_shape: tuple[int, ...], width_mult: float, depths: list[int]
            ) -> Iterator[tuple[int, int, int, int, int]]:
    """``(stage, block, c_in, c_out, stride)`` of every block of stages of ``depths`` blocks.
    A stage halves the map in its first block only while the map is at least 2×2 (so small
    inputs end at 1×1, not 0×0); every stage has a first block, so the map a stage starts at
    does not depend on the depths (what lets a supernet hold every depth)."""
    _, c, h, w = _stem_geometry(input_shape, width_mult)
    for s, ((channels, first_stride, _), depth) in enumerate(
            zip(_stage_table(), depths, strict=True), start=1):
        c_out = make_divisible(channels * width_mult)
        for b in range(1, depth + 1):
            stride = first_stride if b == 1 and min(h, w) >= 2 else 1
            h, w = -(-h // stride), -(-w // stride)
            yield s, b, c, c_out, stride
            c = c_out


def build(
    config: Mapping[str, Any],
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    width_mult: float = 1.0,
) -> nn.Module:
    """The network of ``config`` for inputs of shape ``(C, H, W)``."""
    stem, c = _stem(input_shape, width_mult)
    depths = [int(config[f"stage{s}_depth"]) for s in range(1, len(_stage_table()) + 1)]
    stages: list[list[nn.Module]] = [[] for _ in depths]
    for s, b, c_in, c_out, stride in _blocks(input_shape, width_mult, depths):
        kernel = int(config[f"stage{s}_block{b}_kernel"])
        expand = int(config[f"stage{s}_block{b}_expand"])
        stages[s - 1].append(InvertedResidual(c_in, c_out, kernel, expand, stride))
        c = c_out
    return MobileNet(stem, [nn.Sequential(*blocks) for blocks in stages],
                     _head(c, width_mult, num_classes))


def choice_name(kernel: int, expand: int) -> str:
    return f"k{kernel}e{expand}"


class MobileNetSupernet(nn.Module):
    """The weight-sharing supernet of the space (ProxylessNAS / SPOS style: a choice block per
    position): every stage holds ``max_depth`` positions, each with one inverted residual per
    (kernel, expansion) choice. ``supernet(x, config)`` runs each stage's first
    ``stage{s}_depth`` positions with their chosen blocks: exactly what ``build(config)``
    computes with those weights (``subnet`` makes that network)."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, width_mult: float,
                 max_depth: int) -> None:
        super().__init__()
        self.input_shape, self.num_classes = input_shape, num_classes
        self.width_mult, self.max_depth = width_mult, max_depth
        self.stem, c = _stem(input_shape, width_mult)
        depths = [max_depth if s <= len(STAGES) else 1
                  for s in range(1, len(_stage_table()) + 1)]
        stages: list[nn.ModuleList] = [nn.ModuleList() for _ in depths]
        for s, _, c_in, c_out, stride in _blocks(input_shape, width_mult, depths):
            stages[s - 1].append(nn.ModuleDict({
                choice_name(k, e): InvertedResidual(c_in, c_out, k, e, stride)
                for k in KERNELS for e in EXPANDS
            }))
            c = c_out
        self.stages = nn.ModuleList(stages)
        self.head = _head(c, width_mult, num_classes)

    def forward(self, x: torch.Tensor, config: Mapping[str, Any]) -> torch.Tensor:
        if is_relaxed(config):
            return self._mixed(x, config)
        x = self.stem(x)
        for s, stage in enumerate(self.stages, start=1):
            for b in range(1, int(config[f"stage{s}_depth"]) + 1):
                choice = choice_name(int(config[f"stage{s}_block{b}_kernel"]),
                                     int(config[f"stage{s}_block{b}_expand"]))
                x = stage[b - 1][choice](x)
        return self.head(x)

    def _mixed(self, x: torch.Tensor, config: Mapping[str, Any]) -> torch.Tensor:
        """Mixed choice blocks (kernel and expansion weights multiply) and a mixed depth: a
        stage's output is its outputs after 1, 2, ... blocks weighted by the depth's weights
        (blocks past the deepest depth of non-zero weight are not run)."""
        x = self.stem(x)
        for s, stage in enumerate(self.stages, start=1):
            shares = [weight_of(config, f"stage{s}_depth", d) for d in range(1, len(stage) + 1)]
            deepest = max(d for d, w in enumerate(shares, start=1) if not is_zero(w))
            out: Any = sum(shares[deepest:], 0.0)  # zero weights, kept for their gradient
            for b in range(1, deepest + 1):
                ops = {(k, e): stage[b - 1][choice_name(k, e)] for k in KERNELS for e in EXPANDS}
                x = mixed(config, (f"stage{s}_block{b}_kernel", f"stage{s}_block{b}_expand"),
                          ops, x)
                out = out + shares[b - 1] * x
            x = out
        return self.head(x)

    def subnet(self, config: Mapping[str, Any]) -> nn.Module:
        """``build(config)`` with the supernet's weights and BN statistics of that path."""
        net = build(config, input_shape=self.input_shape, num_classes=self.num_classes,
                    width_mult=self.width_mult)
        state = {}
        for key, value in self.state_dict().items():
            parts = key.split(".")
            if parts[0] == "stages":
                # stages.S.B.CHOICE.rest -> stages.S.B.rest, for the chosen block of a position
                # the config uses
                s, b = int(parts[1]) + 1, int(parts[2]) + 1
                if b > int(config[f"stage{s}_depth"]) or parts[3] != choice_name(
                        int(config[f"stage{s}_block{b}_kernel"]),
                        int(config[f"stage{s}_block{b}_expand"])):
                    continue
                key = ".".join(parts[:3] + parts[4:])
            state[key] = value
        net.load_state_dict(state)
        return net


def arch_str(config: Mapping[str, Any]) -> str:
    """A short readable name: stages joined by ``|``, each its blocks' kernel and expansion
    (``k3e6-k5e3|k7e6|...``), so the depths are the block counts."""
    stages = []
    for s in range(1, len(_stage_table()) + 1):
        blocks = [
            f"k{int(config[f'stage{s}_block{b}_kernel'])}e{int(config[f'stage{s}_block{b}_expand'])}"
            for b in range(1, int(config[f"stage{s}_depth"]) + 1)
        ]
        stages.append("-".join(blocks))
    return "|".join(stages)


@register("mobilenet", size=sum(6**d for d in range(1, 5)) ** 5 * 6, supernet=True,
          test_options={"max_depth": 3, "width_mult": 0.25})
def mobilenet(*, max_depth: AtLeast1 = 4, width_mult: Positive = 1.0) -> SearchSpace:
    """The space; stages 1-5 have 1 to ``max_depth`` blocks, and ``width_mult`` scales the
    channels when the network is built (the width fidelity of low-cost training)."""
    params: list[Hyperparameter] = []
    conditions: dict[str, Condition] = {}
    for s, (_, _, v2_depth) in enumerate(_stage_table(), start=1):
        most = max_depth if s <= len(STAGES) else 1
        depth = f"stage{s}_depth"
        if most > 1:
            # MobileNetV2's own depth (where allowed), so the default config is MobileNetV2.
            default = min(v2_depth, most)
            params.append(
                Categorical(depth, tuple(range(1, most + 1)), default=default, ordered=True)
            )
        else:
            params.append(Constant(depth, 1))
        for b in range(1, most + 1):
            kernel, expand = f"stage{s}_block{b}_kernel", f"stage{s}_block{b}_expand"
            params += [
                Categorical(kernel, KERNELS, ordered=True),
                Categorical(expand, EXPANDS, default=6, ordered=True),
            ]
            if b > 1:
                conditions[kernel] = conditions[expand] = GreaterThan(depth, b - 1)

    def builder(
        config: Mapping[str, Any], *, input_shape: tuple[int, ...], num_classes: int
    ) -> nn.Module:
        return build(
            config, input_shape=input_shape, num_classes=num_classes, width_mult=width_mult
        )

    def supernet(*, input_shape: tuple[int, ...], num_classes: int) -> MobileNetSupernet:
        return MobileNetSupernet(input_shape, num_classes, width_mult, max_depth)

    return SearchSpace(params, conditions, builder=builder, arch_key=arch_str,
                       supernet=supernet)
