"""The history encoder and text projection: masking, every architecture, learning what only the
history (or the text) tells, checkpoints, and the single-task baseline's isolation."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from mtl.config import ModelConfig, parse_config
from mtl.data.features import Arrays
from mtl.evaluation import metrics
from mtl.models import ARCHITECTURES, get_architecture
from mtl.models.layers import InputSpec
from mtl.training import loop
from mtl.training.checkpoint import load_model, save_model
from mtl.training.losses import task_losses

# user, item (shared by history column 0), category (shared by history column 1), scenario
SPEC = InputSpec((40, 30, 6, 3), 1, ("click", "cart", "buy", "dwell"), ("binary", "binary", "binary", "regression"),
                 (-1, 0, 0, -1), 3, seq_shares=(1, 2), seq_length=8, n_text=1, text_dim=12)
CFG = ModelConfig(experts=3, expert_hidden=(32, 16), tower_hidden=(8,), embedding_dim=8, task_experts=1, levels=2,
                  sequence={"layers": 1, "heads": 2})
IS_BINARY = torch.tensor([True, True, True, False])


def batch(n=64, seed=0, length=None):
    g = torch.Generator().manual_seed(seed)
    cat = torch.stack([torch.randint(0, c, (n,), generator=g) for c in SPEC.cardinalities], 1)
    num = torch.randn(n, 1, generator=g)
    seq = torch.stack([torch.randint(0, 30, (n, 8), generator=g), torch.randint(0, 6, (n, 8), generator=g)], 1)
    lengths = torch.randint(0, 9, (n,), generator=g) if length is None else torch.full((n,), length)
    seq[torch.arange(8).expand(n, 8).unsqueeze(1).expand(n, 2, 8) >= lengths.view(n, 1, 1)] = -1
    text = torch.randn(n, 1, 12, generator=g)
    return cat, num, seq, text


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_every_architecture_reads_histories_and_text_and_roundtrips(name, tmp_path):
    torch.manual_seed(0)
    model = get_architecture(name)(SPEC, CFG).eval()
    cat, num, seq, text = batch()
    out = model(cat, num, seq, text)
    assert out.shape == (64, 4) and torch.isfinite(out).all()
    assert torch.allclose(model.decode(model.represent(cat, num, seq, text)), out)
    # both inputs matter to every architecture
    other_history = batch(seed=1)[2]
    assert not torch.allclose(model(cat, num, other_history, text), out)
    assert not torch.allclose(model(cat, num, seq, text + 1), out)
    save_model(tmp_path / "m.pt", model, SPEC, CFG.model_copy(update={"architecture": name}))
    assert torch.allclose(load_model(tmp_path / "m.pt")(cat, num, seq, text), out)


def test_padding_is_masked_and_an_empty_history_is_finite():
    torch.manual_seed(0)
    model = get_architecture("mmoe")(SPEC, CFG).eval()
    cat, num, seq, text = batch()
    out = model(cat, num, seq, text)
    # whatever id sits in a padded slot, nothing changes: the mask, not the -1, hides it
    encoder = model.history[0]
    tokens, query, padding = (torch.randn(64, 8, 8), torch.randn(64, 8), seq[:, 0] < 0)
    noisy = tokens.clone()
    noisy[padding] = 100.0
    assert torch.allclose(encoder(tokens, query, padding), encoder(noisy, query, padding), atol=1e-5)
    empty = seq.clone().fill_(-1)
    assert torch.isfinite(model(cat, num, empty, text)).all()
    assert torch.allclose(model(cat, num, seq, text), out)


def test_without_histories_or_text_nothing_is_built():
    plain = replace(SPEC, seq_shares=(), seq_length=0, n_text=0, text_dim=0)
    model = get_architecture("mmoe")(plain, CFG)
    assert model.history is None and model.text_projection is None and model.d_extra == 0
    names = [n for n, _ in model.named_parameters()]
    assert not any(n.startswith(("history", "text_projection")) for n in names)


def test_single_task_keeps_one_history_encoder_per_task():
    torch.manual_seed(3)
    model = get_architecture("single_task")(SPEC, CFG)
    cat, num, seq, text = batch()
    labels = torch.randint(0, 2, (64, 4)).float()
    out = model(cat, num, seq, text)
    task_losses(out, labels, torch.ones(64, 4, dtype=torch.bool), IS_BINARY)[2].backward()  # purchase only
    assert len(model.history) == 4
    assert all(p.grad is None or p.grad.abs().sum() == 0 for t in (0, 1, 3) for p in model.history[t].parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.history[2].parameters())
    grad = model.text_projection.grad.view(1, 12, 4, CFG.text_dim)
    assert grad[..., 2, :].abs().sum() > 0 and grad[..., [0, 1, 3], :].abs().sum() == 0


def _config(epochs=4, patience=4):
    return parse_config({
        "data": {"schema": {"categorical": ["u", "i", "c", "s"], "numeric": ["x"], "labels": ["a", "b"]}},
        "tasks": [{"name": "a", "label": "a", "type": "binary"}, {"name": "b", "label": "b", "type": "binary"}],
        "model": {"experts": 2, "expert_hidden": [32], "tower_hidden": [8], "embedding_dim": 8,
                  "sequence": {"layers": 1, "heads": 1}},
        "train": {"epochs": epochs, "batch_size": 256, "learning_rate": 0.01, "progress": False, "patience": patience,
                  "precision": "fp32"},
    })


def _history_data(n, seed):
    """A click is likely when the candidate item is one the user clicked recently: only the
    history can tell (users and items are drawn independently, every id is frequent)."""
    rng = np.random.default_rng(seed)
    user, item = rng.integers(0, 40, n), rng.integers(0, 30, n)
    hist = rng.integers(0, 30, (n, 8))
    lengths = rng.integers(0, 9, n)
    hist[np.arange(8) >= lengths[:, None]] = -1
    in_history = (hist == item[:, None]).any(1)
    pa, pb = np.where(in_history, 0.8, 0.1), np.where(in_history, 0.8 * 0.7, 0.1 * 0.2)
    a = (rng.random(n) < pa).astype(np.float32)
    b = a * (rng.random(n) < np.where(in_history, 0.7, 0.2)).astype(np.float32)
    cat = np.stack([user, item, item % 6, rng.integers(0, 3, n)], 1).astype(np.int32)
    seq = np.stack([hist, np.where(hist >= 0, hist % 6, -1)], 1).astype(np.int32)
    arrays = Arrays(cat, rng.normal(size=(n, 1)).astype(np.float32), np.stack([a, b], 1), np.ones((n, 2), bool), seq)
    return arrays, np.stack([pa, pb], 1)


def test_the_history_encoder_learns_what_only_the_history_tells():
    spec = InputSpec((40, 30, 6, 3), 1, ("a", "b"), ("binary", "binary"), seq_shares=(1, 2), seq_length=8)
    # Telling "the candidate is in the history" through attention is learnt suddenly, after a
    # plateau whose length varies with the CPU's kernels (within 8 epochs on the machine this test
    # was written on, at epoch 12 on an AMD EPYC): the budget and the patience leave room for
    # that; the bar below stays where it was.
    cfg = _config(20, patience=8)
    (train, _), (test, truth) = _history_data(20_000, 0), _history_data(3_000, 1)
    oracle = [metrics.auc(test.labels[:, j], truth[:, j]) for j in range(2)]
    aucs = {}
    # Without the history nothing in the inputs tells the labels apart, however long it trains:
    # four epochs show it (the budget above is for the plateau of the model that can learn).
    for name, s, c in (("with", spec, cfg), ("without", replace(spec, seq_shares=(), seq_length=0), _config(4))):
        model = loop.train(train, test, s, c.tasks, c).model
        raw = loop.predict_raw(model, test)
        aucs[name] = [metrics.auc(test.labels[:, j], raw[:, j]) for j in range(2)]
    # Most of the way to the best any model can do (the true probabilities), against chance without.
    assert all(a - 0.5 > 0.6 * (o - 0.5) for a, o in zip(aucs["with"], oracle)), (aucs, oracle)
    assert max(aucs["without"]) < 0.56, aucs


def test_text_vectors_reach_the_model_through_the_trained_projection():
    """Labels that depend on a direction of the (frozen) text vector: learnt through the projection."""
    rng = np.random.default_rng(0)
    n, dim = 8000, 12
    table = np.concatenate([np.zeros((1, dim)), rng.normal(size=(50, dim))]).astype(np.float32)
    direction = rng.normal(size=dim)
    text = rng.integers(1, 51, (n, 1)).astype(np.int32)
    p = 1 / (1 + np.exp(-3 * table[text[:, 0]] @ direction / np.sqrt(dim)))
    a = (rng.random(n) < p).astype(np.float32)
    cat = np.stack([rng.integers(0, 40, n), rng.integers(0, 30, n), rng.integers(0, 6, n), rng.integers(0, 3, n)],
                   1).astype(np.int32)
    arrays = Arrays(cat, np.zeros((n, 1), np.float32), np.stack([a, a], 1), np.ones((n, 2), bool), None, text)
    train, test = arrays.take(np.arange(6000)), arrays.take(np.arange(6000, n))
    spec = InputSpec((40, 30, 6, 3), 1, ("a", "b"), ("binary", "binary"), n_text=1, text_dim=dim)
    cfg = _config(3)
    model = loop.train(train, test, spec, cfg.tasks, cfg, text_table=table).model
    raw = loop.predict_raw(model, test, text_table=table)
    assert metrics.auc(test.labels[:, 0], raw[:, 0]) > 0.75


def test_mean_pooling_averages_the_elements_and_masks_the_padding():
    from mtl.models.layers import HistoryEncoder

    torch.manual_seed(0)
    encoder = HistoryEncoder(8, 8, layers=0, heads=1, pooling="mean").eval()
    assert encoder.attention is None  # nothing built that the pooling does not use
    tokens, query = torch.randn(4, 8, 8), torch.randn(4, 8)
    padding = torch.arange(8).expand(4, 8) >= torch.tensor([[0], [1], [3], [8]])
    noisy = tokens.clone()
    noisy[padding] = 100.0
    out = encoder(tokens, query, padding)
    assert torch.allclose(out, encoder(noisy, query, padding), atol=1e-5)
    # row 2: the mean of its three elements (each plus its recency), plus the length's embedding
    expected = (tokens[2, :3] + encoder.position[1:4]).mean(0) + encoder.length.weight[3]
    assert torch.allclose(out[2], expected, atol=1e-5)
    # an empty history gives the learnt "no history" token, never a division by zero
    empty = encoder.empty[0, 0] + encoder.position[0] + encoder.length.weight[0]
    assert torch.allclose(out[0], empty, atol=1e-5) and torch.isfinite(out).all()
    # the candidate does not enter a mean
    assert torch.allclose(encoder(tokens, query + 1, padding), out)


def test_a_bad_pooling_is_refused_naming_the_key():
    from mtl.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="model.sequence.pooling"):
        load_config(Path(__file__).resolve().parents[2] / "params.yaml", {"model.sequence.pooling": "max"})


@pytest.mark.parametrize("name", ["stem", "single_task", "mmoe"])
def test_mean_pooling_in_a_model_trains_and_roundtrips(name, tmp_path):
    torch.manual_seed(0)
    cfg = CFG.model_copy(update={"sequence": CFG.sequence.model_copy(update={"layers": 0, "pooling": "mean"}),
                                 "interaction": "fm", "architecture": name})
    model = get_architecture(name)(SPEC, cfg)
    cat, num, seq, text = batch()
    out = model(cat, num, seq, text)
    assert out.shape == (64, 4) and torch.isfinite(out).all()
    assert not torch.allclose(model(cat, num, batch(seed=1)[2], text), out)  # the history matters
    out.sum().backward()
    assert model.embedding.table.weight.grad.abs().sum() > 0
    save_model(tmp_path / "m.pt", model.eval(), SPEC, cfg)
    assert torch.allclose(load_model(tmp_path / "m.pt")(cat, num, seq, text), model(cat, num, seq, text))
