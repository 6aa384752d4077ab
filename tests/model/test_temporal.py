"""The temporal encoder (mtl/models/temporal.py): causal, reads the window's inputs only, and
feeds every architecture."""

import pytest
import torch

from mtl.config import ModelConfig, TaskConfig
from mtl.config.model import TemporalModel
from mtl.models.layers import InputSpec
from mtl.models.temporal import TCN
from mtl.training.loop import build_model

LOOKBACK, CHANNELS = 20, 3
# numeric inputs: 2 plain columns, then 3 channels x 20 lags (oldest first), then 1 more
WINDOW = tuple(tuple(2 + c * LOOKBACK + k for k in range(LOOKBACK)) for c in range(CHANNELS))
N_NUMERIC = 2 + CHANNELS * LOOKBACK + 1


def test_the_encoding_of_a_day_never_sees_a_later_day():
    torch.manual_seed(0)
    tcn = TCN(WINDOW, TemporalModel(filters=8, kernel=3, dilations=(1, 2, 4)))
    series = torch.randn(4, CHANNELS, LOOKBACK)
    later = series.clone()
    later[:, :, 12:] = torch.randn(4, CHANNELS, LOOKBACK - 12)
    out, out_later = tcn.blocks(series), tcn.blocks(later)
    assert torch.allclose(out[:, :, :12], out_later[:, :, :12])
    assert not torch.allclose(out[:, :, 12:], out_later[:, :, 12:])


def test_it_reads_the_window_inputs_and_nothing_else():
    torch.manual_seed(0)
    tcn = TCN(WINDOW, TemporalModel(filters=8))
    num = torch.randn(5, N_NUMERIC)
    other = num.clone()
    other[:, [0, 1, N_NUMERIC - 1]] = torch.randn(5, 3)  # the columns outside the window
    assert torch.equal(tcn(num), tcn(other)) and tcn(num).shape == (5, 8)
    lagged = num.clone()
    lagged[:, WINDOW[1][0]] += 1.0  # the oldest day of channel 1: inside the receptive field
    assert not torch.allclose(tcn(num), tcn(lagged))
    assert TemporalModel(kernel=3, dilations=(1, 2, 4, 8, 16)).receptive_field == 125


@pytest.mark.parametrize("architecture", ["shared_bottom", "mmoe", "ple", "single_task"])
def test_every_architecture_takes_the_window_and_trains_the_encoder(architecture):
    torch.manual_seed(0)
    tasks = [TaskConfig(name="demand", label="demand", type="regression", loss="poisson"),
             TaskConfig(name="stockout", label="stockout", type="binary")]
    spec = InputSpec.from_tasks((5, 7), N_NUMERIC, tasks)
    spec = InputSpec.from_dict(spec.to_dict() | {"window": WINDOW})
    assert spec.window == WINDOW
    model = build_model(spec, ModelConfig(architecture=architecture, embedding_dim=8,
                                          temporal=TemporalModel(filters=8, dilations=(1, 2))))
    out = model(torch.randint(0, 5, (6, 2)), torch.randn(6, N_NUMERIC))
    assert out.shape == (6, 2)
    out[:, 0].sum().backward()
    grads = [p.grad for p in model.temporal.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
