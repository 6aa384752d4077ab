"""What every architecture shares: the input embedding, and a split into shared and task parts.

An architecture is ``represent`` (the shared part: embedding, shared bottom or experts) followed
by ``decode`` (gates, towers, heads: task-specific). The split is what lets a loss-balancing
method act on the gradients of the *shared representation*, the tensor every task's gradient
flows through, instead of on flattened embedding tables; ``last_shared_layer`` is the weight
GradNorm measures. ``forward`` is the two composed, returning (batch, tasks) logits for binary
tasks and standardised values for regression tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mtl.config import ModelConfig
from mtl.models.layers import FusedEmbedding, InputSpec


@dataclass
class Shared:
    rep: torch.Tensor  # the shared representation (its per-task gradients are what balancing combines)
    x: torch.Tensor  # the embedded input, (batch, d_in)
    scenario: torch.Tensor | None = None  # scenario ids, for scenario-aware gates
    ctx: dict | None = None  # whatever else an architecture's decode needs (PLE's per-task inputs)


class MultiTaskModel(nn.Module):
    def __init__(self, spec: InputSpec, cfg: ModelConfig):
        super().__init__()
        self.spec = spec
        self.cfg = cfg
        self.n_tasks = len(spec.tasks)
        self.embedding = FusedEmbedding(spec.cardinalities, cfg.embedding_dim)
        self.d_in = self.embedding.out_dim + spec.n_numeric
        # Diagnostics: when set, gated architectures keep their last (tasks, batch, experts) gates.
        self.record_gates = False
        self.last_gates: torch.Tensor | None = None

    def embed(self, cat: torch.Tensor, num: torch.Tensor) -> Shared:
        x = torch.cat([self.embedding(cat), num.to(self.embedding.table.weight.dtype)], dim=1)
        scenario = cat[:, self.spec.scenario_input] if self.spec.scenario_input >= 0 else None
        return Shared(x, x, scenario)

    def represent(self, cat: torch.Tensor, num: torch.Tensor) -> Shared:
        raise NotImplementedError

    def decode(self, shared: Shared) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        return self.decode(self.represent(cat, num))

    def last_shared_layer(self) -> torch.Tensor:
        """The weight of the last layer all tasks share (GradNorm measures gradient norms here)."""
        raise NotImplementedError

    def extra_loss(self, out: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor | None:
        """An architecture's own regulariser (AITM's calibration), added to the weighted task losses."""
        return None

    def _keep_gates(self, gates: torch.Tensor) -> None:
        if self.record_gates:
            self.last_gates = gates.detach()
