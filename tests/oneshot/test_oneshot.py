"""Differentiable one-shot search: the relaxation runs the same paths as a plain config, the
bilevel steps keep to their own tensors, DARTS' second-order product, GDAS' one path, PC-DARTS'
partial channels, and the collapse guard."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nas_hpo import spaces
from nas_hpo.oneshot import OneShotSearch, Relaxed, mixed
from nas_hpo.oneshot._search import finite_difference_hvp

torch.set_num_threads(1)
SMALL = {"nb201": {"C": 4, "N": 1}, "darts": {"init_channels": 4, "layers": 3},
         "resnet_blocks": {"base_width": 4}, "mobilenet": {"max_depth": 2, "width_mult": 0.25}}
SHAPE = (1, 8, 8)


def data(n: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, *SHAPE, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def searched(space: str = "nb201", **options) -> tuple[OneShotSearch, nn.Module]:
    search = OneShotSearch(spaces.get(space, **SMALL[space]), **options)
    return search, search.build(SHAPE, 10)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_a_one_hot_relaxation_computes_exactly_the_plain_configs_path(name):
    search, model = searched(name)
    model.eval()
    x, _ = data(4)
    for seed in range(3):
        config = search.space.sample(seed=seed)
        with torch.no_grad():
            plain = model(x, config)
            relaxed = model(x, search.one_hot(config))
        assert torch.allclose(plain, relaxed, atol=1e-5), name


@pytest.mark.parametrize("order", [1, 2])
def test_the_alpha_step_moves_alpha_only_and_the_weight_step_the_weights_only(order):
    search, model = searched(order=order, method="darts", arch_lr=0.01)
    model.train()
    w_opt, arch_opt = search.optimizers(model)
    (xt, yt), (xv, yv) = data(16, 0), data(16, 1)
    weights = {k: v.detach().clone() for k, v in model.named_parameters()}
    alphas = {k: v.detach().clone() for k, v in search.alphas.items()}

    search.alpha_step(model, xt, yt, xv, yv, 0.025, 1, arch_opt)
    for name, a in search.alphas.items():
        assert a.grad is not None and a.grad.abs().sum() > 0, name
        assert not torch.equal(a.detach(), alphas[name]), name
    for k, v in model.named_parameters():
        assert torch.equal(v.detach(), weights[k]), k
        assert v.grad is None or v.grad.abs().sum() == 0, k

    alphas = {k: v.detach().clone() for k, v in search.alphas.items()}
    for a in search.alphas.values():
        a.grad = None
    search.weight_step(model, xt, yt, w_opt)
    moved = [k for k, v in model.named_parameters() if not torch.equal(v.detach(), weights[k])]
    assert len(moved) > len(weights) // 2
    for name, a in search.alphas.items():
        assert a.grad is None and torch.equal(a.detach(), alphas[name]), name


def test_the_finite_difference_hessian_vector_product_matches_autograd():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)).double()
    alpha = torch.randn(3, dtype=torch.float64, requires_grad=True)
    x, y = torch.randn(11, 5, dtype=torch.float64), torch.randint(0, 3, (11,))
    weights = dict(net.named_parameters())

    def loss(w):  # a mixture of the outputs by softmax(α), as an edge mixes its ops
        out = torch.func.functional_call(net, w, (x,)) * torch.softmax(alpha, 0)
        return nn.functional.cross_entropy(out, y)

    vector = {k: torch.randn_like(v) for k, v in weights.items()}
    grads = torch.autograd.grad(loss(weights), list(weights.values()), create_graph=True)
    dot = sum((g * vector[k]).sum() for k, g in zip(weights, grads, strict=True))
    exact = torch.autograd.grad(dot, alpha)[0]
    approx = finite_difference_hvp(loss, weights, [alpha], vector, eps=1e-4)[0]
    assert torch.allclose(approx, exact, rtol=1e-5, atol=1e-8), (approx, exact)
    # DARTS' own ε (0.01 / ‖v‖) in float32 is what the search uses: close, not exact.
    eps = 0.01 / float(torch.sqrt(sum((v * v).sum() for v in vector.values())))
    rough = finite_difference_hvp(loss, weights, [alpha], vector, eps=eps)[0]
    assert torch.allclose(rough, exact, rtol=1e-3, atol=1e-6)


def _count_calls(model: nn.Module) -> dict[str, int]:
    calls: dict[str, int] = {}
    for name, module in model.named_modules():
        parts = name.split(".")
        if len(parts) == 5 and parts[2] == "edges":  # cells.K.edges.EDGE.OP
            edge = ".".join(parts[:4])
            calls.setdefault(edge, 0)

            def hook(*_, edge=edge):
                calls[edge] += 1

            module.register_forward_hook(hook)
    return calls


@pytest.mark.parametrize("method, per_edge", [("gdas", {0, 1}), ("darts", {4})])
def test_gdas_runs_one_operation_per_edge_and_step_darts_all(method, per_edge):
    search, model = searched(method=method)
    calls = _count_calls(model)
    w_opt, _ = search.optimizers(model)
    x, y = data(8)
    for _ in range(5):
        for edge in calls:
            calls[edge] = 0
        search.weight_step(model, x, y, w_opt)
        # nb201's four operations with weights (none has no module); GDAS: one of the five,
        # so no call when it drew none.
        assert set(calls.values()) <= per_edge, calls
    if method == "gdas":  # and the α of every edge gets gradients through the hard samples
        _, arch_opt = search.optimizers(model)
        got = dict.fromkeys(search.alphas, 0.0)
        for _ in range(5):
            search.alpha_step(model, x, y, x, y, 0.025, 1, arch_opt)
            for name, a in search.alphas.items():
                got[name] += float(a.grad.abs().sum())
        assert all(v > 0 for v in got.values()), got


def test_partial_channels_send_a_quarter_through_the_ops_and_shuffle_the_rest_in():
    seen = []

    class Op(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.tensor(2.0))

        def forward(self, x):
            seen.append(x.shape[1])
            return self.scale * x

    x = torch.arange(8.0).view(1, 8, 1, 1).expand(1, 8, 2, 2).contiguous()
    config = Relaxed({"e": torch.tensor([1.0])}, {"e": ["op"]}, partial=4)
    out = mixed(config, "e", {"op": Op()}, x)
    assert seen == [2]  # 8 channels, 1/4 of them through the op
    # cat([2 · x[:2], x[2:]]) shuffled in 4 groups of 2: channel order 0, 2, 4, 6, 1, 3, 5, 7
    expected = torch.tensor([0.0, 2, 4, 6, 2, 3, 5, 7])
    assert torch.equal(out[0, :, 0, 0], expected)
    # Built for it, the whole supernet runs a relaxed config on partial channels.
    search, model = searched(method="pc_darts", partial_channels=2)
    xb, _ = data(4)
    assert model(xb, search.relaxed()).shape == (4, 10)
    with pytest.raises(ValueError, match="partial channels"):
        model.subnet(search.space.sample(seed=0))


def test_the_collapse_guard_fires_when_parameter_free_operations_win_and_can_stop():
    space = spaces.get("nb201", C=4, N=1)
    (x, y), (xv, yv) = data(48, 0), data(16, 1)
    ops = space["edge_1_0"].choices

    def skip_wins(epoch):  # what DARTS' drift does, made to happen after the first epoch
        if epoch.epoch == 1:
            with torch.no_grad():
                for a in search.alphas.values():
                    a.zero_()
                    a[ops.index("skip_connect")] = 5.0

    search = OneShotSearch(space, epochs=4, batch_size=16, arch_lr=1e-6,
                           on_collapse="stop", seed=0)
    with torch.no_grad():  # epoch 1 derives convolutions everywhere: no collapse
        for a in search.alphas.values():
            a[ops.index("nor_conv_3x3")] = 5.0
    history = search.run(x, y, xv, yv, num_classes=10, on_epoch=skip_wins)
    assert [e.collapsed for e in history] == [False, True]  # stopped at the collapse
    assert history[0].parameter_free_share == 0.0
    assert history[1].parameter_free_share == 1.0
    assert set(history[1].config.values()) == {"skip_connect"}
    # Reporting only, the search goes on.
    search = OneShotSearch(space, epochs=2, batch_size=16, arch_lr=1e-6, seed=0)
    with torch.no_grad():
        for a in search.alphas.values():
            a[ops.index("skip_connect")] = 5.0
    assert [e.collapsed for e in search.run(x, y, xv, yv, num_classes=10)] == [True, True]


def test_only_categorical_spaces_with_a_supernet_are_searched():
    with pytest.raises(ValueError, match="no supernet"):
        OneShotSearch(spaces.get("chain"))
    with pytest.raises(ValueError, match="first order"):
        OneShotSearch(spaces.get("nb201", C=4, N=1), method="gdas", order=2)
    with pytest.raises(ValueError, match="one of"):
        OneShotSearch(spaces.get("nb201", C=4, N=1), method="enas")
    with pytest.raises(ValueError, match="takes no option partial_channels"):
        spaces.get("mobilenet").build_supernet(input_shape=SHAPE, num_classes=10,
                                               partial_channels=2)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_space_with_choices_searches_and_derives_a_valid_architecture(name):
    search, _ = searched(name, epochs=1, batch_size=16, arch_lr=0.01)
    (x, y), (xv, yv) = data(32, 0), data(16, 1)
    (epoch,) = search.run(x, y, xv, yv, num_classes=10)
    search.space.validate(epoch.config)
    assert 0 <= epoch.val_accuracy <= 1
    # α moved, and the derived choice of each active parameter is its most weighted one.
    assert any(max(p) - min(p) > 1e-3 for p in epoch.alphas.values())
    for n, v in epoch.config.items():
        if n in epoch.alphas:
            assert epoch.alphas[n][search.choices[n].index(v)] == max(epoch.alphas[n])
