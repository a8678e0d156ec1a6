"""Zero-cost proxies against values computed independently here (closed forms, NumPy, plain
autograd on hand-built networks), and their invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from nas_hpo import data, spaces
from nas_hpo import proxies as zc
from nas_hpo.proxies import _passes
from nas_hpo.proxies._activations import _distinct_patterns
from nas_hpo.training._cpu import _WindowSum

ALL = [n for n in zc.PROXIES if n != "vote"]
K = 1e-5


def batch(n: int = 8, d: int = 5, c: int = 3, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.arange(n) % c


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def linear_classifier(seed: int = 0, d: int = 5, c: int = 3):
    torch.manual_seed(seed)
    net = nn.Linear(d, c)
    w, b = (t.detach().double().numpy() for t in (net.weight, net.bias))
    return net, w, b


def ce_grad(w, b, x, y):
    """∂ mean cross-entropy / ∂W of a linear classifier, and its softmax outputs."""
    p = softmax(x @ w.T + b)
    return (p - np.eye(w.shape[0])[y]).T @ x / len(x), p


# ------------------------------------------------------------------ each proxy by hand


def test_synflow_bypasses_bn_and_takes_abs_weights_in_closed_form():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 3))
    with torch.no_grad():  # a BN that would change R if it were not bypassed
        net[1].weight.fill_(-5.0)
        net[1].running_var.fill_(9.0)
    a1, c1, a2 = (t.detach().abs().double().numpy()
                  for t in (net[0].weight, net[0].bias, net[3].weight))
    # R = 1ᵀ(|W2| relu(|W1| 1 + |b1|) + |b2|); Σ|W1 ⊙ ∂R/∂W1| = 1ᵀ|W2||W1|1 and
    # Σ|W2 ⊙ ∂R/∂W2| = 1ᵀ|W2|(|W1|1 + |b1|); biases are not summed.
    want = 2 * np.ones(3) @ a2 @ a1 @ np.ones(5) + np.ones(3) @ a2 @ c1
    before = net[0].weight.detach().clone()
    got = zc.score(net, "synflow", data=batch())
    assert got["synflow"] == pytest.approx(math.log(want), rel=1e-12)
    assert torch.equal(net[0].weight, before) and (before < 0).any()


def test_snip_grad_norm_plain_of_a_linear_classifier_by_hand():
    net, w, b = linear_classifier()
    x, y = batch()
    g, _ = ce_grad(w, b, x.double().numpy(), y.numpy())
    got = zc.score(net, ["snip", "grad_norm", "plain"], data=(x, y))
    assert got["snip"] == pytest.approx(np.abs(w * g).sum(), rel=1e-5)
    assert got["grad_norm"] == pytest.approx(np.linalg.norm(g), rel=1e-5)
    assert got["plain"] == pytest.approx((w * g).sum(), rel=1e-4, abs=1e-7)
    assert not got.worst


def test_grasp_is_minus_w_times_hessian_gradient_product_by_hand():
    net, w, b = linear_classifier(seed=2)
    x, y = batch(n=10, seed=3)
    xs = x.double().numpy()
    g, p = ce_grad(w, b, xs, y.numpy())
    # H g for softmax cross-entropy: (1/N) Σ_n (diag p_n − p_n p_nᵀ)(g x_n) x_nᵀ.
    hg = sum(np.outer((np.diag(pn) - np.outer(pn, pn)) @ (g @ xn), xn)
             for pn, xn in zip(p, xs, strict=True)) / len(xs)
    got = zc.score(net, "grasp", data=(x, y))["grasp"]
    assert got == pytest.approx(float((-w * hg).sum()), rel=1e-4)


def test_fisher_broadcasts_channel_values_to_their_weights():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(6, 1, 6, 6, generator=g), torch.tensor([0, 1, 2, 0, 1, 2])
    a1 = net[0](x)
    a1.retain_grad()
    a2 = net[2](net[1](a1))
    a2.retain_grad()
    nn.functional.cross_entropy(a2, y).backward()
    g1, g2 = a1.grad, a2.grad
    a1, a2 = a1.detach(), a2.detach()
    conv = 0.5 * ((a1 * g1).sum((2, 3)) ** 2).mean(0).sum() * 9  # 1×3×3 weights/channel
    lin = 0.5 * ((a2 * g2) ** 2).mean(0).sum() * 32  # 32 inputs per output
    net.zero_grad()
    got = zc.score(net, "fisher", data=(x, y))["fisher"]
    assert got == pytest.approx(float(conv + lin), rel=1e-5)


def test_jacob_cov_of_a_linear_net_in_closed_form():
    # y = W x + b: every sample's input Jacobian of Σ y is the column sums of W, so the
    # correlation matrix is all ones with eigenvalues (n, 0, ..., 0).
    net, _, _ = linear_classifier()
    n = 6
    want = -((math.log(n + K) + 1 / (n + K)) + (n - 1) * (math.log(K) + 1 / K))
    assert zc.score(net, "jacob_cov", data=batch(n=n))["jacob_cov"] == pytest.approx(want)


def test_epe_nas_per_class_correlations():
    # Linear: identical Jacobians, |corr| = 1 everywhere, s_c = m_c² log(1 + k); the class of
    # one sample counts log(1 + k) as in the reference.
    net, _, _ = linear_classifier()
    x, _ = batch(n=6)
    y = torch.tensor([0, 0, 0, 1, 2, 2])
    want = (9 + 1 + 4) * math.log(1 + K)
    assert zc.score(net, "epe_nas", data=(x, y))["epe_nas"] == pytest.approx(want)
    # A ReLU network, Jacobians taken one sample at a time.
    torch.manual_seed(1)
    mlp = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))
    x, y = batch(n=12, seed=7)
    jac = np.stack([torch.autograd.functional.jacobian(lambda v: mlp(v[None]).sum(), xi)
                    .numpy() for xi in x]).astype(np.float64)
    s = [np.log(np.abs(np.corrcoef(jac[y.numpy() == c])) + K).sum() for c in range(3)]
    assert zc.score(mlp, "epe_nas", data=(x, y))["epe_nas"] == pytest.approx(
        np.abs(s).sum(), rel=1e-6)


class ReLUWrap(nn.Sequential):
    """A composite block named like NAS-Bench-201's ReLUConvBN: only its inner ReLU counts."""


