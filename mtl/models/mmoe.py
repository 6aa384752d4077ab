"""Multi-gate Mixture-of-Experts (Ma et al., KDD 2018).

Experts are shared by all tasks; each task mixes them with its own softmax gate, so tasks that
agree share experts and tasks that conflict can specialise. All experts run in one batched
matmul, and so do all towers. With ``model.scenario_gating`` the scenario's embedding is fed to
the gates as well, so each scenario (app surface, country) can weight the experts differently.
"""

from __future__ import annotations

import torch

from mtl.config import ModelConfig
from mtl.models.base import MultiTaskModel, Shared
from mtl.models.layers import BatchedMLP, Heads, InputSpec, ScenarioGates


class MMoE(MultiTaskModel):
    def __init__(self, spec: InputSpec, cfg: ModelConfig):
        super().__init__(spec, cfg)
        self.experts = BatchedMLP(cfg.experts, self.d_in, cfg.expert_hidden, cfg.dropout, cfg.norm == "batch")
        self.gates = ScenarioGates(self.d_in, self.n_tasks, cfg.experts, spec, cfg)
        self.heads = Heads(self.n_tasks, self.experts.out_dim, cfg.tower_hidden, cfg.dropout, cfg.norm == "batch")
        self.n_experts = cfg.experts

    def represent(self, cat: torch.Tensor, num: torch.Tensor, seq: torch.Tensor | None = None,
                  text: torch.Tensor | None = None) -> Shared:
        s = self.embed(cat, num, seq, text)
        s.rep = self.experts(s.x)  # (experts, batch, d): what every task's gradient flows through
        return s

    def decode(self, shared: Shared) -> torch.Tensor:
        gates = self.gates(shared.x, shared.scenario)  # (tasks, batch, experts)
        self._keep_gates(gates)
        mixed = torch.einsum("tbe,ebd->tbd", gates, shared.rep)
        return self.heads(mixed)

    def last_shared_layer(self) -> torch.Tensor:
        return self.experts.weights[-1]
