"""``darts``: the DARTS / NASNet cell space, a normal and a reduction cell of 4 nodes each.

The space is that of DARTS (Liu, Simonyan and Yang, "DARTS: Differentiable Architecture
Search", ICLR 2019), which keeps the cell structure of NASNet (Zoph, Vasudevan, Shlens and Le,
"Learning Transferable Architectures for Scalable Image Recognition", CVPR 2018): a network is
a stack of copies of two cells, the *normal* cell (keeps the resolution) and the *reduction*
cell (halves it). A cell is a DAG on 6 nodes in DARTS' numbering: 0 and 1 are its inputs, the
outputs of the two cells before it (c_{k-2} and c_{k-1}); each intermediate node 2..5 sums two
operations, each applied to an earlier node, and the cell's output concatenates nodes 2..5.
An operation is one of ``OPS`` (DARTS' primitives without ``none``, in DARTS' order).

Encoding (that of the NAS-Bench-301 ConfigSpace, Siems et al. 2020, with shorter names, so
results join with NB301 by renaming ``{cell}_edge_{e}`` ↔ ``NetworkSelectorDatasetInfo:darts:
edge_{cell}_{e}`` and ``{cell}_inputs_node_{k}`` ↔ ``...:inputs_node_{cell}_{k}``), for each
``cell`` in ``normal``, ``reduce``:

- ``{cell}_inputs_node_{k}`` for ``k = 3, 4, 5``: the node's two inputs, an *unordered* pair
  of distinct predecessors written ``"a_b"`` with ``a < b`` (``"0_1"``, ``"0_2"``, ``"1_2"``,
  ... the ``C(k, 2)`` pairs of ``0..k-1``). Node 2 has one possible pair, {0, 1}, so no
  parameter. The pair is a set because a node sums its two inputs: (op1 on a, op2 on b) and
  (op2 on b, op1 on a) are one network, and DARTS' derivation keeps the top-2 *distinct*
  predecessors of a node, so a node never reads one input twice.
- ``{cell}_edge_{e}`` for ``e = 0..13``: the operation on edge ``e`` in DARTS' edge order
  (node 2's edges from 0, 1; node 3's from 0, 1, 2; node 4's from 0..3; node 5's from 0..4).
  The edges of node 2 are always active; an edge of node ``k >= 3`` from ``j`` is active iff
  ``{cell}_inputs_node_{k}`` is one of the pairs containing ``j`` (an ``In`` condition).

Each cell has ``1 · 3 · 6 · 10`` input choices and 8 active edges of 7 operations, so the space
has ``(1 · 3 · 6 · 10 · 7**8)**2`` (about 1.1e18) architectures. Its default configuration is
DARTS (2nd order), ``DARTS_V2`` of DARTS' ``genotypes.py``.

Architectures are named by DARTS' own genotype string (``genotype_str`` / ``from_genotype_str``)::

    Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ...], normal_concat=[2, 3, 4, 5],
             reduce=[...], reduce_concat=[2, 3, 4, 5])

The printed string is canonical: the two (op, input) pairs of a node are ordered by input.
Published genotypes that list a node's inputs in another order (DARTS_V2 does) parse all the
same, into the same configuration.

Network (``build``): DARTS' evaluation network (``NetworkCIFAR`` of its ``model.py`` and the ops
of its ``operations.py``): a 3×3 convolution stem to ``3 · init_channels`` channels and BN;
``layers`` cells, the reduction cells at ``layers // 3`` and ``2 · layers // 3``, each doubling
the cell width (``init_channels`` at first); the inputs of a cell are preprocessed by ReLU-1×1
conv-BN, or by a factorized reduction where the cell before was a reduction cell (its c_{k-2}
then has twice the resolution of c_{k-1}); global average pooling and a linear classifier.
DARTS' evaluation setting is ``init_channels=36, layers=20`` on CIFAR-10, where DARTS_V2 has
3,349,342 parameters, the number DARTS logs (the paper's 3.3M, auxiliary head not counted);
the defaults here, 16 and 8, are its search network's size. The ops are those of the evaluation
network: ``sep_conv`` is (ReLU, depthwise k×k, pointwise 1×1, BN) twice, the first with the
edge's stride; ``dil_conv`` is ReLU, depthwise k×k with dilation 2, pointwise 1×1, BN; the pools
are 3×3 with padding 1 (average pools not counting the padding) and, unlike in DARTS' search
network, no BN after them; ``skip_connect`` is the identity, or a factorized reduction on a
strided edge. In a reduction cell the edges from the cell inputs (0 and 1) have stride 2.

What differs from DARTS, and why:

- No auxiliary head and no drop path (regularizers of DARTS' training, not parts of the
  architecture); the network returns the logits only.
- A factorized reduction (ReLU; two 1×1 convolutions of stride 2, the second on the map shifted
  by one pixel; concatenated; BN) needs an even map in DARTS. An odd map is first padded with
  one zero row / column at the bottom / right, so that every strided edge of a cell yields
  ``ceil(H / 2)`` as the convolutions and pools do; even maps are unchanged, and so inputs of
  any size from 8×8 digits to 224×224 images build. An odd channel count is split ``c // 2``
  and ``c - c // 2`` between the two convolutions.
- Inputs of at least ``IMAGENET_STEM_FROM`` pixels get the strided stem of DARTS'
  ``NetworkImageNet`` (three 3×3 convolutions of stride 2, to ``init_channels`` channels; the
  first cell then treats the stem's two outputs like a reduction cell's); the pooling is
  adaptive rather than its fixed 7×7.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from nas_hpo._options import AtLeast1, Positive
from nas_hpo.space import Categorical, Condition, Hyperparameter, In, SearchSpace
from nas_hpo.spaces import register
from nas_hpo.spaces.darts._genotype import (
    CELLS,
    CONCAT,
    DARTS_V1,
    DARTS_V2,
    IMAGENET_STEM_FROM,
    N_EDGES,
    NODES,
    OPS,
    STEM_MULTIPLIER,
    Genotype,
    edge_index,
    edge_param,
    from_genotype_str,
    genotype,
    genotype_str,
    input_pairs,
    inputs_param,
)
from nas_hpo.spaces.darts._network import (
    Cell,
    CifarStem,
    DartsNetwork,
    DartsSupernet,
    FactorizedReduce,
    ImageNetStem,
    ReLUConvBN,
    SuperCell,
    _check_options,
    build,
)

__all__ = [
    "CELLS",
    "CONCAT",
    "DARTS_V1",
    "DARTS_V2",
    "IMAGENET_STEM_FROM",
    "N_EDGES",
    "NODES",
    "OPS",
    "STEM_MULTIPLIER",
    "Cell",
    "CifarStem",
    "DartsNetwork",
    "DartsSupernet",
    "FactorizedReduce",
    "Genotype",
    "adjacency_encoding",
    "ImageNetStem",
    "ReLUConvBN",
    "SuperCell",
    "build",
    "darts",
    "edge_index",
    "edge_param",
    "from_genotype_str",
    "genotype",
    "genotype_str",
    "input_pairs",
    "inputs_param",
]


# --------------------------------------------------------------------------- the space


def _params_and_conditions() -> tuple[list[Hyperparameter], dict[str, Condition]]:
    default = from_genotype_str(DARTS_V2)
    params: list[Hyperparameter] = []
    conditions: dict[str, Condition] = {}
    for cell in CELLS:
        for node in NODES:
            pairs = input_pairs(node)
            if node > 2:
                name = inputs_param(cell, node)
                params.append(Categorical(name, pairs, default=default[name]))
            for source in range(node):
                edge = edge_param(cell, edge_index(node, source))
                params.append(Categorical(edge, OPS, default=default.get(edge, "sep_conv_3x3")))
                if node > 2:
                    holding = tuple(p for p in pairs if str(source) in p.split("_"))
                    conditions[edge] = In(inputs_param(cell, node), holding)
    return params, conditions


def adjacency_encoding(config: Mapping[str, Any]) -> list[float]:
    """The cells as labelled adjacency (NASLib's ``adjacency_one_hot`` for DARTS): for each
    cell and each of its 14 possible edges, a one-hot of the operation when the edge is in the
    architecture, zeros when it is not; 2 · 14 · 7 = 196 entries, 16 of them ones. It says
    directly which node reads which with what, where the generic encoding spreads that over
    the input pairs, the edges' operations and their active flags."""
    out = [0.0] * (len(CELLS) * N_EDGES * len(OPS))
    for c, cell in enumerate(CELLS):
        for e in range(N_EDGES):
            op = config.get(edge_param(cell, e))
            if op is not None:
                out[(c * N_EDGES + e) * len(OPS) + OPS.index(op)] = 1.0
    return out


@register("darts", size=(1 * 3 * 6 * 10 * 7**8) ** 2, supernet=True,
          test_options={"init_channels": 4, "layers": 5})
def darts(*, init_channels: AtLeast1 = 16, layers: AtLeast1 = 8,
          width_mult: Positive = 1.0) -> SearchSpace:
    """The space; its networks have ``layers`` cells and start at ``init_channels`` channels
    scaled by ``width_mult`` (the width fidelity of low-cost training). DARTS evaluates its
    cells with 36 channels and 20 layers, and searches with 16 and 8."""
    _check_options(init_channels, layers)
    channels = max(1, int(round(init_channels * width_mult)))
    params, conditions = _params_and_conditions()

    def builder(
        config: Mapping[str, Any], *, input_shape: tuple[int, ...], num_classes: int
    ) -> nn.Module:
        return build(
            config,
            input_shape=input_shape,
            num_classes=num_classes,
            init_channels=channels,
            layers=layers,
        )

    def supernet(*, input_shape: tuple[int, ...], num_classes: int,
                 partial_channels: int = 1) -> DartsSupernet:
        return DartsSupernet(input_shape, num_classes, channels, layers, partial_channels)

    return SearchSpace(params, conditions, builder=builder, arch_key=genotype_str,
                       supernet=supernet, encoder=adjacency_encoding)
