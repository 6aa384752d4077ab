"""Model behaviour: shapes, masked losses, learning, determinism, safe checkpoints."""

import numpy as np
import pytest
import torch

from mtl.config import ModelConfig, TaskConfig, parse_config
from mtl.data.features import Arrays
from mtl.models.layers import InputSpec
from mtl.models.mmoe import MMoE
from mtl.training import loop
from mtl.training.checkpoint import load_model, save_model
from mtl.training.losses import task_losses

SPEC = InputSpec(cardinalities=(50, 20, 5), n_numeric=2, tasks=("ctr", "cvr", "dwell"))
TASKS = (
    TaskConfig(name="ctr", label="c", type="binary"),
    TaskConfig(name="cvr", label="b", type="binary"),
    TaskConfig(name="dwell", label="d", type="regression"),
)


def config(**train):
    return parse_config({
        "data": {"schema": {"categorical": ["u", "i", "s"], "numeric": ["x", "y"], "labels": ["c", "b", "d"]}},
        "tasks": [t.model_dump(exclude={"weight"}, exclude_none=True) for t in TASKS],
        "model": {"experts": 3, "expert_hidden": [32, 16], "tower_hidden": [8], "embedding_dim": 8},
        "train": {"epochs": 3, "batch_size": 256, "progress": False, "learning_rate": 0.01, **train},
    })


def synthetic_arrays(n: int, seed: int) -> Arrays:
    """Labels that depend on the inputs, so a model can learn them."""
    rng = np.random.default_rng(seed)
    cat = np.stack([rng.integers(0, c, n) for c in SPEC.cardinalities], 1)
    num = rng.normal(size=(n, 2)).astype(np.float32)
    effect = rng.normal(size=50)[cat[:, 0]] + num[:, 0]
    ctr = (rng.random(n) < 1 / (1 + np.exp(-2 * effect))).astype(np.float32)
    cvr = (ctr * (rng.random(n) < 1 / (1 + np.exp(-(effect - 1))))).astype(np.float32)
    dwell = (effect + rng.normal(scale=0.3, size=n)).astype(np.float32)
    labels = np.stack([ctr, cvr, np.where(ctr == 1, dwell, 0)], 1)
    mask = np.stack([np.ones(n, bool), np.ones(n, bool), ctr == 1], 1)
    return Arrays(cat.astype(np.int64), num, labels, mask)


def test_forward_shape_and_batched_experts():
    model = MMoE(SPEC, ModelConfig(experts=4, expert_hidden=(16,), tower_hidden=(8,)))
    out = model(torch.zeros(7, 3, dtype=torch.long), torch.zeros(7, 2))
    assert out.shape == (7, 3)
    assert model.experts.weights[0].shape == (4, SPEC.cardinalities.__len__() * 16 + 2, 16)


def test_masked_rows_do_not_contribute_to_loss():
    out = torch.tensor([[0.0, 5.0], [0.0, -5.0]])
    labels = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    is_binary = torch.tensor([True, False])
    all_rows = task_losses(out, labels, torch.ones(2, 2, dtype=torch.bool), is_binary)
    first_only = task_losses(out, labels, torch.tensor([[True, True], [True, False]]), is_binary)
    assert first_only[1] == pytest.approx((5.0 - 1.0) ** 2)
    assert all_rows[1] == pytest.approx(((5 - 1) ** 2 + (-5 - 1) ** 2) / 2)
    # a task with no defined rows in the batch contributes exactly zero
    none = task_losses(out, labels, torch.zeros(2, 2, dtype=torch.bool), is_binary)
    assert none.sum() == 0


def test_training_learns_every_task():
    train, val = synthetic_arrays(6000, 0), synthetic_arrays(2000, 1)
    cfg = config()
    result = loop.train(train, val, SPEC, TASKS, cfg)
    first, last = result.history[0], result.history[-1]
    assert last["train_loss_ctr"] < first["train_loss_ctr"]
    scores = loop.validation_scores(loop.predict_raw(result.model, val), val, TASKS)
    assert scores["val_auc_ctr"] > 0.75 and scores["val_auc_cvr"] > 0.7
    assert scores["val_mse_dwell"] < np.var(val.labels[val.mask[:, 2], 2])


def test_same_seed_same_model():
    train, val = synthetic_arrays(2000, 0), synthetic_arrays(500, 1)
    a = loop.train(train, val, SPEC, TASKS, config(epochs=1))
    b = loop.train(train, val, SPEC, TASKS, config(epochs=1))
    for (k, va), (_, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(va, vb), k


def test_early_stopping_keeps_best_epoch():
    train, val = synthetic_arrays(2000, 0), synthetic_arrays(500, 1)
    result = loop.train(train, val, SPEC, TASKS, config(epochs=6, patience=1, learning_rate=0.05))
    best = max(h["val_selection_score"] for h in result.history)
    assert result.best_score == pytest.approx(best)
    assert result.history[result.best_epoch - 1]["val_selection_score"] == pytest.approx(best)


def test_checkpoint_roundtrip_without_pickle(tmp_path):
    model = MMoE(SPEC, ModelConfig(experts=2, expert_hidden=(8,), tower_hidden=()))
    path = tmp_path / "model.pt"
    save_model(path, model, SPEC, ModelConfig(experts=2, expert_hidden=(8,), tower_hidden=()))
    loaded = load_model(path)
    x = (torch.randint(0, 5, (4, 3)), torch.randn(4, 2))
    assert torch.allclose(model.eval()(*x), loaded(*x))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="not a readable model file"):
        load_model(path)


