"""Loss balancing: every registered method trains a tiny MMoE; each method's math on its own."""

import math

import numpy as np
import pytest
import torch

from mtl.config import ConfigError, ModelConfig, TaskConfig, WeightingConfig, parse_config
from mtl.models import ARCHITECTURES, get_architecture
from mtl.models.layers import InputSpec
from mtl.models.mmoe import MMoE
from mtl.training import loop
from mtl.training.losses import task_losses
from mtl.training.weighting import WEIGHTINGS, get_weighting
from mtl.training.weighting.base import RepGradWeighting, gradient_conflict
from mtl.training.weighting.cagrad import cagrad, simplex_minimise
from mtl.training.weighting.dwa import dwa_weights
from mtl.training.weighting.gradnorm import gradnorm_loss
from mtl.training.weighting.pcgrad import pcgrad
from tests.model.test_model import TASKS, config, synthetic_arrays

SPEC = InputSpec(cardinalities=(50, 20, 5), n_numeric=2, tasks=("ctr", "cvr", "dwell"),
                 task_types=("binary", "binary", "regression"))
IS_BINARY = torch.tensor([True, True, False])


@pytest.fixture(scope="module")
def data():
    return synthetic_arrays(1500, 0), synthetic_arrays(300, 1)


def tiny_mmoe() -> MMoE:
    torch.manual_seed(0)
    return MMoE(SPEC, ModelConfig(experts=3, expert_hidden=(16, 8), tower_hidden=(8,), embedding_dim=4))


def batch(n: int = 64, drop_task: int | None = None):
    a = synthetic_arrays(n, 2)
    cat, num, labels, mask = (torch.from_numpy(np.array(x)) for x in (a.cat, a.num, a.labels, a.mask))
    if drop_task is not None:
        mask[:, drop_task] = False
    return cat, num, labels, mask


def forward(model, cat, num, labels, mask):
    shared = model.represent(cat, num)
    out = model.decode(shared)
    return shared, task_losses(out, labels, mask, IS_BINARY)


# --- every method, through the real training loop --------------------------------------------

@pytest.mark.parametrize("method", sorted(WEIGHTINGS))
def test_every_method_trains_and_logs(method, data):
    train, val = data
    cfg = config(epochs=3, patience=3, num_threads=1, weighting={"method": method})
    result = loop.train(train, val, SPEC, TASKS, cfg)
    first, last = result.history[0], result.history[-1]
    total = [sum(h[f"train_loss_{t.name}"] for t in TASKS) for h in (first, last)]
    assert all(math.isfinite(v) for v in total) and total[1] < total[0]
    for t in TASKS:
        assert math.isfinite(last[f"weight_{t.name}"]) and last[f"weight_{t.name}"] > 0
    assert last["weighting_ms_per_step"] > 0
    assert -1 <= last["grad_cosine_ctr_cvr"] <= 1 and "grad_cosine_mean" in last


@pytest.mark.parametrize("method", sorted(WEIGHTINGS))
def test_task_without_rows_gives_no_nan(method):
    model = tiny_mmoe()
    weighting = get_weighting(method)(TASKS, WeightingConfig(method=method), model, torch.device("cpu"))
    optimizer = torch.optim.Adam([*model.parameters(), *weighting.parameters()], lr=0.01)
    cat, num, labels, mask = batch(drop_task=2)
    for _ in range(3):
        shared, losses = forward(model, cat, num, labels, mask)
        assert losses[2] == 0
        optimizer.zero_grad()
        stats = weighting.backward(losses, shared, model, None, mask.any(0))
        optimizer.step()
        weighting.after_step(lambda: forward(model, cat, num, labels, mask)[1].detach())
        assert torch.isfinite(stats["weights"]).all()
        assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
        assert all(torch.isfinite(p).all() for p in [*model.parameters(), *weighting.parameters()])
    weighting.epoch_end(losses.detach())  # a zero epoch loss too
    weighting.epoch_end(losses.detach())


# --- gradients on the shared representation --------------------------------------------------

class _Sum(RepGradWeighting):
    def combine(self, grads, present):
        return grads.sum(0), {}


