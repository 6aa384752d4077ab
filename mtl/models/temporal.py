"""The temporal encoder: a TCN over a panel's lag window (Bai, Kolter & Koltun 2018).

A series' last ``lookback`` days of each window channel (units sold, stock, price, ...) arrive
as numeric inputs, one per channel and day (mtl/data/features/framing.py names them
``<channel>_lag<k>``); the encoder reads them as a (channels, days) series, oldest day first.
Each residual block holds two causal convolutions with the same dilation (the output at day t
sees only days up to t: left padding, never right), doubling dilations widen the receptive field
to 1 + 2 (kernel - 1) sum(dilations) days at a cost linear in the window. The last day's output
(the forecast origin's) is the encoding: it has seen the whole window.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from mtl.config.model import TemporalModel


class CausalConv(nn.Conv1d):
    """A 1-D convolution whose output at step t depends on inputs up to t only."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int):
        super().__init__(c_in, c_out, kernel, dilation=dilation)
        self.left = (kernel - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left, 0)))


class TemporalBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int, dropout: float):
        super().__init__()
        self.conv1 = CausalConv(c_in, c_out, kernel, dilation)
        self.conv2 = CausalConv(c_out, c_out, kernel, dilation)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dropout(F.relu(self.conv1(x)))
        h = self.dropout(F.relu(self.conv2(h)))
        return F.relu(h + self.skip(x))


class TCN(nn.Module):
    """(batch, n_numeric) inputs -> (batch, filters): the window's channels gathered from the
    numeric inputs (``window``: per channel, its lags' input indices, oldest first), encoded."""

    def __init__(self, window: tuple[tuple[int, ...], ...], cfg: TemporalModel):
        super().__init__()
        self.register_buffer("index", torch.tensor(window, dtype=torch.long), persistent=False)
        channels = [len(window), *(cfg.filters for _ in cfg.dilations)]
        self.blocks = nn.Sequential(*(TemporalBlock(a, b, cfg.kernel, d, cfg.dropout)
                                      for a, b, d in zip(channels[:-1], channels[1:], cfg.dilations)))
        self.out_dim = cfg.filters

    def forward(self, num: torch.Tensor) -> torch.Tensor:
        series = num[:, self.index]  # (batch, channels, days)
        return self.blocks(series.to(self.blocks[0].conv1.weight.dtype))[:, :, -1]