def _flip_inside(path, tensor: torch.Tensor) -> None:
    """Flip one bit inside ``tensor``'s bytes in the file: a damage the zip container lets through."""
    raw = bytearray(path.read_bytes())
    at = raw.find(tensor.detach().cpu().contiguous().numpy().tobytes()[:64])
    assert at > 0, "tensor bytes not found in the file"
    raw[at + 7] ^= 0x10
    path.write_bytes(bytes(raw))


def test_a_corrupted_model_file_is_rejected_by_checksum(tmp_path):
    cfg = ModelConfig(experts=2, expert_hidden=(64,), tower_hidden=())
    model = MMoE(SPEC, cfg)
    path = tmp_path / "model.pt"
    save_model(path, model, SPEC, cfg)
    load_model(path)  # intact: loads
    weight = max(model.state_dict().values(), key=lambda t: t.numel())
    _flip_inside(path, weight)
    # torch itself would load it: the damage is only in the numbers
    assert torch.load(path, weights_only=True)["state_dict"]
    with pytest.raises(ValueError, match="checksum mismatch, the model file is corrupted"):
        load_model(path)


def test_a_corrupted_training_state_is_not_resumed_from(tmp_path, capsys):
    from mtl.training.checkpoint import load_training_state, save_training_state

    path = tmp_path / "train_state.pt"
    weights = torch.randn(4096)
    save_training_state(path, {"fingerprint": "f", "epoch": 2, "weights": weights})
    assert load_training_state(path, "f")["epoch"] == 2
    _flip_inside(path, weights)
    assert load_training_state(path, "f") is None
    assert "checksum mismatch, the training state is corrupted; training starts afresh" in capsys.readouterr().err


def test_embedding_l2_shrinks_the_rows_batches_look_up_and_leaves_unseen_rows_alone():
    train, val = synthetic_arrays(3000, 0), synthetic_arrays(500, 1)
    train.cat[:, 0] = np.minimum(train.cat[:, 0], 39)  # user rows 40-49 never appear in training
    norms = {}
    for l2 in (0.0, 0.5):
        model = loop.train(train, val, SPEC, TASKS, config(epochs=2, embedding_l2=l2)).model
        table = model.embedding.table.weight.detach()
        norms[l2] = table[:40].norm(dim=1).mean().item()
        torch.manual_seed(42)
        untouched = loop.build_model(SPEC, config().model).embedding.table.weight[40:50]
        assert torch.equal(table[40:50], untouched)  # no penalty (and no gradient) on rows never looked up
    assert norms[0.5] < 0.85 * norms[0.0], norms


def test_cosine_schedule_decays_the_learning_rate_to_zero_by_the_last_epoch():
    train, val = synthetic_arrays(2000, 0), synthetic_arrays(500, 1)
    constant = loop.train(train, val, SPEC, TASKS, config(epochs=2, patience=5))
    cosine = loop.train(train, val, SPEC, TASKS, config(epochs=2, patience=5, lr_schedule="cosine"))
    assert [h["learning_rate"] for h in constant.history] == [0.01, 0.01]
    middle, end = (h["learning_rate"] for h in cosine.history)
    assert middle == pytest.approx(0.005, rel=0.05) and end == pytest.approx(0.0, abs=1e-9)


def test_early_stopping_selects_on_the_tasks_the_gate_judges():
    scores = {"val_auc_ctr": 0.8, "val_auc_cvr": 0.6, "val_mse_dwell": 0.5}
    assert loop._selection_score(scores, TASKS) == pytest.approx(0.7)  # no gated task: every binary one
    assert loop._selection_score(scores, TASKS, ("cvr", "dwell")) == pytest.approx(0.6)
    assert loop._selection_score({"val_mse_dwell": 0.5}, TASKS[2:]) == pytest.approx(-0.5)


def test_a_small_split_is_repeated_until_an_epoch_has_its_minimum_steps():
    """train.min_steps_per_epoch: 2,000 rows in batches of 256 are 8 steps a pass; a minimum of
    20 makes an epoch three passes (each a new shuffle of every row), the learning-rate
    schedule spans them, and a split with more steps per pass than the minimum is unchanged."""
    gen = torch.Generator().manual_seed(0)
    data = synthetic_arrays(2000, 0)
    plain = loop._Batches(data, 256, 10**6, torch.device("cpu"), gen)
    repeated = loop._Batches(data, 256, 10**6, torch.device("cpu"), gen, min_steps=20)
    assert (len(plain), len(repeated), repeated.passes) == (8, 24, 3)
    rows = torch.cat([num for _, num, *_ in repeated]).numpy()
    assert len(rows) == 3 * 2000
    for i in range(3):  # every pass holds every row once, in a new order
        one = rows[i * 2000:(i + 1) * 2000]
        assert np.array_equal(np.sort(one[:, 0]), np.sort(data.num[:, 0]))
        assert i == 0 or not np.array_equal(one, rows[:2000])
    assert loop._Batches(data, 256, 10**6, torch.device("cpu"), gen, min_steps=5).passes == 1
    result = loop.train(data, synthetic_arrays(500, 1), SPEC, TASKS,
                        config(epochs=2, patience=5, lr_schedule="cosine", min_steps_per_epoch=20))
    assert result.history[-1]["learning_rate"] == pytest.approx(0.0, abs=1e-9)