@pytest.mark.parametrize("with_extra", [False, True])
def test_rep_gradient_reaches_every_parameter_exactly_once(with_extra):
    """Combining by plain sum must reproduce the ordinary backward pass, parameter by parameter."""
    cat, num, labels, mask = batch()
    grads = []
    for use_hook in (False, True):
        model = tiny_mmoe()
        shared, losses = forward(model, cat, num, labels, mask)
        extra = shared.rep.pow(2).mean() if with_extra else None
        if use_hook:
            _Sum(TASKS, WeightingConfig(), model, "cpu").backward(losses, shared, model, extra)
        else:
            (losses.sum() + (extra if with_extra else 0)).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for plain, hooked in zip(*grads):
        assert torch.allclose(plain, hooked, atol=1e-6)


def test_gradient_conflict_cosines():
    model = tiny_mmoe()
    cat, num, labels, mask = batch(drop_task=2)
    shared, losses = forward(model, cat, num, labels, mask)
    same = torch.stack([losses[0], losses[0], losses[2]])
    cos = gradient_conflict(same, shared)
    assert cos[(0, 1)] == pytest.approx(1.0, abs=1e-5)
    assert cos[(0, 2)] is None and cos[(1, 2)] is None


# --- each method's math ----------------------------------------------------------------------

def naive_pcgrad(grads, order):
    projected = []
    for i, g in enumerate(grads):
        g = g.clone()
        for j in order[i]:
            if j != i and g @ grads[j] < 0:
                g -= (g @ grads[j]) / (grads[j] @ grads[j]) * grads[j]
        projected.append(g)
    return torch.stack(projected).sum(0)


def test_pcgrad_removes_the_conflicting_component():
    g1, g2 = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    combined, projected = pcgrad(torch.stack([g1, g2]), np.random.default_rng(0))
    assert combined @ g1 >= 0 and combined @ g2 >= 0 and projected == 1.0
    # no conflict: the plain sum
    agree = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    assert torch.allclose(pcgrad(agree, np.random.default_rng(0))[0], agree.sum(0))


def test_pcgrad_on_the_gram_matrix_matches_the_vector_algorithm():
    grads = torch.randn(4, 50, generator=torch.Generator().manual_seed(3)).double()
    rng = np.random.default_rng(7)
    orders = [list(rng.permutation(4)) for _ in range(4)]
    combined, _ = pcgrad(grads, np.random.default_rng(7))
    assert torch.allclose(combined, naive_pcgrad(grads, orders), atol=1e-9)


def test_cagrad_with_c_zero_is_the_mean_gradient():
    grads = torch.randn(3, 20, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(cagrad(grads, 0.0), grads.mean(0))


def test_cagrad_improves_the_worst_task_within_its_ball():
    grads = torch.tensor([[1.0, 0.1], [-0.8, 0.3], [0.2, 1.0]], dtype=torch.float64)
    c = 0.4
    g0 = grads.mean(0)
    d = cagrad(grads, c) * (1 + c**2)  # undo the authors' rescaling
    assert (d - g0).norm() <= c * g0.norm() + 1e-6
    assert (grads @ d).min() > (grads @ g0).min()


@pytest.mark.parametrize("opposed", [False, True])
def test_cagrad_dual_solver_matches_scipy(opposed):
    optimize = pytest.importorskip("scipy.optimize")
    g = torch.randn(4, 30, generator=torch.Generator().manual_seed(5)).double()
    if opposed:  # the hard case: an optimum where the mixed gradient nearly vanishes
        g[1] = -0.5 * g[0] + 0.01 * g[1]
    gram = (g @ g.T).numpy()
    a = gram / gram.mean()
    c = 0.4

    def f(w):
        return w @ a.mean(1) + c * np.sqrt(w @ a @ w + 1e-12)

    ref = optimize.minimize(f, np.full(4, 0.25), bounds=[(0, 1)] * 4,
                            constraints={"type": "eq", "fun": lambda w: 1 - w.sum()}, method="SLSQP")
    w = simplex_minimise(a, c)
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0)
    assert f(w) <= ref.fun + 1e-6


