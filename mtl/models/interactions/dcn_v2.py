"""DCN-V2 cross network (Wang et al., WWW 2021), stacked in front of the architecture.

Each cross layer computes x_{l+1} = x_0 * (U_l V_l^T x_l + b_l) + x_l: a feature-wise product of
the input with a learnt linear map of the current layer, so layer l holds polynomial crosses of
degree l + 1 of every input coordinate, and the residual keeps the lower degrees. ``model.cross.rank``
makes W = U V^T low-rank (the paper's cost-saving form; null: a full d x d matrix). The output
has the input's width and replaces it as the experts' input.
"""

from __future__ import annotations

import torch
from torch import nn

from mtl.models.interactions.base import Interaction


class CrossNetV2(Interaction):
    def __init__(self, n_fields: int, dim: int, n_numeric: int, d_in: int, copies: int, cfg) -> None:
        super().__init__(n_fields, dim, n_numeric, d_in, copies, cfg)
        layers, rank = cfg.cross.layers, cfg.cross.rank
        self.low_rank = rank is not None and rank < d_in
        shapes = [(d_in, rank), (rank, d_in)] if self.low_rank else [(d_in, d_in)]
        self.maps = nn.ParameterList()
        for _ in range(layers):
            for a, b in shapes:
                self.maps.append(nn.Parameter(torch.empty(copies, a, b).uniform_(-(a**-0.5), a**-0.5)))
        self.biases = nn.Parameter(torch.zeros(layers, copies, 1, d_in))
        self.per_layer = len(shapes)

    def forward(self, fields: torch.Tensor, num: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        x0 = xl = x
        for layer in range(len(self.biases)):
            h = xl
            for w in self.maps[layer * self.per_layer:(layer + 1) * self.per_layer]:
                h = torch.bmm(h, w.to(h.dtype))
            xl = x0 * (h + self.biases[layer].to(h.dtype)) + xl
        return xl
