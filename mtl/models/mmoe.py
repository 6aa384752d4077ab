"""Multi-gate Mixture-of-Experts (Ma et al., KDD 2018).

Experts are shared by all tasks; each task mixes them with its own softmax gate, so tasks that
agree share experts and tasks that conflict can specialise. All experts run in one batched
matmul, and so do all towers.
"""

from __future__ import annotations

import torch
from torch import nn

from mtl.config import ModelConfig
from mtl.models.layers import BatchedMLP, FusedEmbedding, Heads, InputSpec


class MMoE(nn.Module):
    def __init__(self, spec: InputSpec, cfg: ModelConfig):
        super().__init__()
        self.spec = spec
        self.embedding = FusedEmbedding(spec.cardinalities, cfg.embedding_dim)
        d_in = self.embedding.out_dim + spec.n_numeric
        self.experts = BatchedMLP(cfg.experts, d_in, cfg.expert_hidden, cfg.dropout)
        self.gates = nn.Linear(d_in, cfg.experts * len(spec.tasks))
        self.heads = Heads(len(spec.tasks), self.experts.out_dim, cfg.tower_hidden, cfg.dropout)
        self.n_experts = cfg.experts

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        """Returns (batch, tasks): logits for binary tasks, standardised values for regression."""
        x = torch.cat([self.embedding(cat), num], dim=1)
        experts = self.experts(x)  # (experts, batch, d)
        gates = self.gates(x).view(x.shape[0], len(self.spec.tasks), self.n_experts).softmax(-1)
        mixed = torch.einsum("bte,ebd->tbd", gates, experts)
        return self.heads(mixed)