def test_gradnorm_weights_sum_to_n_tasks_and_follow_the_norms():
    model = tiny_mmoe()
    cfg = WeightingConfig(method="gradnorm", gradnorm_alpha=1.5)
    weighting = get_weighting("gradnorm")(TASKS, cfg, model, "cpu")
    optimizer = torch.optim.Adam([*model.parameters(), *weighting.parameters()], lr=0.05)
    cat, num, labels, mask = batch(256)
    for _ in range(5):
        shared, losses = forward(model, cat, num, labels, mask)
        optimizer.zero_grad()
        stats = weighting.backward(losses, shared, model)
        optimizer.step()
        assert stats["weights"].sum().item() == pytest.approx(3.0)
        assert (stats["weights"] > 0).all()
    # Equal training rates: the task with the larger gradient norm has its weight pushed down.
    w = torch.ones(2, requires_grad=True)
    loss = gradnorm_loss(w, torch.tensor([2.0, 1.0]), torch.ones(2), torch.ones(2), torch.tensor([True, True]), 1.5)
    grad = torch.autograd.grad(loss, w)[0]
    assert grad[0] > 0 > grad[1]


def test_dwa_weights():
    losses = torch.tensor([1.0, 0.5, 2.0])
    assert torch.allclose(dwa_weights(losses, losses * 0.8, 2.0), torch.ones(3))
    w = dwa_weights(torch.tensor([1.0, 1.0, 0.0]), torch.tensor([0.9, 0.5, 0.0]), 2.0)
    assert w.sum() == pytest.approx(3.0) and w[0] > w[1] and torch.isfinite(w).all()


def test_uncertainty_weights_are_learnt_to_the_closed_form():
    model = tiny_mmoe()
    weighting = get_weighting("uncertainty")(TASKS, WeightingConfig(method="uncertainty"), model, "cpu")
    (log_var,) = weighting.parameters()
    assert log_var.requires_grad and log_var.is_leaf
    optimizer = torch.optim.Adam(weighting.parameters(), lr=0.05)
    losses = torch.tensor([0.5, 0.1, 2.0])
    for _ in range(600):
        optimizer.zero_grad()
        total, weights = weighting.objective(losses, torch.ones(3, dtype=torch.bool))
        total.backward()
        optimizer.step()
    # The minimum of k exp(-s) L + s/2 is at s = log(2kL): the weight k exp(-s) becomes 1 / (2L).
    assert torch.allclose(weights, 1 / (2 * losses), rtol=1e-2)


def test_uncertainty_weights_are_stepped_by_the_trainers_optimizer(data):
    train, val = data
    result = loop.train(train, val, SPEC, TASKS, config(epochs=1, num_threads=1, weighting={"method": "uncertainty"}))
    # Starting from log-variance 0 (weights 1, 1, 0.5), the weights only move if they are optimised.
    record = result.history[-1]
    assert record["weight_ctr"] != pytest.approx(1.0, abs=1e-4)
    assert record["weight_dwell"] != pytest.approx(0.5, abs=1e-4)


def test_config_names_the_weighting_key():
    with pytest.raises(ConfigError, match="train.weighting.method"):
        config(weighting={"method": "nope"})
    with pytest.raises(ConfigError, match=r"tasks\[0\].weight"):
        parse_config({
            "data": {"schema": {"categorical": ["u"], "labels": ["c"]}},
            "tasks": [{"name": "ctr", "label": "c", "type": "binary", "weight": 2.0}],
            "train": {"weighting": {"method": "pcgrad"}},
        })


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_method_steps_every_architecture(arch):
    """One step of each method on each architecture (funnel tasks, scenario gates, extra losses)."""
    from tests.model.test_architectures import CFG, SPEC as FUNNEL_SPEC, funnel_data

    tasks = [TaskConfig(name=n, label=n, type=t) for n, t in zip(FUNNEL_SPEC.tasks, FUNNEL_SPEC.task_types)]
    cat, num, labels, mask = (x[:128] for x in funnel_data(128))
    is_binary = torch.tensor([t == "binary" for t in FUNNEL_SPEC.task_types])
    for method in sorted(WEIGHTINGS):
        torch.manual_seed(0)
        model = get_architecture(arch)(FUNNEL_SPEC, CFG)
        weighting = get_weighting(method)(tasks, WeightingConfig(method=method), model, "cpu")
        shared = model.represent(cat, num)
        out = model.decode(shared)
        losses = task_losses(out, labels, mask, is_binary)
        weighting.backward(losses, shared, model, model.extra_loss(out, labels, mask), mask.any(0))
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads), method
        assert model.last_shared_layer().grad is not None, method
