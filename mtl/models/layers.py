"""Building blocks shared by the architectures."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class InputSpec:
    """What the model sees, fixed by the fitted transform and the tasks; saved in every checkpoint."""

    cardinalities: tuple[int, ...]  # embedding rows per categorical column (OOV included)
    n_numeric: int
    tasks: tuple[str, ...]
    task_types: tuple[str, ...] = ()  # "binary" | "regression" per task (empty: all binary)
    # Index of the task each task implies (the funnel: purchase implies click), -1 for none.
    # ESMM and AITM use it to chain towers; the other architectures ignore it.
    parents: tuple[int, ...] = ()
    # Which categorical input is the scenario (-1: none), for scenario-aware gates.
    scenario_input: int = -1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "InputSpec":
        return cls(tuple(d["cardinalities"]), int(d["n_numeric"]), tuple(d["tasks"]),
                   tuple(d.get("task_types", ())), tuple(d.get("parents", ())), int(d.get("scenario_input", -1)))

    @classmethod
    def from_tasks(cls, cardinalities, n_numeric: int, tasks: list[dict], scenario_input: int = -1) -> "InputSpec":
        names = [t["name"] for t in tasks]
        by_label = {t["label"]: i for i, t in enumerate(tasks)}
        parents = tuple(by_label.get(t.get("implies"), -1) if t.get("implies") else -1 for t in tasks)
        return cls(tuple(cardinalities), int(n_numeric), tuple(names), tuple(t["type"] for t in tasks), parents,
                   scenario_input)

    def parent(self, task: int) -> int:
        return self.parents[task] if self.parents else -1

    def is_binary(self, task: int) -> bool:
        return not self.task_types or self.task_types[task] == "binary"


class FusedEmbedding(nn.Module):
    """All categorical columns in one table, addressed with per-column offsets.

    One embedding lookup per batch instead of one per column: fewer kernel launches, and one
    parameter tensor for the optimizer.
    """

    def __init__(self, cardinalities: tuple[int, ...], dim: int):
        super().__init__()
        offsets = torch.tensor([0, *cardinalities[:-1]], dtype=torch.long).cumsum(0)
        self.register_buffer("offsets", offsets, persistent=False)
        self.table = nn.Embedding(int(sum(cardinalities)), dim)
        nn.init.normal_(self.table.weight, std=0.05)
        self.out_dim = len(cardinalities) * dim

    def forward(self, cat: torch.Tensor) -> torch.Tensor:
        return self.table(cat + self.offsets).flatten(1)


class BatchedMLP(nn.Module):
    """``n`` independent MLPs of identical shape evaluated as batched matmuls, not a Python loop.

    Input (batch, d_in) shared by all, or (n, batch, d_in); output (n, batch, d_out).
    """

    def __init__(self, n: int, d_in: int, hidden: tuple[int, ...], dropout: float = 0.0):
        super().__init__()
        dims = (d_in, *hidden)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(dims[:-1], dims[1:]):
            w = torch.empty(n, a, b)
            for i in range(n):  # same init as n separate nn.Linear layers
                nn.init.kaiming_uniform_(w[i].T, a=5**0.5)
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.empty(n, 1, b).uniform_(-(a**-0.5), a**-0.5)))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.out_dim = dims[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for w, b in zip(self.weights, self.biases):
            # (batch, a) @ (n, a, b) broadcasts to (n, batch, b); (n, batch, a) @ (n, a, b) is a bmm.
            x = self.dropout(torch.relu(torch.matmul(x, w) + b))
        return x


class Heads(nn.Module):
    """One tower per task ending in a single logit (or regression value), batched across tasks."""

    def __init__(self, n_tasks: int, d_in: int, hidden: tuple[int, ...], dropout: float = 0.0):
        super().__init__()
        self.towers = BatchedMLP(n_tasks, d_in, hidden, dropout) if hidden else None
        d = hidden[-1] if hidden else d_in
        self.out_w = nn.Parameter(torch.empty(n_tasks, d, 1).uniform_(-(d**-0.5), d**-0.5))
        self.out_b = nn.Parameter(torch.zeros(n_tasks, 1, 1))

    def forward(self, per_task: torch.Tensor) -> torch.Tensor:
        """(tasks, batch, d) -> (batch, tasks)."""
        h = self.towers(per_task) if self.towers is not None else per_task
        return (torch.bmm(h, self.out_w) + self.out_b).squeeze(-1).T


class ScenarioGates(nn.Module):
    """Softmax gates over experts for several tasks at once: (batch, d_in) -> (tasks, batch, experts).

    With ``scenario_gating`` (and a scenario input) each scenario adds its own learned gate
    logits, so the mix of experts can differ between surfaces or countries.
    """

    def __init__(self, d_in: int, n_tasks: int, n_experts: int, spec: InputSpec, cfg) -> None:
        super().__init__()
        self.n_tasks, self.n_experts = n_tasks, n_experts
        self.linear = nn.Linear(d_in, n_tasks * n_experts)
        self.scenario = None
        if getattr(cfg, "scenario_gating", False) and spec.scenario_input >= 0:
            self.scenario = nn.Embedding(spec.cardinalities[spec.scenario_input], n_tasks * n_experts)
            nn.init.zeros_(self.scenario.weight)  # starts as plain MMoE gates

    def forward(self, x: torch.Tensor, scenario: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.linear(x)
        if self.scenario is not None and scenario is not None:
            logits = logits + self.scenario(scenario)
        return logits.view(x.shape[0], self.n_tasks, self.n_experts).softmax(-1).transpose(0, 1)