class DeadBranch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3, bias=False)
        with torch.no_grad():
            self.lin.weight.copy_(torch.eye(3))
        self.act = ReLUWrap(nn.ReLU())
        self.dead = nn.ReLU()
        self.head = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lin(x)
        self.dead(-h)  # a ReLU whose output never reaches the logits: NASWOT skips it
        return self.head(self.act(h))


def test_naswot_kernel_on_known_activation_patterns():
    x = torch.tensor([[1.0, -1, 1], [1, 1, -1], [-1, -1, -1], [1, 1, 1]])
    codes = (x.numpy() > 0).astype(float)
    k = codes @ codes.T + (1 - codes) @ (1 - codes).T  # agreements of each pair of codes
    assert k[0, 1] == 1 and k[2, 3] == 0 and k[0, 0] == 3
    got = zc.score(DeadBranch(), "nwot", data=(x, torch.tensor([0, 1, 0, 1])))["nwot"]
    assert got == pytest.approx(np.linalg.slogdet(k)[1], rel=1e-12)


@pytest.mark.parametrize("act, n", [(nn.ReLU, 9), (nn.LeakyReLU, 9), (nn.ReLU, 70)])
def test_swap_counts_distinct_sign_patterns_of_4d_relus(act, n):
    # The first activation sees the input itself, so its patterns do not depend on the
    # Gaussian weights; the one after Flatten has a 2-D input and does not count.
    net = nn.Sequential(act(), nn.Conv2d(1, 1, 1), nn.Flatten(), nn.ReLU(), nn.Linear(9, 3))
    g = torch.Generator().manual_seed(n)
    x = torch.randn(n, 1, 3, 3, generator=g)
    x[:, 0, 0, :2] = x[:, 0, 1, :2]  # two pixels with the same pattern as two others
    x[:, 0, 2, 2] = x[:, 0, 2, 1].clamp(min=0)  # the same "> 0" bits; zeros where it is < 0
    signs = np.sign(act()(x).numpy().reshape(n, -1))
    want = len(np.unique(signs.T, axis=0))
    assert want == (7 if act is nn.LeakyReLU else 6)
    got = zc.score(net, "swap", data=(x, torch.zeros(n, dtype=torch.long)),
                   repeats={"swap": 2})
    assert got["swap"] == want


