"""``vit``: a small Vision Transformer whose depth and per-layer attention and MLP sizes are
searched.

The network is the Vision Transformer of Dosovitskiy et al., "An Image is Worth 16x16 Words:
Transformers for Image Recognition at Scale" (ICLR 2021): the image cut into patches, each
patch linearly embedded, a class token prepended, learned position embeddings added, a stack of
pre-norm transformer blocks (multi-head self-attention, then an MLP, each with a residual), a
final LayerNorm and a linear head on the class token. What is searched follows AutoFormer
(Chen et al., "AutoFormer: Searching Transformers for Visual Recognition", ICCV 2021): the
embedding dimension and depth for the whole network and, per layer, the number of heads, the
q/k/v size and the MLP ratio (here the q/k/v size is searched per head, as ``head_dim``).

Parameters:

- ``patch_size``: the side of the square patches (embedded by a convolution with
  ``stride = kernel = patch``). The input is zero-padded on the right and at the bottom to a
  multiple of the patch, so any H×W works, down to one 8×8 patch. Inputs of at least 128
  pixels use patches ``LARGE_INPUT_PATCH_SCALE`` times larger (2 / 4 / 8 become 8 / 16 / 32,
  ViT's own ImageNet patch sizes), keeping the token count that of a 28-56 pixel image.
- ``embed_dim``: the width of the token stream.
- ``depth``: the number of transformer blocks.
- ``layer{l}_heads``: the attention heads of block ``l``; active when ``depth >= l``.
- ``layer{l}_head_dim``: the q / k / v dimension of each head: the block projects the
  ``embed_dim`` tokens to ``heads × head_dim`` for each of q, k and v and back to ``embed_dim``.
  Active likewise.
- ``layer{l}_mlp_ratio``: the MLP's hidden width as a multiple of ``embed_dim``. Active likewise.

Each block has 27 choices, so the space has ``3 × 3 × sum_d 27**d`` members.

Position embeddings are sized for the number of patches of the ``input_shape`` given at build
time. Attention is ``torch.nn.functional.scaled_dot_product_attention`` (flash or memory-efficient
kernels where the device has them). ``width_mult`` scales ``embed_dim`` and ``head_dim`` at build
time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas_hpo._options import AtLeast1, Positive
from nas_hpo.space import Categorical, Condition, Constant, GreaterThan, Hyperparameter, SearchSpace
from nas_hpo.spaces import register

PATCH_SIZES = (2, 4, 8)
EMBED_DIMS = (64, 128, 192)
HEADS = (1, 2, 4)
HEAD_DIMS = (16, 32, 64)
MLP_RATIOS = (2, 3, 4)
LARGE_INPUT = 128
LARGE_INPUT_PATCH_SCALE = 4


def _scaled(dim: int, width_mult: float) -> int:
    return max(1, int(round(dim * width_mult)))


class Attention(nn.Module):
    """Multi-head self-attention with ``heads × head_dim`` wide q, k and v."""

    def __init__(self, dim: int, heads: int, head_dim: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        inner = heads * head_dim
        self.q = nn.Linear(dim, inner)
        self.k = nn.Linear(dim, inner)
        self.v = nn.Linear(dim, inner)
        self.proj = nn.Linear(inner, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = self._split(self.q(x)), self._split(self.k(x)), self._split(self.v(x))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, self.heads * self.head_dim))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``."""

    def __init__(self, dim: int, heads: int, head_dim: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, head_dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = dim * mlp_ratio
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """Patch embedding, class token, position embeddings, blocks, norm, head."""

    def __init__(
        self,
        in_channels: int,
        grid: tuple[int, int],
        patch: int,
        dim: int,
        blocks: list[nn.Module],
        num_classes: int,
    ) -> None:
        super().__init__()
        self.patch, self.grid = patch, grid
        self.patch_embed = nn.Conv2d(in_channels, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid[0] * grid[1] + 1, dim))
        # ViT's initialisation of the learned embeddings (truncated normal, std 0.02).
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.blocks = nn.Sequential(*blocks)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = F.pad(x, (0, -w % self.patch, 0, -h % self.patch))
        x = self.patch_embed(x)
        if tuple(x.shape[-2:]) != self.grid:
            raise ValueError(
                f"input of {h}×{w} pixels gives a {x.shape[-2]}×{x.shape[-1]} patch grid, but "
                f"the position embeddings were built for {self.grid[0]}×{self.grid[1]}"
            )
        x = x.flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


