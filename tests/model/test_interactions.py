"""Feature interactions (model.interaction): shapes, gradients, masking, and what they learn."""

import pytest
import torch

from mtl.config import ConfigError, ModelConfig
from mtl.evaluation.metrics import auc
from mtl.models import ARCHITECTURES, get_architecture
from mtl.models.interactions import INTERACTIONS, get_interaction
from mtl.models.layers import InputSpec
from mtl.training.checkpoint import load_model, save_model
from mtl.training.losses import task_losses
from tests.model.test_architectures import CFG, IS_BINARY, SPEC, funnel_data


def layer(name, fields=5, dim=4, numeric=2, copies=1, heads=1, **cross):
    cfg = ModelConfig(interaction=name, cross=cross or {"layers": 2, "rank": 3}, fm={"heads": heads}, embedding_dim=dim)
    d_in = fields * dim + numeric
    return get_interaction(name)(fields, dim, numeric, d_in, copies, cfg), d_in


@pytest.mark.parametrize("name", sorted(INTERACTIONS))
@pytest.mark.parametrize("copies", [1, 3])
def test_shapes_and_gradients_reach_every_parameter_and_the_embeddings(name, copies):
    torch.manual_seed(0)
    mod, d_in = layer(name, copies=copies)
    fields = torch.randn(copies, 7, 5, 4, requires_grad=True)
    num = torch.randn(7, 2)
    x = torch.cat([fields.flatten(2), num.expand(copies, 7, 2)], dim=2)
    out = mod(fields, num, x)
    assert out.shape == (copies, 7, mod.out_dim) and torch.isfinite(out).all()
    out.square().sum().backward()
    assert fields.grad.abs().sum() > 0
    for p in mod.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_fm_appends_each_pair_of_fields_once_numeric_fields_scaled_by_their_value():
    torch.manual_seed(1)
    mod, d_in = layer("fm", fields=3, dim=4, numeric=1)
    fields, num = torch.randn(1, 6, 3, 4), torch.randn(6, 1)
    x = torch.randn(1, 6, d_in)
    out = mod(fields, num, x)
    assert mod.out_dim == d_in + 6  # 4 fields (3 + 1 numeric): 4 * 3 / 2 pairs, no field with itself
    assert torch.equal(out[..., :d_in], x)
    vectors = torch.cat([fields, (num[:, :, None] * mod.numeric[0])[None]], dim=2)[0]
    expected = [(vectors[:, i] * vectors[:, j]).sum(-1) for i in range(4) for j in range(i + 1, 4)]
    assert torch.allclose(out[0, :, d_in:], torch.stack(expected, 1), atol=1e-6)


def test_fm_heads_take_the_products_part_by_part_and_sum_to_the_whole_product():
    torch.manual_seed(5)
    one, d_in = layer("fm", fields=3, dim=4, numeric=0)
    two, _ = layer("fm", fields=3, dim=4, numeric=0, heads=2)
    fields, x = torch.randn(1, 6, 3, 4), torch.randn(1, 6, d_in)
    whole, parts = one(fields, None, x)[..., d_in:], two(fields, None, x)[..., d_in:]
    assert two.out_dim == d_in + 2 * 3
    assert torch.allclose(parts[..., :3] + parts[..., 3:], whole, atol=1e-6)
    assert torch.allclose(parts[..., :3], one(fields[..., :2], None, x)[..., d_in:], atol=1e-6)


def test_fm_without_numeric_columns_and_dcn_full_rank():
    mod, d_in = layer("fm", numeric=0)
    assert mod.numeric is None and mod.out_dim == d_in + 10
    full, d_in = layer("dcn_v2", layers=1, rank=None)
    assert not full.low_rank and full.maps[0].shape == (1, d_in, d_in)


def test_dcn_v2_cross_layer_is_x0_times_linear_plus_residual():
    torch.manual_seed(2)
    mod, d_in = layer("dcn_v2", layers=1, rank=None)
    x = torch.randn(1, 5, d_in)
    with torch.no_grad():
        mod.biases.normal_()
    out = mod(torch.randn(1, 5, 5, 4), torch.randn(5, 2), x)
    assert torch.allclose(out, x * (x @ mod.maps[0] + mod.biases[0]) + x, atol=1e-5)