@pytest.mark.parametrize("n", [1, 15, 16, 20, 21, 39, 40, 79])
@pytest.mark.parametrize("relu", [True, False])
def test_swap_pattern_count_at_every_packing_boundary(n, relu):
    # 15 samples per float32 product, 39 per int64 code, binary tables up to 20 samples;
    # maps in channels_last are read in memory order; repeated units must count once.
    g = torch.Generator().manual_seed(n)
    outs = []
    for shape in ((n, 3, 4, 4), (n, 5, 2, 2), (n, 7)):
        t = torch.randn(shape, generator=g).round()  # many zeros: ties with the sign
        t = t.relu() if relu else t
        t[:, 1] = t[:, 0]
        outs.append(t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t)
    signs = np.concatenate([np.sign(o.numpy()).reshape(n, -1) for o in outs], 1)
    want = len(np.unique(signs.T, axis=0))
    assert _distinct_patterns(outs, n, nonnegative=relu) == want
    assert _distinct_patterns(outs, n) == want


def test_zen_reproduced_by_hand():
    net = nn.Sequential(nn.Conv2d(1, 2, 1, bias=False), nn.BatchNorm2d(2),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3))
    with torch.no_grad():
        net[1].running_var.fill_(7.0)  # reset first: the reference scores fresh networks
    shape = (8, 1, 4, 4)
    x = torch.zeros(shape)  # zen draws Gaussian inputs of this shape; the pixels are unused
    # The documented draw order: conv weight, linear weight, then x and ε.
    g = torch.Generator().manual_seed(11)
    w = torch.empty(2, 1, 1, 1).normal_(generator=g).numpy()[:, 0, 0, 0]
    torch.empty(3, 2).normal_(generator=g)
    a = torch.randn(shape, generator=g).double().numpy()
    b = torch.randn(shape, generator=g).double().numpy()
    running = np.ones(2)

    def features(inp):
        nonlocal running
        c = inp[:, 0][:, None] * w[None, :, None, None]  # (N, 2, H, W)
        mean, var = c.mean((0, 2, 3)), c.var((0, 2, 3))
        m = c[:, 0].size
        running = 0.9 * running + 0.1 * var * m / (m - 1)
        return (c - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5)

    delta = np.abs(features(a) - features(a + 0.01 * b)).sum((1, 2, 3)).mean()
    want = math.log(delta) + math.log(math.sqrt(running.mean()))
    got = zc.score(net, "zen", data=(x, torch.zeros(8, dtype=torch.long)), seed=11)["zen"]
    assert got == pytest.approx(want, rel=1e-4)
    assert net[1].running_var.eq(7.0).all()


def test_zico_by_hand_on_two_batches_and_on_halves():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 4, bias=False), nn.ReLU(), nn.Linear(4, 3, bias=False))
    x, y = batch(n=8)
    grads = []
    for bx, by in ((x[:4], y[:4]), (x[4:], y[4:])):
        net.zero_grad()
        nn.functional.cross_entropy(net(bx), by).backward()
        grads.append([m.weight.grad.flatten().double().numpy().copy() for m in (net[0], net[2])])
    net.zero_grad()
    want = 0.0
    for i in range(2):
        g = np.stack([grads[0][i], grads[1][i]])
        nz = g.std(0) != 0
        want += math.log(np.sum(np.abs(g).mean(0)[nz] / g.std(0)[nz]))
    assert zc.score(net, "zico", data=(x, y))["zico"] == pytest.approx(want, rel=1e-6)
    two = [(x[:4], y[:4]), (x[4:], y[4:])]
    assert zc.score(net, "zico", data=two)["zico"] == pytest.approx(want, rel=1e-6)


