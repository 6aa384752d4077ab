"""The optimizers: the embedding table's lazy Adam, several optimizers as one, the schedule."""

import pytest
import torch

from mtl.training.optim import LazyAdam, Optimizers, Schedule


def test_lazy_adam_equals_adam_on_rows_seen_every_step_and_leaves_other_rows_alone():
    torch.manual_seed(0)
    start = torch.randn(6, 4)
    lazy, dense = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start[:3].clone())
    opt_lazy, opt_dense = LazyAdam([lazy], lr=0.01), torch.optim.Adam([dense], lr=0.01)
    for _ in range(20):
        g = torch.randn(3, 4)
        lazy.grad = torch.cat([g, torch.zeros(3, 4)])  # rows 3-5 never looked up
        dense.grad = g.clone()
        opt_lazy.step()
        opt_dense.step()
    assert torch.allclose(lazy[:3], dense, atol=1e-6)
    assert torch.equal(lazy[3:], start[3:])


def test_a_row_seen_once_moves_by_one_learning_rate_not_by_its_momentum_for_many_steps():
    table = torch.nn.Parameter(torch.zeros(2, 3))
    lazy = LazyAdam([table], lr=0.01)
    dense_table = torch.nn.Parameter(torch.zeros(2, 3))
    dense = torch.optim.Adam([dense_table], lr=0.01)
    for step in range(30):
        grad = torch.zeros(2, 3)
        grad[0] = 1.0  # row 0 in every batch
        if step == 0:
            grad[1] = 1.0  # row 1 only in the first
        table.grad, dense_table.grad = grad.clone(), grad.clone()
        lazy.step()
        dense.step()
    assert table[1].abs().max().item() == pytest.approx(0.01, rel=1e-3)
    assert dense_table[1].abs().max().item() > 5 * 0.01  # dense Adam keeps moving it on momentum


def test_optimizers_step_together_and_their_state_round_trips():
    a, b = torch.nn.Parameter(torch.ones(2, 2)), torch.nn.Parameter(torch.ones(3, 2))
    both = Optimizers(torch.optim.Adam([a], lr=0.1), LazyAdam([b], lr=0.1))
    a.grad, b.grad = torch.ones(2, 2), torch.ones(3, 2)
    both.step()
    assert (a < 1).all() and (b < 1).all() and len(both.param_groups) == 2
    again = Optimizers(torch.optim.Adam([a], lr=0.1), LazyAdam([b], lr=0.1))
    again.load_state_dict(both.state_dict())
    assert torch.equal(again.optimizers[1].state[b]["row_steps"], torch.ones(3))
    both.zero_grad()
    assert a.grad is None and b.grad is None


def test_cosine_schedule_and_its_resume():
    p = torch.nn.Parameter(torch.ones(1))
    opt = Optimizers(torch.optim.Adam([p], lr=0.1))
    schedule = Schedule(opt, "cosine", 4)
    rates = []
    for _ in range(4):
        schedule.step()
        rates.append(opt.param_groups[0]["lr"])
    assert rates == pytest.approx([0.1 * (1 + c) / 2 for c in (0.7071068, 0.0, -0.7071068, -1.0)])
    resumed = Schedule(Optimizers(torch.optim.Adam([p], lr=0.1)), "cosine", 4)
    resumed.load_state_dict({"steps": 2})
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(0.05)
    flat = Schedule(Optimizers(torch.optim.Adam([p], lr=0.1)), "constant", 4)
    flat.step()
    assert flat.optimizer.param_groups[0]["lr"] == 0.1
