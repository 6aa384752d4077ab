"""Task losses (mtl/training/losses.py): each against a hand computation, and what minimising
each one predicts: the mean for MSE, Poisson and Tweedie, the quantile for pinball."""

import math

import numpy as np
import pytest
import torch

from mtl.config import TaskConfig
from mtl.training.losses import TaskLosses, task_losses


def _task(loss="mse", **kw) -> TaskConfig:
    return TaskConfig(name="demand", label="demand", type="regression", loss=loss, **kw)


def test_each_loss_by_hand():
    tasks = [TaskConfig(name="click", label="click", type="binary"), _task("mse"), _task("poisson"),
             _task("tweedie", tweedie_power=1.5), _task("pinball", quantile=0.9)]
    losses = TaskLosses.for_tasks(tasks)
    out = torch.tensor([[0.0, 1.0, math.log(2.0), 0.0, 1.0], [0.0, 0.0, 0.0, 0.0, 4.0]])
    y = torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0], [0.0, 0.0, 0.0, 0.0, 3.0]])
    first = losses(out, y, torch.tensor([[True] * 5, [False] * 5]))
    expected = [math.log(2.0),  # BCE of logit 0
                4.0,  # (1 - 3)^2
                2.0 - 3.0 * math.log(2.0),  # mu - y log mu
                -2.0 / (1 - 1.5) + 1.0 / (2 - 1.5),  # mu = 1: -y mu^(1-p)/(1-p) + mu^(2-p)/(2-p)
                0.9 * 2.0]  # under-forecast by 2 at q = 0.9
    assert first.tolist() == pytest.approx(expected, rel=1e-6)
    both = losses(out, y, torch.ones(2, 5, dtype=torch.bool))
    assert both[4].item() == pytest.approx((1.8 + 0.1 * 1.0) / 2)  # over-forecast by 1 costs 1 - q
    assert losses(out, y, torch.zeros(2, 5, dtype=torch.bool)).tolist() == [0.0] * 5


def test_the_default_losses_are_the_ones_every_existing_task_had():
    out, y = torch.randn(8, 2), torch.rand(8, 2).round()
    mask = torch.rand(8, 2) > 0.3
    old = task_losses(out, y, mask, torch.tensor([True, False]))
    new = TaskLosses.for_tasks([TaskConfig(name="a", label="a", type="binary"), _task()])(out, y, mask)
    assert torch.equal(old, new)


@pytest.mark.parametrize("loss, kw", [
    ("mse", {}), ("poisson", {}), ("tweedie", {"tweedie_power": 1.2}),
    ("pinball", {"quantile": 0.9}), ("pinball", {"quantile": 0.75}), ("pinball", {"quantile": 0.3}),
])
def test_minimising_each_loss_predicts_what_it_should(loss, kw):
    """One constant fitted to intermittent, overdispersed counts (negative binomial, half zeros)."""
    y = np.random.default_rng(0).negative_binomial(0.5, 0.5 / (0.5 + 1.5), 4_000).astype(np.float32)
    task = _task(loss, **kw)
    losses = TaskLosses.for_tasks([task])
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([param], lr=0.03)
    labels, mask = torch.from_numpy(y)[:, None], torch.ones(len(y), 1, dtype=torch.bool)
    for _ in range(600):
        opt.zero_grad()
        losses(param.expand(len(y), 1), labels, mask).sum().backward()
        opt.step()
    pred = math.exp(param.item()) if task.log_link else param.item()
    if task.quantile is None:
        assert pred == pytest.approx(float(y.mean()), abs=0.05)
    else:  # a q-quantile of counts: at most q of them below it, at least q at or below it
        q = task.quantile
        assert np.mean(y < pred - 0.02) <= q + 0.01 and np.mean(y <= pred + 0.02) >= q - 0.01, (pred, q)


def test_loss_settings_are_checked_and_saved_only_when_set():
    with pytest.raises(ValueError, match="is for regression tasks"):
        TaskConfig(name="a", label="a", type="binary", loss="poisson")
    with pytest.raises(ValueError, match="pinball needs a quantile"):
        _task("pinball")
    with pytest.raises(ValueError, match="a quantile needs loss pinball"):
        _task("mse", quantile=0.5)
    # a transform saved before these keys existed reads, and hashes, the same
    assert set(_task().saved()) == {"name", "label", "type", "condition", "implies", "weight"}
    assert _task("pinball", quantile=0.9).saved()["quantile"] == 0.9