def test_l2_norm_params_and_flops_are_exact():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3, bias=False))
    got = zc.score(net, ["l2_norm", "params", "flops"], data=batch())
    want = float(net[0].weight.detach().norm() + net[2].weight.detach().norm())
    assert got["l2_norm"] == pytest.approx(want)
    assert got["params"] == 5 * 4 + 4 + 4 * 3
    assert got["flops"] == 2 * (5 * 4 + 4 * 3)


# ------------------------------------------------------------------ invariants


def nb201_model(config: dict | None = None, seed: int = 0):
    space = spaces.get("nb201", C=4, N=1)
    torch.manual_seed(seed)
    model = space.build(config or space.sample(seed=seed), input_shape=(1, 8, 8),
                        num_classes=10)
    g = torch.Generator().manual_seed(5)
    return model, (torch.randn(16, 1, 8, 8, generator=g), torch.arange(16) % 10)


def test_model_unchanged_scores_deterministic_and_shared_passes_agree():
    model, xy = nb201_model()
    model.eval()
    for p in list(model.parameters())[:2]:
        p.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [p.requires_grad for p in model.parameters()]
    first = zc.score(model, ALL, data=xy, seed=3, repeats={"swap": 4})
    assert list(first) == ALL
    assert zc.score(model, ALL, data=xy, seed=3, repeats={"swap": 4}) == first
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN running stats included
    assert not any(m.training for m in model.modules())
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    assert not first.worst
    assert all(math.isfinite(v) and v > zc.REGISTRY[n].worst for n, v in first.items()), first
    for name in ALL:  # each proxy alone gives what the shared passes gave
        # in the same layout: with grasp asked for, the default one (see _use_channels_last)
        alone = zc.score(model, name, data=xy, seed=3, repeats={"swap": 4},
                         channels_last=False)[name]
        assert alone == pytest.approx(first[name], rel=1e-6), name


