"""``nb201``: the NAS-Bench-201 cell space, 6 edges of 5 operations, 15,625 architectures.

The space of NAS-Bench-201 (Dong and Yang, "NAS-Bench-201: Extending the Scope of Reproducible
Neural Architecture Search", ICLR 2020), which NATS-Bench (Dong et al., TPAMI 2021) keeps as its
topology search space. A cell is a DAG on 4 nodes: node 0 is the cell's input, and node ``i``
(1, 2, 3) is the sum over every ``j < i`` of an operation applied to node ``j``; the cell's
output is node 3. Each of the 6 edges chooses one of ``OPS``:

- ``none``: zeros (the edge is absent);
- ``skip_connect``: the identity;
- ``nor_conv_1x1`` / ``nor_conv_3x3``: ReLU, convolution without bias (stride 1, "same"
  padding), batch norm;
- ``avg_pool_3x3``: 3×3 average pooling, stride 1, padding 1, not counting the padding.

Parameters: ``edge_{i}_{j}``, the operation on the edge from node ``j`` into node ``i``, an
unordered categorical over ``OPS`` whose default is ``nor_conv_3x3``; no conditions, so the space
has ``5**6 = 15,625`` configurations. Architectures are named by the benchmark's own string
(``arch_str`` / ``from_arch_str``), e.g.
``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|``:
the ``i``-th ``+``-separated group lists the edges into node ``i`` as ``op~j``. Results therefore
join NAS-Bench-201 / NATS-Bench tables by that string.

Network (``build``): the benchmark's macro skeleton (``TinyNetwork`` of its reference code): a
3×3 convolution stem to ``C`` channels and batch norm; three stages of ``N`` copies of the cell
with ``C``, ``2C`` and ``4C`` channels; between stages the benchmark's residual reduction block
(ReLU-conv3×3(stride 2)-BN, ReLU-conv3×3-BN, plus a shortcut of 2×2 average pooling and a 1×1
convolution, no activation after the sum); then batch norm, ReLU, global average pooling and a
linear classifier. With ``C=16, N=5``, a 3×32×32 input and 10 classes every architecture has
exactly the parameter count the benchmark publishes for it (batch-norm weights and biases
included, as the benchmark counts them).

What differs from the benchmark, and why (none of it changes a parameter count):

- The network returns the logits only (the reference returns the pooled features too).
- The shortcut's 2×2 average pooling rounds up (``ceil_mode``, averaging only the pixels a
  window covers), so that odd maps (a 28×28 input reaches 7×7) and maps smaller than 2×2 (8×8
  digits reach 2×2, then 1×1) give the strided convolution's ``ceil(size / 2)`` too, where the
  benchmark's pooling would give a different shape or none. On the benchmark's even maps it is
  exactly its own op.
- Inputs of at least ``IMAGENET_STEM_FROM`` pixels per side get a downsampling stem: the same
  3×3 convolution with stride 2, then a parameter-free 3×3 / stride-2 max-pool (ResNet's
  ImageNet stem), so a 224×224 image reaches the cells at 56×56 rather than 224×224, which would
  cost 16 times the compute of the benchmark's own skeleton.
- ``none`` edges are skipped rather than computed as ``x * 0``; a node with no other input is a
  tensor of zeros, which is what the benchmark computes for any finite input.

Architectures whose cell has no path of non-``none`` edges from node 0 to node 3 compute an
output that does not depend on the input (``is_input_independent``). They are valid members of
the benchmark and build and run; the built network says so in its ``input_independent``
attribute, so an objective can skip training them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from nas_hpo._options import AtLeast1, Positive
from nas_hpo.space import Categorical, SearchSpace
from nas_hpo.spaces import register
from nas_hpo.spaces.nb201._names import (
    DEFAULT_OP,
    EDGE_NAMES,
    EDGES,
    IMAGENET_STEM_FROM,
    N_NODES,
    OPS,
    PATH_FEATURES,
    PATH_OPS,
    ROUTES,
    arch_str,
    canonical,
    edge_name,
    from_arch_str,
    is_input_independent,
    path_encoding,
)
from nas_hpo.spaces.nb201._network import (
    Cell,
    NB201Network,
    NB201Supernet,
    ReLUConvBN,
    ResidualReduction,
    SuperCell,
    Zero,
    build,
    make_op,
)

__all__ = [
    "DEFAULT_OP", "EDGES", "EDGE_NAMES", "IMAGENET_STEM_FROM", "N_NODES", "OPS", "PATH_FEATURES",
    "PATH_OPS", "ROUTES", "Cell", "NB201Network", "NB201Supernet", "ReLUConvBN",
    "ResidualReduction", "SuperCell", "Zero", "arch_str", "build", "canonical", "edge_name",
    "from_arch_str", "is_input_independent", "make_op", "nb201", "path_encoding",
]


@register("nb201", size=5**6, supernet=True, test_options={"C": 4, "N": 1})
def nb201(*, C: AtLeast1 = 16, N: AtLeast1 = 5, width_mult: Positive = 1.0) -> SearchSpace:
    """The space; its networks start at ``C`` channels (scaled by ``width_mult``, the width
    fidelity of low-cost training) and have ``N`` cells per stage. The benchmark's networks are
    those of the defaults."""
    width = max(1, int(round(C * width_mult)))
    params = [Categorical(name, OPS, default=DEFAULT_OP) for name in EDGE_NAMES]

    def builder(
        config: Mapping[str, Any], *, input_shape: tuple[int, ...], num_classes: int
    ) -> nn.Module:
        return build(config, input_shape=input_shape, num_classes=num_classes, C=width, N=N)

    def supernet(*, input_shape: tuple[int, ...], num_classes: int,
                 partial_channels: int = 1) -> NB201Supernet:
        return NB201Supernet(input_shape, num_classes, C=width, N=N,
                             partial_channels=partial_channels)

    key: Callable[[Mapping[str, Any]], str] = arch_str
    return SearchSpace(params, builder=builder, arch_key=key, network_key=canonical,
                       supernet=supernet, encoder=path_encoding)
