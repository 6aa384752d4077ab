"""Progressive Layered Extraction (Tang et al., RecSys 2020) and its one-level form, CGC.

Each level has ``experts`` shared experts and ``task_experts`` experts per task. A task's gate
mixes its own experts with the shared ones; between levels a shared gate mixes every expert
into the next level's shared input. Explicitly separating task-owned and shared experts curbs
the "seesaw" where improving one task hurts another. All experts of a level run as one batched
matmul: each expert is fed its group's input (a task's, or the shared one) by indexing.
"""

from __future__ import annotations

import torch
from torch import nn

from mtl.config import ModelConfig
from mtl.models.base import MultiTaskModel, Shared
from mtl.models.layers import BatchedMLP, Heads, InputSpec


class _Level(nn.Module):
    def __init__(self, d_in: int, spec: InputSpec, cfg: ModelConfig, last: bool):
        super().__init__()
        t, es, et = len(spec.tasks), cfg.experts, cfg.task_experts
        self.n_tasks, self.es, self.et = t, es, et
        n = t * et + es
        # Expert j reads group[j]'s input: tasks 0..t-1 own et experts each, group t is shared.
        group = torch.cat([torch.arange(t).repeat_interleave(et), torch.full((es,), t)])
        self.register_buffer("group", group, persistent=False)
        own = torch.arange(t * et).view(t, et)
        shared = torch.arange(t * et, n).expand(t, es)
        self.register_buffer("pick", torch.cat([own, shared], dim=1), persistent=False)  # (t, et + es)
        self.experts = BatchedMLP(n, d_in, cfg.expert_hidden, cfg.dropout, cfg.norm == "batch")
        k = et + es
        self.task_gate_w = nn.Parameter(torch.empty(t, d_in, k).uniform_(-(d_in**-0.5), d_in**-0.5))
        self.task_gate_b = nn.Parameter(torch.zeros(t, 1, k))
        self.shared_gate = None if last else nn.Linear(d_in, n)
        self.scenario = None
        if cfg.scenario_gating and spec.scenario_input >= 0:
            self.scenario = nn.Embedding(spec.cardinalities[spec.scenario_input], t * k)
            nn.init.zeros_(self.scenario.weight)
        self.out_dim = self.experts.out_dim

    def run_experts(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs (tasks + 1, batch, d): per-task inputs then the shared one -> (experts, batch, d_out)."""
        return self.experts(inputs[self.group])

    def task_mix(self, inputs: torch.Tensor, out: torch.Tensor, scenario: torch.Tensor | None) -> tuple:
        logits = torch.bmm(inputs[: self.n_tasks], self.task_gate_w) + self.task_gate_b  # (t, batch, k)
        if self.scenario is not None and scenario is not None:
            logits = logits + self.scenario(scenario).view(-1, self.n_tasks, logits.shape[-1]).transpose(0, 1)
        gates = logits.softmax(-1)
        mixed = torch.einsum("tbk,tkbd->tbd", gates, out[self.pick])
        return mixed, gates

    def shared_mix(self, inputs: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        gates = self.shared_gate(inputs[self.n_tasks]).softmax(-1)  # (batch, experts)
        return torch.einsum("be,ebd->bd", gates, out)


class PLE(MultiTaskModel):
    def __init__(self, spec: InputSpec, cfg: ModelConfig, levels: int | None = None):
        super().__init__(spec, cfg)
        levels = cfg.levels if levels is None else levels
        dims = [self.d_in]
        self.levels = nn.ModuleList()
        for i in range(levels):
            level = _Level(dims[-1], spec, cfg, last=i == levels - 1)
            self.levels.append(level)
            dims.append(level.out_dim)
        self.heads = Heads(self.n_tasks, dims[-1], cfg.tower_hidden, cfg.dropout, cfg.norm == "batch")

    def represent(self, cat: torch.Tensor, num: torch.Tensor, seq: torch.Tensor | None = None,
                  text: torch.Tensor | None = None) -> Shared:
        s = self.embed(cat, num, seq, text)
        inputs = s.x.expand(self.n_tasks + 1, *s.x.shape)
        for level in self.levels[:-1]:
            out = level.run_experts(inputs)
            mixed, gates = level.task_mix(inputs, out, s.scenario)
            inputs = torch.cat([mixed, level.shared_mix(inputs, out).unsqueeze(0)], dim=0)
        s.rep = self.levels[-1].run_experts(inputs)  # (experts, batch, d) of the last level
        s.ctx = {"inputs": inputs}
        return s

    def decode(self, shared: Shared) -> torch.Tensor:
        mixed, gates = self.levels[-1].task_mix(shared.ctx["inputs"], shared.rep, shared.scenario)
        self._keep_gates(gates)
        return self.heads(mixed)

    def last_shared_layer(self) -> torch.Tensor:
        return self.levels[-1].experts.weights[-1]


class CGC(PLE):
    """Customized Gate Control: PLE with a single extraction level."""

    def __init__(self, spec: InputSpec, cfg: ModelConfig):
        super().__init__(spec, cfg, levels=1)