class StridedShortcut(nn.Module):
    """A strided 1×1 convolution from fewer than 8 channels (rewritten on channels_last
    copies, see ``train.avoid_strided_pointwise_convs``) next to NAS-Bench-201's pooling."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4),
                                  nn.ReLU())
        self.short = nn.Conv2d(4, 8, 1, stride=2, bias=False)
        self.pool = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        self.head = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(8, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.short(self.stem(x))))


@pytest.mark.parametrize("which", ["nb201", "strided"])
def test_channels_last_gives_the_default_layouts_scores_and_leaves_the_model(which):
    model, xy = nb201_model(seed=2)
    if which == "strided":
        torch.manual_seed(0)
        model = StridedShortcut()
    kw = {"data": xy, "seed": 1, "repeats": {"swap": 2}}
    cl = zc.score(model, ALL, channels_last=True, **kw)
    plain = zc.score(model, ALL, channels_last=False, **kw)
    # The CPU default for image batches: channels_last, unless grasp is asked for.
    assert zc.score(model, ALL, **kw) == plain
    no_grasp = [n for n in ALL if n != "grasp"]
    assert zc.score(model, no_grasp, **kw) == {n: cl[n] for n in no_grasp}
    for name in ALL:
        assert cl[name] == pytest.approx(plain[name], rel=1e-4, abs=1e-6), name
    assert cl.worst == plain.worst
    # the layout and the rewrite of strided 1×1 convolutions stay on the copy
    assert all(p.is_contiguous() for p in model.parameters())
    assert all(not m._forward_pre_hooks and not m._forward_hooks for m in model.modules())
    if which == "strided":
        assert model.short.stride == (2, 2)


@pytest.mark.parametrize("channels_last", [True, False])
def test_pooling_computed_as_convolution_gives_pytorchs_pooling_scores(channels_last,
                                                                       monkeypatch):
    # On the CPU the copy's AvgPool2d modules compute as depthwise convolutions
    # (train.avg_pools_as_convs): GraSP's double backward included, the scores are those of
    # PyTorch's own pooling.
    config = {"edge_1_0": "avg_pool_3x3", "edge_2_0": "nor_conv_3x3", "edge_2_1": "avg_pool_3x3",
              "edge_3_0": "skip_connect", "edge_3_1": "nor_conv_1x1",
              "edge_3_2": "avg_pool_3x3"}
    space = spaces.get("nb201", C=4, N=1)
    torch.manual_seed(2)
    # 16×16 maps: smaller ones keep PyTorch's pooling (train.MIN_POOL_PIXELS)
    model = space.build(config, input_shape=(1, 16, 16), num_classes=10)
    g = torch.Generator().manual_seed(5)
    xy = (torch.randn(16, 1, 16, 16, generator=g), torch.arange(16) % 10)
    kw = {"data": xy, "seed": 1, "repeats": {"swap": 2}, "channels_last": channels_last}
    calls = []
    apply = _WindowSum.apply
    monkeypatch.setattr(_WindowSum, "apply", lambda *a: calls.append(a) or apply(*a))
    fast = zc.score(model, ALL, **kw)
    assert calls  # the copy pooled by convolution
    assert all(type(m) is nn.AvgPool2d for m in model.modules()
               if isinstance(m, nn.AvgPool2d))  # the rewrite stays on the copy
    rewritten = []
    monkeypatch.setattr(_passes, "avg_pools_as_convs", lambda net: rewritten.append(net) or 0)
    plain = zc.score(model, ALL, **kw)
    assert rewritten  # the patched function was the one called
    for name in ALL:
        assert fast[name] == pytest.approx(plain[name], rel=1e-4, abs=1e-6), name
    assert fast.worst == plain.worst


def test_channels_last_needs_image_batches():
    net, *_ = linear_classifier()
    with pytest.raises(ValueError, match="channels_last: needs 4-D image batches"):
        zc.score(net, "snip", data=batch(), channels_last=True)
    assert zc.score(net, "snip", data=batch()) == zc.score(net, "snip", data=batch(),
                                                           channels_last=False)


class NoLayers(nn.Module):
    """A classifier without a Conv2d or Linear layer: the layer-wise proxies see nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(5, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w


def test_a_network_without_conv_or_linear_layers_scores_without_error():
    torch.manual_seed(0)
    got = zc.score(NoLayers(), ALL, data=batch(), repeats={"swap": 2})
    layerwise = {"grad_norm", "snip", "grasp", "fisher", "synflow", "zico", "plain"}
    assert layerwise <= got.worst
    assert all(got[n] == zc.REGISTRY[n].worst for n in layerwise)
    assert got["params"] == 15 and math.isfinite(got["jacob_cov"])


def test_a_disconnected_cell_gets_the_floor_without_error():
    space = spaces.get("nb201", C=4, N=1)
    model, xy = nb201_model({k: "none" for k in space.default()})
    got = zc.score(model, ALL, data=xy, repeats={"swap": 2})
    assert not any(math.isnan(v) for v in got.values())
    blind = {"grad_norm", "snip", "grasp", "fisher", "synflow", "jacob_cov", "nwot", "zen",
             "zico", "epe_nas", "plain"}
    assert got.worst == blind
    for name in blind:
        assert got[name] == zc.REGISTRY[name].worst, name
    assert got["swap"] == 1  # every sample has the same (all-zero) activation pattern
    assert got["params"] > 0 and got["l2_norm"] > 0


class IgnoresInput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(torch.ones(len(x), 5))


def test_an_output_that_ignores_the_input_gets_the_floor_despite_gradients():
    got = zc.score(IgnoresInput(), ["grad_norm", "snip", "fisher", "plain", "grasp",
                                    "jacob_cov", "l2_norm"], data=batch())
    assert got.worst == {"grad_norm", "snip", "fisher", "plain", "grasp", "jacob_cov"}
    assert got["l2_norm"] > 0


def test_unknown_names_and_vote_are_clear_errors():
    net, _, _ = linear_classifier()
    with pytest.raises(ValueError, match="unknown zero-cost proxy 'synflo'; known: grad_norm"):
        zc.score(net, "synflo", data=batch())
    with pytest.raises(ValueError, match="vote ranks a population"):
        zc.score(net, ["snip", "vote"], data=batch())
    with pytest.raises(ValueError, match="repeats: 'snip'"):
        zc.score(net, "snip", data=batch(), repeats={"snip": 3})


def test_vote_is_the_mean_rank_percentile():
    rows = [{"a": 1, "b": 3}, {"a": 2, "b": 2}, {"a": 3, "b": 1}, {"a": 4, "b": 4}]
    assert zc.vote(rows, ["a", "b"]) == pytest.approx([1 / 3, 1 / 3, 1 / 3, 1.0])
    assert zc.vote([{"a": 1}, {"a": 1}], ["a"]) == [0.5, 0.5]
    assert zc.vote(rows[:1], ["a"]) == [0.5]


def test_score_config_gives_each_proxy_its_reference_batch():
    space = spaces.get("nb201", C=4, N=1)
    config = space.sample(seed=2)
    got = zc.score_config(space, config, ["nwot", "snip", "synflow"], seed=4, data_seed=9)
    splits = data.load("digits")
    torch.manual_seed(4)
    model = space.build(config, input_shape=splits.input_shape, num_classes=10)
    b128 = zc.batches(splits, 128, 1, seed=9)[0]
    assert torch.equal(zc.batches(splits, 64, 1, seed=9)[0][0], b128[0][:64])
    assert got["nwot"] == zc.score(model, "nwot", data=b128)["nwot"]
    assert got["snip"] == pytest.approx(
        zc.score(model, "snip", data=(b128[0][:64], b128[1][:64]))["snip"])
    assert list(got) == ["nwot", "snip", "synflow"]


def test_score_config_scoring_its_own_network_in_place_changes_no_score():
    # The last batch-size group runs on the network score_config built, not on a copy.
    space = spaces.get("nb201", C=4, N=1)
    config = space.sample(seed=3)
    kw = {"seed": 2, "data_seed": 1, "repeats": {"swap": 2}}
    got = zc.score_config(space, config, ALL, **kw)
    splits = data.load("digits")
    torch.manual_seed(2)
    model = space.build(config, input_shape=splits.input_shape, num_classes=10)
    want = {}
    for size, names in ((64, ["grad_norm", "snip", "grasp", "fisher", "synflow", "jacob_cov",
                              "zen", "zico", "l2_norm", "plain", "params", "flops"]),
                        (128, ["nwot"]), (256, ["epe_nas"]), (16, ["swap"])):
        k = 2 if "zico" in names else 1
        want.update(zc.score(model, names, data=zc.batches(splits, size, k, seed=1), seed=2,
                             repeats={"swap": 2}))
    assert got == {n: want[n] for n in ALL}


@pytest.mark.parametrize("name", spaces.names())
def test_every_catalogue_space_can_be_scored(name):
    space = spaces.get(name, width_mult=0.25)
    model = space.build(space.sample(seed=0), input_shape=(1, 8, 8), num_classes=10)
    g = torch.Generator().manual_seed(0)
    got = zc.score(model, ["synflow", "nwot", "snip"],
                   data=(torch.randn(8, 1, 8, 8, generator=g), torch.arange(8) % 10))
    assert all(math.isfinite(v) for v in got.values())
    assert got.worst <= {"nwot"}  # nwot has nothing to count in a network without ReLUs
