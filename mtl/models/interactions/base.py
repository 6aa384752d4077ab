"""What an interaction layer sees and returns.

Input: the field vectors ``(copies, batch, fields, dim)`` (one embedding per categorical column,
plus the history vector and text projections of the same width) and the flat input
``(copies, batch, d_in)`` the architecture would otherwise read (the same fields flattened, plus
the numeric columns). Output: ``(copies, batch, out_dim)``, the architecture's new input.
``copies`` is 1 for the shared architectures and the number of tasks for the single-task
baseline, whose copies never share a parameter.
"""

from __future__ import annotations

import torch
from torch import nn


class Interaction(nn.Module):
    def __init__(self, n_fields: int, dim: int, n_numeric: int, d_in: int, copies: int, cfg) -> None:
        super().__init__()
        self.out_dim = d_in

    def forward(self, fields: torch.Tensor, num: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """fields (copies, batch, fields, dim), num (batch, numeric), x (copies, batch, d_in)."""
        raise NotImplementedError