def effective_patch(patch_size: int, input_shape: tuple[int, ...]) -> int:
    """The patch side used for this input: larger on ImageNet-sized inputs."""
    _, h, w = input_shape
    return patch_size * (LARGE_INPUT_PATCH_SCALE if min(h, w) >= LARGE_INPUT else 1)


def build(
    config: Mapping[str, Any],
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    width_mult: float = 1.0,
) -> nn.Module:
    """The network of ``config`` for inputs of shape ``(C, H, W)``."""
    c, h, w = input_shape
    patch = effective_patch(int(config["patch_size"]), input_shape)
    grid = (-(-h // patch), -(-w // patch))
    dim = _scaled(int(config["embed_dim"]), width_mult)
    blocks: list[nn.Module] = [
        Block(
            dim,
            int(config[f"layer{i}_heads"]),
            _scaled(int(config[f"layer{i}_head_dim"]), width_mult),
            int(config[f"layer{i}_mlp_ratio"]),
        )
        for i in range(1, int(config["depth"]) + 1)
    ]
    return VisionTransformer(c, grid, patch, dim, blocks, num_classes)


def _lead(t: torch.Tensor, *sizes: int) -> torch.Tensor:
    """The leading ``sizes`` of each dimension of ``t`` (AutoFormer's weight entanglement: a
    smaller layer is the top-left corner of the largest)."""
    return t[tuple(slice(0, n) for n in sizes)]


class VitSupernet(nn.Module):
    """The weight-sharing supernet of the space, with AutoFormer's weight entanglement (Chen et
    al., ICCV 2021): one set of weights at the largest sizes (embedding dimension, heads ×
    head dimension, MLP ratio, depth), and an architecture uses the leading slice of each; the
    patch embedding and position embeddings are one per patch size (they differ in shape and
    in the number of tokens). ``supernet(x, config)`` computes exactly what ``build(config)``
    computes with those slices (``subnet`` makes that network)."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, width_mult: float,
                 max_depth: int) -> None:
        super().__init__()
        self.input_shape, self.num_classes = input_shape, num_classes
        self.width_mult, self.max_depth = width_mult, max_depth
        c, h, w = input_shape
        dim = _scaled(max(EMBED_DIMS), width_mult)
        self.patch_embeds = nn.ModuleDict()
        self.pos_embeds = nn.ParameterDict()
        for p in PATCH_SIZES:
            patch = effective_patch(p, input_shape)
            grid = (-(-h // patch), -(-w // patch))
            self.patch_embeds[str(p)] = nn.Conv2d(c, dim, patch, patch)
            pos = nn.Parameter(torch.zeros(1, grid[0] * grid[1] + 1, dim))
            nn.init.trunc_normal_(pos, std=0.02)
            self.pos_embeds[str(p)] = pos
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.blocks = nn.ModuleList(
            Block(dim, max(HEADS), _scaled(max(HEAD_DIMS), width_mult), max(MLP_RATIOS))
            for _ in range(max_depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor, config: Mapping[str, Any]) -> torch.Tensor:
        p = int(config["patch_size"])
        patch = effective_patch(p, self.input_shape)
        dim = _scaled(int(config["embed_dim"]), self.width_mult)
        embed = self.patch_embeds[str(p)]
        h, w = x.shape[-2:]
        x = F.pad(x, (0, -w % patch, 0, -h % patch))
        x = F.conv2d(x, _lead(embed.weight, dim), _lead(embed.bias, dim), stride=patch)
        x = x.flatten(2).transpose(1, 2)
        cls = _lead(self.cls_token, 1, 1, dim).expand(x.shape[0], -1, -1)
        pos = self.pos_embeds[str(p)]
        x = torch.cat([cls, x], dim=1) + _lead(pos, 1, pos.shape[1], dim)
        for i in range(1, int(config["depth"]) + 1):
            x = self._block(self.blocks[i - 1], x, dim, int(config[f"layer{i}_heads"]),
                            _scaled(int(config[f"layer{i}_head_dim"]), self.width_mult),
                            int(config[f"layer{i}_mlp_ratio"]))
        x = F.layer_norm(x, (dim,), _lead(self.norm.weight, dim), _lead(self.norm.bias, dim),
                         self.norm.eps)
        return F.linear(x[:, 0], _lead(self.head.weight, self.num_classes, dim), self.head.bias)

    @staticmethod
    def _block(block: Block, x: torch.Tensor, dim: int, heads: int, head_dim: int,
               ratio: int) -> torch.Tensor:
        def norm(m: nn.LayerNorm, t: torch.Tensor) -> torch.Tensor:
            return F.layer_norm(t, (dim,), _lead(m.weight, dim), _lead(m.bias, dim), m.eps)

        def linear(m: nn.Linear, t: torch.Tensor, out: int, inp: int) -> torch.Tensor:
            return F.linear(t, _lead(m.weight, out, inp), _lead(m.bias, out))

        inner = heads * head_dim
        b, n, _ = x.shape
        y = norm(block.norm1, x)
        q, k, v = (linear(m, y, inner, dim).view(b, n, heads, head_dim).transpose(1, 2)
                   for m in (block.attn.q, block.attn.k, block.attn.v))
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, inner)
        x = x + linear(block.attn.proj, out, dim, inner)
        hidden = dim * ratio
        y = F.gelu(linear(block.mlp[0], norm(block.norm2, x), hidden, dim))
        return x + linear(block.mlp[2], y, dim, hidden)

    def subnet(self, config: Mapping[str, Any]) -> nn.Module:
        """``build(config)`` with the supernet's slices of its weights."""
        net = build(config, input_shape=self.input_shape, num_classes=self.num_classes,
                    width_mult=self.width_mult)
        mine = self.state_dict()
        p = str(int(config["patch_size"]))
        state = {}
        for key, target in net.state_dict().items():
            source = key
            if key.startswith("patch_embed."):
                source = f"patch_embeds.{p}." + key[len("patch_embed."):]
            elif key == "pos_embed":
                source = f"pos_embeds.{p}"
            state[key] = _lead(mine[source], *target.shape)
        net.load_state_dict(state)
        return net


def arch_str(config: Mapping[str, Any]) -> str:
    """A short readable name: ``p4-d128|h2x32r4|h4x16r3`` (patch, embedding dimension, then per
    block heads × head dimension and MLP ratio)."""
    layers = [
        f"h{int(config[f'layer{i}_heads'])}x{int(config[f'layer{i}_head_dim'])}"
        f"r{int(config[f'layer{i}_mlp_ratio'])}"
        for i in range(1, int(config["depth"]) + 1)
    ]
    return "|".join([f"p{int(config['patch_size'])}-d{int(config['embed_dim'])}", *layers])


@register("vit", size=9 * sum(27**d for d in range(1, 9)), supernet=True,
          test_options={"max_depth": 3, "width_mult": 0.5})
def vit(*, max_depth: AtLeast1 = 8, width_mult: Positive = 1.0) -> SearchSpace:
    """The space of 1 to ``max_depth`` blocks; ``width_mult`` scales ``embed_dim`` and
    ``head_dim`` when the network is built (the width fidelity of low-cost training)."""
    params: list[Hyperparameter] = [
        Categorical("patch_size", PATCH_SIZES, default=4, ordered=True),
        Categorical("embed_dim", EMBED_DIMS, ordered=True),
        Categorical(
            "depth", tuple(range(1, max_depth + 1)), default=min(4, max_depth), ordered=True
        )
        if max_depth > 1
        else Constant("depth", 1),
    ]
    conditions: dict[str, Condition] = {}
    for i in range(1, max_depth + 1):
        names = (f"layer{i}_heads", f"layer{i}_head_dim", f"layer{i}_mlp_ratio")
        params += [
            Categorical(names[0], HEADS, default=2, ordered=True),
            Categorical(names[1], HEAD_DIMS, default=32, ordered=True),
            Categorical(names[2], MLP_RATIOS, default=4, ordered=True),
        ]
        if i > 1:
            for name in names:
                conditions[name] = GreaterThan("depth", i - 1)

    def builder(
        config: Mapping[str, Any], *, input_shape: tuple[int, ...], num_classes: int
    ) -> nn.Module:
        return build(
            config, input_shape=input_shape, num_classes=num_classes, width_mult=width_mult
        )

    def supernet(*, input_shape: tuple[int, ...], num_classes: int) -> VitSupernet:
        return VitSupernet(input_shape, num_classes, width_mult, max_depth)

    return SearchSpace(params, conditions, builder=builder, arch_key=arch_str,
                       supernet=supernet)