@pytest.mark.parametrize("interaction", ["fm", "dcn_v2"])
def test_single_task_copies_share_nothing(interaction):
    """Masking across tasks: one task's loss reaches only its own slice of every interaction."""
    torch.manual_seed(3)
    model = get_architecture("single_task")(SPEC, CFG.model_copy(update={"interaction": interaction}))
    cat, num, labels, mask = funnel_data(64)
    task_losses(model(cat, num), labels, mask, IS_BINARY)[2].backward()
    for p in model.interaction.parameters():
        copies = p.grad.transpose(0, 1) if p.dim() == 4 else p.grad  # cross biases: (layers, copies, 1, d)
        assert copies[2].abs().sum() > 0
        assert copies[[0, 1, 3]].abs().sum() == 0


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
@pytest.mark.parametrize("interaction", ["fm", "dcn_v2"])
def test_every_architecture_takes_every_interaction(name, interaction, tmp_path):
    torch.manual_seed(4)
    cfg = CFG.model_copy(update={"interaction": interaction, "architecture": name})
    model = get_architecture(name)(SPEC, cfg).eval()
    cat, num, *_ = funnel_data(50)
    out = model(cat, num)
    assert out.shape == (50, 4) and torch.isfinite(out).all()
    save_model(tmp_path / "m.pt", model, SPEC, cfg)
    assert torch.allclose(load_model(tmp_path / "m.pt")(cat, num), out)


def planted_pairwise(n, seed):
    """Labels driven only by <u_user, v_item>: a pure pairwise interaction of two id fields."""
    g = torch.Generator().manual_seed(seed)
    u, v = torch.randn(200, 4, generator=torch.Generator().manual_seed(99)), torch.randn(
        100, 4, generator=torch.Generator().manual_seed(98))
    cat = torch.stack([torch.randint(0, 200, (n,), generator=g), torch.randint(0, 100, (n,), generator=g)], 1)
    logit = 1.5 * (u[cat[:, 0]] * v[cat[:, 1]]).sum(1)
    y = (torch.rand(n, generator=g) < torch.sigmoid(logit)).float()
    return cat, torch.zeros(n, 0), y[:, None]


def test_a_planted_pairwise_interaction_is_learnt_by_fm_and_not_by_the_plain_mlp():
    spec = InputSpec((200, 100), 0, ("y",), ("binary",))
    cat, num, y = planted_pairwise(40_000, 0)
    test_cat, test_num, test_y = planted_pairwise(20_000, 1)
    mask = torch.ones_like(y, dtype=torch.bool)
    results = {}
    for interaction in ("none", "fm"):
        torch.manual_seed(0)
        cfg = ModelConfig(architecture="shared_bottom", interaction=interaction, embedding_dim=8,
                          expert_hidden=(32,), tower_hidden=())
        model = get_architecture("shared_bottom")(spec, cfg)
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        for _ in range(3):  # the same steps for both
            for start in range(0, len(cat), 512):
                sl = slice(start, start + 512)
                opt.zero_grad()
                task_losses(model(cat[sl], num[sl]), y[sl], mask[sl], torch.tensor([True])).sum().backward()
                opt.step()
        with torch.no_grad():
            results[interaction] = auc(test_y[:, 0].numpy(), model.eval()(test_cat, test_num)[:, 0].numpy())
    oracle = auc(test_y[:, 0].numpy(), planted_logit_oracle(test_cat))
    assert results["fm"] > results["none"] + 0.05, results
    assert results["fm"] > 0.5 + 0.75 * (oracle - 0.5), (results, oracle)


def planted_logit_oracle(cat):
    u = torch.randn(200, 4, generator=torch.Generator().manual_seed(99))
    v = torch.randn(100, 4, generator=torch.Generator().manual_seed(98))
    return (u[cat[:, 0]] * v[cat[:, 1]]).sum(1).numpy()


def test_an_unknown_interaction_or_a_bad_cross_setting_names_the_key(tmp_path):
    from mtl.config import parse_config
    import yaml
    from pathlib import Path

    raw = yaml.safe_load((Path(__file__).parents[2] / "params.yaml").read_text())
    raw["model"]["interaction"] = "deepfm"
    with pytest.raises(ConfigError, match=r"model\.interaction: .*unknown interaction 'deepfm'.*dcn_v2.*fm"):
        parse_config(raw)
    raw["model"]["interaction"] = "dcn_v2"
    raw["model"]["cross"] = {"layers": 0}
    with pytest.raises(ConfigError, match=r"model\.cross\.layers"):
        parse_config(raw)
    raw["model"]["interaction"], raw["model"]["cross"], raw["model"]["fm"] = "fm", {}, {"heads": 3}
    with pytest.raises(ConfigError, match=r"model: .*fm\.heads \(3\) must divide embedding_dim \(16\)"):
        parse_config(raw)
    raw["model"]["fm"] = {"heads": 1}
    raw["model"]["cross"] = {"rnk": 4}
    with pytest.raises(ConfigError, match=r"model\.cross\.rnk: unknown key"):
        parse_config(raw)
