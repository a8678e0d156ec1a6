"""The training step, eager and as a CUDA graph (``nas_hpo.training.TrainStep``).

The CUDA-graph tests need a CUDA device and are skipped elsewhere (CI has none: they run on a
GPU machine through benchmarks/gpu_checks.sh)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nas_hpo import objectives, spaces
from nas_hpo.objectives import Context
from nas_hpo.training import (
    GRAPH_WARMUP,
    OPTIMIZERS,
    SCHEDULES,
    GraphedEvaluation,
    TrainStep,
    evaluate,
)

cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                          reason="no CUDA device here: the CUDA-graph step runs on a GPU only")


class _Options:
    lr = 0.1
    momentum = 0.9
    weight_decay = 5e-4


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))


def _run(device: torch.device, *, graph: bool, optimizer: str = "sgd", schedule: str = "cosine",
         autocast: torch.dtype | None = None, n: int = 100, batch: int = 16,
         epochs: int = 3) -> tuple[nn.Module, list[float], TrainStep]:
    """Train ``_net`` on fixed random data; returns the model, the epochs' summed losses and
    the step."""
    torch.manual_seed(0)
    x = torch.randn(n, 3, 8, 8, device=device)
    y = torch.randint(0, 5, (n,), device=device)
    model = _net().to(device)
    opt = OPTIMIZERS[optimizer](model.parameters(), _Options, device.type == "cuda",
                                capturable=graph)
    steps = -(-n // batch) * epochs
    sched = SCHEDULES[schedule](opt, _Options, steps)
    step = TrainStep(model, opt, nn.CrossEntropyLoss(label_smoothing=0.1), device=device,
                     autocast=autocast, batch_size=batch, graph=graph)
    sums = []
    for _ in range(epochs):
        step.reset()
        model.train()
        for i in range(0, n, batch):
            step(x[i:i + batch], y[i:i + batch])
            sched.step()
        sums.append(step.loss_sum.item())
    return model, sums, step


def test_the_eager_step_is_the_plain_training_loop():
    """On the CPU: the same parameters and loss sums as forward / backward / step by hand."""
    model, sums, step = _run(torch.device("cpu"), graph=False)
    torch.manual_seed(0)
    x, y = torch.randn(100, 3, 8, 8), torch.randint(0, 5, (100,))
    ref = _net()
    opt = OPTIMIZERS["sgd"](ref.parameters(), _Options, False)
    sched = SCHEDULES["cosine"](opt, _Options, 7 * 3)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    ref_sums = []
    for _ in range(3):
        total = 0.0
        for i in range(0, 100, 16):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(ref(x[i:i + 16]), y[i:i + 16])
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        ref_sums.append(total)
    assert not step.captured
    assert sums == pytest.approx(ref_sums, rel=1e-5)
    for p, q in zip(model.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_a_graph_needs_a_cuda_device():
    with pytest.raises(ValueError, match="a CUDA graph needs a CUDA device, not cpu"):
        _run(torch.device("cpu"), graph=True)


def test_a_step_the_capture_cannot_take_trains_eagerly_and_says_why(monkeypatch):
    """The fallback path, driven on the CPU: the capture is made to fail as a CUDA capture
    fails on a host synchronization; the run goes on eagerly and ends as the eager run."""
    cpu = torch.device("cpu")
    reference, ref_sums, _ = _run(cpu, graph=False)

    def refuse(self, xb, yb):
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing\n...")

    monkeypatch.setattr(TrainStep, "_capture", refuse)
    real_init = TrainStep.__init__

    def as_if_graph(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        # warmed up: the next full batch captures
        self.graph, self._warm = True, {self.batch_size: GRAPH_WARMUP}

    monkeypatch.setattr(TrainStep, "__init__", as_if_graph)
    model, sums, step = _run(cpu, graph=False)
    assert not step.captured and not step.graph
    assert step.fallback == "CUDA error: operation not permitted when stream is capturing"
    assert sums == pytest.approx(ref_sums, rel=1e-6)
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_the_evaluation_without_a_graph_is_evaluate():
    torch.manual_seed(0)
    model = _net()
    x, y = torch.randn(50, 3, 8, 8), torch.randint(0, 5, (50,))
    evaluation = GraphedEvaluation(model, x, y, autocast=None, batch_size=16)
    for _ in range(2):
        assert evaluation() == pytest.approx(evaluate(model, x, y, batch_size=16), rel=1e-6)
        with torch.no_grad():
            model[0].weight.mul_(-1.5)  # a trained step: the next evaluation sees it
    assert not evaluation.captured and evaluation.fallback is None
    with pytest.raises(ValueError, match="a CUDA graph needs a CUDA device, not cpu"):
        GraphedEvaluation(model, x, y, autocast=None, graph=True)


def test_train_records_whether_the_step_was_a_graph_and_the_option_is_declared():
    result = objectives.get("train", epochs=1, data_fraction=0.3)(
        spaces.get("chain").sample(seed=0), space=spaces.get("chain"), ctx=Context(seed=0))
    assert result.user_attrs["cuda_graph"] is False  # the CPU: always eager
    assert objectives.get("train", cuda_graph=False).cuda_graph is False


@pytest.fixture
def deterministic():
    before = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    yield
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before


@cuda
@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
@pytest.mark.parametrize("autocast", [None, torch.bfloat16])
def test_the_graph_trains_as_the_eager_step(deterministic, optimizer, autocast):
    """Same parameters and loss sums within float tolerance, the schedule applied between
    replays, the last partial batch of each epoch (100 = 6 × 16 + 4): eager in the first epoch,
    then its own graph."""
    dev = torch.device("cuda")
    eager, eager_sums, _ = _run(dev, graph=False, optimizer=optimizer, autocast=autocast)
    graphed, graph_sums, step = _run(dev, graph=True, optimizer=optimizer, autocast=autocast)
    assert step.fallback is None
    assert step.captured
    assert step.graphed_sizes == [16, 4]  # the partial batch, a graph from the 2nd epoch on
    tol = 1e-4 if autocast is None else 2e-2
    assert graph_sums == pytest.approx(eager_sums, rel=tol)
    for p, q in zip(graphed.parameters(), eager.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=tol, atol=tol)
    for p, q in zip(graphed.buffers(), eager.buffers(), strict=True):
        torch.testing.assert_close(p, q, rtol=tol, atol=tol)  # BN statistics and counts


@cuda
def test_the_schedule_reaches_the_replayed_step(deterministic):
    """A graph that froze the learning rate it was captured with would train as ``constant``."""
    dev = torch.device("cuda")
    cosine, _, _ = _run(dev, graph=True, epochs=2)
    constant, _, _ = _run(dev, graph=True, schedule="constant", epochs=2)
    eager_cosine, _, _ = _run(dev, graph=False, epochs=2)
    w = [p for p in cosine.parameters()][0]
    torch.testing.assert_close(w, next(eager_cosine.parameters()), rtol=1e-4, atol=1e-4)
    assert (w - next(constant.parameters())).abs().max() > 1e-3


@cuda
def test_the_capture_waits_for_the_warmup_steps():
    dev = torch.device("cuda")
    # 3 full batches: all of them warm-up, nothing captured yet
    _, _, step = _run(dev, graph=True, n=16 * GRAPH_WARMUP, epochs=1)
    assert not step.captured
    _, _, step = _run(dev, graph=True, n=16 * (GRAPH_WARMUP + 1), epochs=1)
    assert step.captured


@cuda
def test_train_on_cuda_captures_by_default_and_matches_eager(deterministic):
    space = spaces.get("nb201")
    config = space.sample(seed=3)
    common = dict(epochs=2, data_fraction=0.5, device="cuda", precision="fp32", augment="none")
    graphed = objectives.get("train", **common)(config, space=space, ctx=Context(seed=0))
    eager = objectives.get("train", cuda_graph=False, **common)(config, space=space,
                                                                 ctx=Context(seed=0))
    assert graphed.user_attrs["cuda_graph"] is True
    assert "cuda_graph_fallback" not in graphed.user_attrs
    assert eager.user_attrs["cuda_graph"] is False
    assert graphed.user_attrs["train_loss_curve"] == pytest.approx(
        eager.user_attrs["train_loss_curve"], rel=1e-3)
    assert graphed.values[0] == pytest.approx(eager.values[0], abs=0.02)
    # the second epoch's validation pass is a replay
    assert graphed.user_attrs["val_loss_curve"] == pytest.approx(
        eager.user_attrs["val_loss_curve"], rel=2e-2)
    onecycle = objectives.get("train", schedule="onecycle", **common)(config, space=space,
                                                                       ctx=Context(seed=0))
    assert onecycle.user_attrs["cuda_graph"] is False  # it cycles the momentum


@cuda
@pytest.mark.parametrize("autocast", [None, torch.bfloat16])
def test_the_graphed_evaluation_is_evaluate_and_sees_the_new_weights(deterministic, autocast):
    """Eager first, then captured, then replayed: each time what ``evaluate`` gives for the
    weights and BN statistics the model has then (changed in place between calls, as the
    training step changes them); 1,000 images in chunks of 256 (a partial last chunk)."""
    dev = torch.device("cuda")
    torch.manual_seed(0)
    model = _net().to(dev)
    x, y = torch.randn(1000, 3, 8, 8, device=dev), torch.randint(0, 5, (1000,), device=dev)
    evaluation = GraphedEvaluation(model, x, y, autocast=autocast, batch_size=256, graph=True)
    seen = []
    for call in range(4):
        acc, loss = evaluation()
        ref_acc, ref_loss = evaluate(model, x, y, batch_size=256, autocast=autocast)
        assert evaluation.captured == (call >= 1)
        assert acc == pytest.approx(ref_acc, abs=2e-3)
        assert loss == pytest.approx(ref_loss, rel=1e-4 if autocast is None else 1e-2)
        seen.append(loss)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.3)
            model[1].running_mean.add_(0.5)
    assert len(set(seen)) == 4  # the replays did not return one frozen value
    assert evaluation.fallback is None
