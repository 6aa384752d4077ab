"""No explicit interaction: the architecture reads the flat embedded input, as before."""

from __future__ import annotations

import torch

from mtl.models.interactions.base import Interaction


class NoInteraction(Interaction):
    def forward(self, fields: torch.Tensor, num: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x
