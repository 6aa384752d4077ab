"""Shared-Bottom (Caruana, 1997): one MLP shared by every task, then one tower per task.

The simplest hard parameter sharing; the baseline every gated architecture has to beat.
"""

from __future__ import annotations

import torch

from mtl.config import ModelConfig
from mtl.models.base import MultiTaskModel, Shared
from mtl.models.layers import BatchedMLP, Heads, InputSpec


class SharedBottom(MultiTaskModel):
    def __init__(self, spec: InputSpec, cfg: ModelConfig):
        super().__init__(spec, cfg)
        self.bottom = BatchedMLP(1, self.d_in, cfg.expert_hidden, cfg.dropout, cfg.norm == "batch")
        self.heads = Heads(self.n_tasks, self.bottom.out_dim, cfg.tower_hidden, cfg.dropout, cfg.norm == "batch")

    def represent(self, cat: torch.Tensor, num: torch.Tensor, seq: torch.Tensor | None = None,
                  text: torch.Tensor | None = None) -> Shared:
        s = self.embed(cat, num, seq, text)
        s.rep = self.bottom(s.x)[0]  # (batch, d)
        return s

    def decode(self, shared: Shared) -> torch.Tensor:
        return self.heads(shared.rep.expand(self.n_tasks, *shared.rep.shape))

    def last_shared_layer(self) -> torch.Tensor:
        return self.bottom.weights[-1]
