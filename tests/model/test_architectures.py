"""Every registered architecture: shapes, learning, funnel semantics, sharing, safe checkpoints."""

import numpy as np
import pytest
import torch

from mtl.config import ModelConfig
from mtl.models import ARCHITECTURES, get_architecture
from mtl.models.funnel import funnel_order, logit_from_log_prob
from mtl.models.layers import InputSpec
from mtl.training.checkpoint import load_model, save_model
from mtl.training.losses import task_losses

# click, add_to_cart (implies click), purchase (implies click), dwell (regression); scenario = input 2
SPEC = InputSpec((60, 20, 3), 2, ("click", "cart", "buy", "dwell"), ("binary", "binary", "binary", "regression"),
                 (-1, 0, 0, -1), 2)
CFG = ModelConfig(experts=3, expert_hidden=(32, 16), tower_hidden=(8,), embedding_dim=8, task_experts=1, levels=2,
                  scenario_gating=True)
IS_BINARY = torch.tensor([True, True, True, False])


def funnel_data(n=3000, seed=0):
    g = torch.Generator().manual_seed(seed)
    cat = torch.stack([torch.randint(0, c, (n,), generator=g) for c in SPEC.cardinalities], 1)
    num = torch.randn(n, 2, generator=g)
    user = torch.randn(60, generator=g)[cat[:, 0]]
    click = (torch.rand(n, generator=g) < torch.sigmoid(2 * user + num[:, 0] - 1)).float()
    cart = click * (torch.rand(n, generator=g) < torch.sigmoid(user - 0.5)).float()
    buy = click * (torch.rand(n, generator=g) < torch.sigmoid(user - 1)).float()
    dwell = user + 0.3 * torch.randn(n, generator=g)
    labels = torch.stack([click, cart, buy, torch.where(click == 1, dwell, 0.0)], 1)
    mask = torch.stack([torch.ones(n, dtype=torch.bool)] * 3 + [click == 1], 1)
    return cat, num, labels, mask


def loss_of(model, cat, num, labels, mask):
    out = model(cat, num)
    loss = task_losses(out, labels, mask, IS_BINARY).sum()
    extra = model.extra_loss(out, labels, mask)
    return loss + extra if extra is not None else loss


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_each_architecture_learns(name):
    torch.manual_seed(0)
    model = get_architecture(name)(SPEC, CFG)
    cat, num, labels, mask = funnel_data()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    with torch.no_grad():
        before = loss_of(model, cat, num, labels, mask).item()
    for _ in range(3):
        for start in range(0, len(cat), 256):
            sl = slice(start, start + 256)
            opt.zero_grad()
            loss_of(model, cat[sl], num[sl], labels[sl], mask[sl]).backward()
            opt.step()
    with torch.no_grad():
        after = loss_of(model, cat, num, labels, mask).item()
    assert np.isfinite(after) and after < before * 0.9, (before, after)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_represent_then_decode_is_forward_and_checkpoint_roundtrips(name, tmp_path):
    torch.manual_seed(1)
    model = get_architecture(name)(SPEC, CFG).eval()
    cat, num, *_ = funnel_data(50)
    out = model(cat, num)
    assert out.shape == (50, 4) and torch.isfinite(out).all()
    assert torch.allclose(model.decode(model.represent(cat, num)), out)
    assert model.last_shared_layer().requires_grad
    save_model(tmp_path / "m.pt", model, SPEC, CFG.model_copy(update={"architecture": name}))
    assert torch.allclose(load_model(tmp_path / "m.pt")(cat, num), out)


def test_esmm_scores_ctcvr_as_ctr_times_cvr():
    torch.manual_seed(2)
    model = get_architecture("esmm")(SPEC, CFG).eval()
    cat, num, *_ = funnel_data(40)
    out = model(cat, num)
    cond = model.last_conditional
    p = torch.sigmoid(out.double())
    expected = torch.sigmoid(cond[:, 0].double()) * torch.sigmoid(cond[:, 2].double())
    assert torch.allclose(p[:, 2], expected, atol=1e-5)  # P(buy) = P(click) * P(buy | click)
    assert (p[:, 2] <= p[:, 0] + 1e-6).all() and (p[:, 1] <= p[:, 0] + 1e-6).all()
    assert torch.equal(out[:, 3], cond[:, 3])  # the regression task is not chained


