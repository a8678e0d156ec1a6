"""Zero-cost proxies against values computed independently here, their invariants, and the
``zero_cost`` objective in a study."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import nas_hpo
from nas_hpo import spaces
from nas_hpo.objectives import zero_cost as zc

ALL = [n for n in zc.PROXIES if n != "vote"]


def two_layer(seed: int = 0, d: int = 5, h: int = 4, c: int = 3) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, h, bias=False), nn.ReLU(), nn.Linear(h, c, bias=False))


def batch(n: int = 8, d: int = 5, c: int = 3, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.arange(n) % c


def test_synflow_of_a_two_layer_linear_net_in_closed_form():
    # Without the ReLU: R = 1ᵀ|W2||W1|1, and each layer's Σ|W ⊙ ∂R/∂W| equals R.
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 4, bias=False), nn.Linear(4, 3, bias=False))
    w1 = net[0].weight.detach().abs().double().numpy()
    w2 = net[1].weight.detach().abs().double().numpy()
    r = np.ones(3) @ w2 @ w1 @ np.ones(5)
    got = zc.score(net, "synflow", data=batch())["synflow"]
    assert got == pytest.approx(math.log(2 * r), rel=1e-12)


def test_snip_grad_norm_plain_of_a_linear_classifier_by_hand():
    torch.manual_seed(0)
    net = nn.Linear(5, 3, bias=False)
    x, y = batch()
    w = net.weight.detach().double().numpy()
    xs = x.double().numpy()
    logits = xs @ w.T
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    onehot = np.eye(3)[y.numpy()]
    grad = (p - onehot).T @ xs / len(xs)  # ∂ mean CE / ∂W
    got = zc.score(net, ["snip", "grad_norm", "plain"], data=(x, y))
    assert got["snip"] == pytest.approx(np.abs(w * grad).sum(), rel=1e-5)
    assert got["grad_norm"] == pytest.approx(np.linalg.norm(grad), rel=1e-5)
    assert got["plain"] == pytest.approx((w * grad).sum(), rel=1e-4, abs=1e-7)


def test_naswot_kernel_on_known_activation_patterns():
    # An identity layer before the ReLU: the codes are the signs of the inputs themselves.
    net = nn.Sequential(nn.Linear(3, 3, bias=False), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(3))
    x = torch.tensor([[1.0, -1, 1], [1, 1, -1], [-1, -1, -1], [1, 1, 1]])
    codes = (x.numpy() > 0).astype(float)
    k = codes @ codes.T + (1 - codes) @ (1 - codes).T  # agreements of each pair of codes
    assert k[0, 1] == 1 and k[2, 3] == 0 and k[0, 0] == 3
    got = zc.score(net, "nwot", data=(x, torch.tensor([0, 1, 0, 1])))["nwot"]
    assert got == pytest.approx(np.linalg.slogdet(k)[1], rel=1e-9)
    # swap: distinct per-neuron sign vectors over the 4 samples (3 neurons, all different).
    assert zc.score(net, "swap", data=(x, torch.zeros(4, dtype=torch.long)))["swap"] == 3


def test_jacob_cov_of_a_linear_net_in_closed_form():
    # y = Σ W x: every sample's input Jacobian is the column sums of W, so the correlation
    # matrix is all ones with eigenvalues (n, 0, ..., 0).
    torch.manual_seed(0)
    net = nn.Linear(5, 3, bias=False)
    n, k = 6, 1e-5
    x, y = batch(n=n)
    want = -((math.log(n + k) + 1 / (n + k)) + (n - 1) * (math.log(k) + 1 / k))
    assert zc.score(net, "jacob_cov", data=(x, y))["jacob_cov"] == pytest.approx(want, rel=1e-6)


def test_params_and_flops_are_exact():
    net = two_layer()
    got = zc.score(net, ["params", "flops"], data=batch())
    assert got == {"params": 5 * 4 + 4 * 3, "flops": 2 * (5 * 4 + 4 * 3)}


def test_l2_norm_and_zico_by_hand():
    net = two_layer()
    want = sum(float(m.weight.detach().norm()) for m in net if isinstance(m, nn.Linear))
    assert zc.score(net, "l2_norm", data=batch())["l2_norm"] == pytest.approx(want)
    x, y = batch(n=8)
    grads = []
    for bx, by in ((x[:4], y[:4]), (x[4:], y[4:])):
        net.zero_grad()
        nn.functional.cross_entropy(net(bx), by).backward()
        grads.append([m.weight.grad.flatten().numpy().copy() for m in (net[0], net[2])])
    want = 0.0
    for i in range(2):
        g = np.stack([grads[0][i], grads[1][i]])
        nz = g.std(0) != 0
        want += math.log(np.sum(np.abs(g).mean(0)[nz] / g.std(0)[nz]))
    assert zc.score(net, "zico", data=(x, y))["zico"] == pytest.approx(want, rel=1e-5)


def _nb201_model(arch: dict | None = None, seed: int = 0) -> tuple[nn.Module, tuple]:
    space = spaces.get("nb201", C=4, N=1)
    config = arch or space.sample(seed=seed)
    torch.manual_seed(seed)
    model = space.build(config, input_shape=(1, 8, 8), num_classes=10)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(16, 1, 8, 8, generator=g)
    y = torch.arange(16) % 10
    return model, (x, y)


def test_input_model_unchanged_scores_deterministic_and_finite():
    model, data = _nb201_model()
    model.eval()
    for p in list(model.parameters())[:2]:
        p.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [p.requires_grad for p in model.parameters()]
    first = zc.score(model, ALL, data=data, seed=3)
    assert zc.score(model, ALL, data=data, seed=3) == first
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN running stats included
    assert not model.training and [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    assert all(math.isfinite(v) and v > zc.WORST for v in first.values()), first
    # Shared passes give what each proxy gives alone.
    for name in ALL:
        assert zc.score(model, name, data=data, seed=3)[name] == pytest.approx(first[name])


def test_a_disconnected_cell_gets_the_worst_score_without_error():
    space = spaces.get("nb201", C=4, N=1)
    model, data = _nb201_model({k: "none" for k in space.default()})
    got = zc.score(model, ALL, data=data)
    assert not any(math.isnan(v) for v in got.values())
    for name in ("synflow", "jacob_cov", "nwot", "zen", "epe_nas"):
        assert got[name] == zc.WORST, name


def test_unknown_and_population_names_are_clear_errors():
    with pytest.raises(ValueError, match="unknown proxy 'synflo'; known: grad_norm"):
        zc.score(two_layer(), "synflo", data=batch())
    with pytest.raises(ValueError, match="vote ranks a population"):
        zc.score(two_layer(), "vote", data=batch())
    rows = [{"a": 1, "b": 3}, {"a": 2, "b": 2}, {"a": 3, "b": 1}, {"a": 4, "b": 4}]
    assert zc.vote(rows, ["a", "b"]) == pytest.approx([1 / 3, 1 / 3, 1 / 3, 1.0])


@pytest.mark.parametrize("name", spaces.names())
def test_every_catalogue_space_can_be_scored(name):
    space = spaces.get(name)
    model = space.build(space.sample(seed=0), input_shape=(1, 8, 8), num_classes=10)
    x, y = torch.randn(8, 1, 8, 8), torch.arange(8) % 10
    got = zc.score(model, ["synflow", "nwot", "snip"], data=(x, y))
    assert all(math.isfinite(v) for v in got.values())


def test_zero_cost_objective_in_a_study_with_vote():
    study = nas_hpo.run({"space": {"name": "nb201", "C": 4, "N": 1},
                         "objective": {"name": "zero_cost", "proxy": ["synflow", "vote"]},
                         "study": {"cost": ["params"]}},
                        strategy="random", n_trials=4, storage=":memory:")
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4
    t = study.trials[-1]
    assert t.values[0] == t.user_attrs["zc_synflow"]
    assert {"zc_vote", "zc_nwot", "zc_jacob_cov", "zc_snip", "zc_time_s"} <= set(t.user_attrs)
    assert study.trials[0].values[1] == 1.0 and 0 <= t.values[1] <= 1
    with pytest.raises(nas_hpo.SpecError, match="unknown proxy 'zenn'"):
        nas_hpo.run({"space": {"name": "nb201"}, "objective": {"name": "zero_cost",
                                                            "proxy": "zenn"}}, n_trials=1)
