"""``resnet_blocks``: a ResNet-18 layout whose 8 basic blocks each choose a kernel and a width.

The macro skeleton is ResNet-18's: a stem, four stages of two basic blocks with widths
``base_width × (1, 2, 4, 8)``, global average pooling and a linear head. Block ``i`` chooses its
kernel size in {3, 5, 7} (``b{i}_kernel``) and the multiplier of its inner width in {0.5, 1, 2}
(``b{i}_width``, the width of the first conv's output), 9^8 architectures in all. The first
block of stages 2-4 halves the feature map only while it is at least 2×2, so 8×8 digits and
32×32 CIFAR inputs (and anything larger) all end in a valid map of at least 1×1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nas_hpo._options import AtLeast1, Positive
from nas_hpo.oneshot import is_relaxed, mixed
from nas_hpo.space import Categorical, SearchSpace
from nas_hpo.spaces import register

KERNELS = (3, 5, 7)
WIDTHS = (0.5, 1.0, 2.0)
N_BLOCKS = 8
BLOCKS_PER_STAGE = 2


class BasicBlock(nn.Module):
    """conv(k) → BN → ReLU → conv(k) → BN, plus identity or 1×1-conv shortcut, → ReLU."""

    def __init__(self, c_in: int, c_mid: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        pad = kernel // 2
        self.conv1 = nn.Conv2d(c_in, c_mid, kernel, stride, pad, bias=False)
        self.bn1 = nn.BatchNorm2d(c_mid)
        self.conv2 = nn.Conv2d(c_mid, c_out, kernel, 1, pad, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNetBlocks(nn.Module):
    def __init__(self, stem: nn.Module, blocks: list[nn.Module], c_last: int,
                 num_classes: int) -> None:
        super().__init__()
        self.stem = stem
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(c_last, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.head(torch.flatten(self.pool(x), 1))


def _layout(input_shape: tuple[int, ...], base_width: int
            ) -> tuple[nn.Module, list[tuple[int, int, int]]]:
    """The stem and, per block, (c_in, c_out, stride)."""
    c_in, h, w = input_shape
    size = min(h, w)
    if size >= 128:
        # ImageNet-sized inputs get ResNet's own 7×7 / stride-2 stem and max-pool.
        stem: nn.Module = nn.Sequential(
            nn.Conv2d(c_in, base_width, 7, 2, 3, bias=False), nn.BatchNorm2d(base_width),
            nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1),
        )
        size = (size + 1) // 2
        size = (size + 1) // 2
    else:
        stem = nn.Sequential(
            nn.Conv2d(c_in, base_width, 3, 1, 1, bias=False), nn.BatchNorm2d(base_width),
            nn.ReLU(inplace=True),
        )
    plan = []
    c_prev = base_width
    for i in range(N_BLOCKS):
        stage = i // BLOCKS_PER_STAGE
        c_out = base_width * 2**stage
        first_of_stage = i % BLOCKS_PER_STAGE == 0
        stride = 2 if first_of_stage and stage > 0 and size >= 2 else 1
        size = (size + stride - 1) // stride
        plan.append((c_prev, c_out, stride))
        c_prev = c_out
    return stem, plan


def _mid(width: Any, c_out: int) -> int:
    return max(1, int(round(float(width) * c_out)))


def build(
    config: Mapping[str, Any],
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    base_width: int = 16,
) -> nn.Module:
    """The network of ``config`` for inputs of shape ``(C, H, W)``."""
    stem, plan = _layout(input_shape, base_width)
    blocks: list[nn.Module] = []
    for i, (c_in, c_out, stride) in enumerate(plan, start=1):
        kernel = int(config[f"b{i}_kernel"])
        blocks.append(BasicBlock(c_in, _mid(config[f"b{i}_width"], c_out), c_out, kernel,
                                 stride))
    return ResNetBlocks(stem, blocks, plan[-1][1], num_classes)


def choice_name(kernel: Any, width: Any) -> str:
    """The module name of a choice block: ``k3w0_5`` (a module name cannot hold a dot)."""
    return f"k{int(kernel)}w{float(width):g}".replace(".", "_")


class ResNetBlocksSupernet(nn.Module):
    """The weight-sharing supernet of the space (SPOS-style choice blocks): each of the 8
    positions holds one basic block per kernel × width. ``supernet(x, config)`` runs each
    position's chosen block: exactly what ``build(config)`` computes with those weights
    (``subnet`` makes that network)."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, base_width: int
                 ) -> None:
        super().__init__()
        self.input_shape, self.num_classes, self.base_width = input_shape, num_classes, base_width
        self.stem, plan = _layout(input_shape, base_width)
        self.blocks = nn.ModuleList(
            nn.ModuleDict({choice_name(k, wd): BasicBlock(c_in, _mid(wd, c_out), c_out, k, stride)
                           for k in KERNELS for wd in WIDTHS})
            for c_in, c_out, stride in plan
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(plan[-1][1], num_classes)

    def forward(self, x: torch.Tensor, config: Mapping[str, Any]) -> torch.Tensor:
        x = self.stem(x)
        for i, position in enumerate(self.blocks, start=1):
            if is_relaxed(config):  # a mixed choice block: kernel and width weights multiply
                ops = {(k, wd): position[choice_name(k, wd)] for k in KERNELS for wd in WIDTHS}
                x = mixed(config, (f"b{i}_kernel", f"b{i}_width"), ops, x)
                continue
            x = position[choice_name(config[f"b{i}_kernel"], config[f"b{i}_width"])](x)
        return self.head(torch.flatten(self.pool(x), 1))

    def subnet(self, config: Mapping[str, Any]) -> nn.Module:
        """``build(config)`` with the supernet's weights and BN statistics of that path."""
        net = build(config, input_shape=self.input_shape, num_classes=self.num_classes,
                    base_width=self.base_width)
        state = {}
        for key, value in self.state_dict().items():
            parts = key.split(".")
            if parts[0] == "blocks":
                # blocks.I.CHOICE.rest -> blocks.I.rest, for the chosen block
                i = int(parts[1]) + 1
                if parts[2] != choice_name(config[f"b{i}_kernel"], config[f"b{i}_width"]):
                    continue
                key = ".".join(parts[:2] + parts[3:])
            state[key] = value
        net.load_state_dict(state)
        return net


def arch_str(config: Mapping[str, Any]) -> str:
    """A short readable name: ``k3w1-k5w0.5-...`` for blocks 1..8."""
    return "-".join(
        f"k{config[f'b{i}_kernel']}w{float(config[f'b{i}_width']):g}" for i in range(1, N_BLOCKS + 1)
    )


@register("resnet_blocks", size=9**8, supernet=True, test_options={"base_width": 4})
def resnet_blocks(*, base_width: AtLeast1 = 16, width_mult: Positive = 1.0) -> SearchSpace:
    """The space; ``base_width`` is the first stage's width (ResNet-18 itself uses 64), scaled
    by ``width_mult`` (the width fidelity of low-cost training)."""
    base_width = max(1, int(round(base_width * width_mult)))
    params = []
    for i in range(1, N_BLOCKS + 1):
        params.append(Categorical(f"b{i}_kernel", KERNELS, default=3, ordered=True))
        params.append(Categorical(f"b{i}_width", WIDTHS, default=1.0, ordered=True))

    def builder(config: Mapping[str, Any], *, input_shape: tuple[int, ...],
                num_classes: int) -> nn.Module:
        return build(config, input_shape=input_shape, num_classes=num_classes,
                     base_width=base_width)

    def supernet(*, input_shape: tuple[int, ...], num_classes: int) -> ResNetBlocksSupernet:
        return ResNetBlocksSupernet(input_shape, num_classes, base_width)

    return SearchSpace(params, builder=builder, arch_key=arch_str, supernet=supernet)