def test_logit_from_log_prob_is_stable_at_the_extremes():
    p = torch.tensor([1e-30, 1e-6, 0.3, 0.5, 0.999999], dtype=torch.float64)
    logit = logit_from_log_prob(torch.log(p))
    assert torch.allclose(torch.sigmoid(logit), p, rtol=1e-4)
    assert torch.isfinite(logit_from_log_prob(torch.tensor([0.0, -1e-12, -800.0]))).all()


def test_aitm_calibrator_penalises_a_child_above_its_parent():
    model = get_architecture("aitm")(SPEC, CFG)
    labels, mask = torch.zeros(2, 4), torch.ones(2, 4, dtype=torch.bool)
    ordered = torch.tensor([[2.0, 0.0, -1.0, 0.0], [1.0, -1.0, -2.0, 0.0]])
    inverted = torch.tensor([[-2.0, 0.0, 1.0, 0.0], [-1.0, 1.0, 2.0, 0.0]])
    assert model.extra_loss(ordered, labels, mask).item() == 0.0
    assert model.extra_loss(inverted, labels, mask).item() > 0.1


def test_funnel_order_puts_parents_first_and_rejects_cycles():
    assert funnel_order(SPEC).index(0) < funnel_order(SPEC).index(2)
    cyclic = InputSpec((5,), 0, ("a", "b"), ("binary", "binary"), (1, 0))
    with pytest.raises(ValueError, match="cycle"):
        funnel_order(cyclic)


def test_single_task_models_share_nothing():
    torch.manual_seed(3)
    model = get_architecture("single_task")(SPEC, CFG)
    cat, num, labels, mask = funnel_data(64)
    out = model(cat, num)
    task_losses(out, labels, mask, IS_BINARY)[2].backward()  # purchase only
    grad = model.embedding.table.weight.grad.view(-1, 4, CFG.embedding_dim)
    assert grad[:, 2].abs().sum() > 0
    assert grad[:, [0, 1, 3]].abs().sum() == 0  # click's, cart's and dwell's slices are untouched
    assert model.mlps.weights[0].grad[[0, 1, 3]].abs().sum() == 0


@pytest.mark.parametrize("name", ["mmoe", "cgc", "ple"])
def test_gates_are_distributions_and_scenario_aware(name):
    torch.manual_seed(4)
    model = get_architecture(name)(SPEC, CFG)
    model.record_gates = True
    cat, num, *_ = funnel_data(32)
    model(cat, num)
    gates = model.last_gates
    assert gates.shape[:2] == (4, 32)
    assert torch.allclose(gates.sum(-1), torch.ones(4, 32))
    scen = next(m for n, m in model.named_modules() if n.endswith("scenario") and m is not None)
    with torch.no_grad():
        scen.weight.normal_()  # trained scenario logits: the same row under another scenario is gated differently
    a = model(cat, num)
    b = model(torch.cat([cat[:, :2], (cat[:, 2:] + 1) % 3], 1), num)
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_expert_utilisation_is_reported_for_gated_models(name):
    from mtl.data.features import Arrays
    from mtl.training.diagnostics import expert_utilisation

    model = get_architecture(name)(SPEC, CFG)
    cat, num, labels, mask = funnel_data(100)
    util = expert_utilisation(model, Arrays(cat.numpy(), num.numpy(), labels.numpy(), mask.numpy()))
    if name in ("mmoe", "cgc", "ple", "stem"):
        assert set(util) == set(SPEC.tasks)
        assert all(abs(sum(w) - 1) < 1e-3 for w in util.values())
    else:
        assert util == {}
    assert model.record_gates is False  # diagnostics leave the model as they found it


def test_stem_tasks_own_their_embedding_slice_and_share_only_the_shared_one():
    torch.manual_seed(5)
    model = get_architecture("stem")(SPEC, CFG)
    cat, num, labels, mask = funnel_data(64)
    task_losses(model(cat, num), labels, mask, IS_BINARY)[2].backward()  # purchase only
    grad = model.embedding.table.weight.grad.view(-1, 5, CFG.embedding_dim)  # 4 task slices, then the shared one
    assert grad[:, 2].abs().sum() > 0 and grad[:, 4].abs().sum() > 0
    assert grad[:, [0, 1, 3]].abs().sum() == 0  # the other tasks' own slices are untouched
