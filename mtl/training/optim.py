"""Optimizers: Adam for the dense layers, and a row-wise lazy Adam for embedding tables.

Dense Adam updates every row of an embedding table at every step, and a row a batch did not
look up keeps moving on its stale momentum: for an id seen once, m decays ten times faster than
v, so the one gradient becomes a run of steps totalling about 30 learning rates. Rare ids,
most of a user or item table, are thrown far on a single example and overfit within an epoch.
The lazy form (TensorFlow's LazyAdam, torch's SparseAdam) updates only the rows the batch looked
up, with per-row moments and per-row bias correction, so a row moves by about one learning rate
per time it is seen. It takes the table's ordinary dense gradient (rows not looked up are
exactly zero), so it works unchanged under autocast, DDP and on any device.
"""

from __future__ import annotations

import math

import torch


class LazyAdam(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.to_dense() if p.grad.is_sparse else p.grad
                rows = grad.abs().amax(dim=1).nonzero().squeeze(1)  # the rows this batch touched
                if not len(rows):
                    continue
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                    state["row_steps"] = torch.zeros(p.shape[0], device=p.device)
                g = grad[rows]
                steps = state["row_steps"][rows] + 1
                state["row_steps"][rows] = steps
                m = state["exp_avg"][rows].mul_(b1).add_(g, alpha=1 - b1)
                v = state["exp_avg_sq"][rows].mul_(b2).addcmul_(g, g, value=1 - b2)
                state["exp_avg"][rows], state["exp_avg_sq"][rows] = m, v
                m_hat = m / (1 - b1 ** steps).unsqueeze(1)
                v_hat = v / (1 - b2 ** steps).unsqueeze(1)
                p[rows] -= group["lr"] * m_hat / (v_hat.sqrt() + group["eps"])
        return None


class Optimizers:
    """Several optimizers stepped as one (the dense layers' Adam and the tables' lazy Adam)."""

    def __init__(self, *optimizers: torch.optim.Optimizer):
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list[dict]:
        return [g for o in self.optimizers for g in o.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.optimizers:
            o.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for o in self.optimizers:
            o.step()

    def state_dict(self) -> list[dict]:
        return [o.state_dict() for o in self.optimizers]

    def load_state_dict(self, states: list[dict]) -> None:
        for o, s in zip(self.optimizers, states, strict=True):
            o.load_state_dict(s)


def build_optimizer(model: torch.nn.Module, extra: list[torch.Tensor], tc) -> Optimizers:
    """Adam over the model (and ``extra``: learnt loss weights, never decayed), with the
    embedding table on its own lazy Adam when train.embedding_optimizer is lazy_adam."""
    table = model.embedding.table.weight
    lazy = tc.embedding_optimizer == "lazy_adam"
    dense = [p for p in model.parameters() if not (lazy and p is table)]
    groups = [{"params": dense}]
    if extra:
        groups.append({"params": extra, "weight_decay": 0.0})
    # The fused kernel is several times faster than the per-tensor loop on CPU and GPU alike.
    optimizers = [torch.optim.Adam(groups, lr=tc.learning_rate, weight_decay=tc.weight_decay, fused=True)]
    if lazy:
        optimizers.append(LazyAdam([table], lr=tc.learning_rate))
    return Optimizers(*optimizers)


class Schedule:
    """train.lr_schedule, step by step: every group's rate is its initial rate times a factor
    (constant: 1; cosine: from 1 down to 0 at ``total_steps``)."""

    def __init__(self, optimizer: Optimizers, kind: str, total_steps: int):
        self.optimizer, self.kind, self.total = optimizer, kind, max(total_steps, 1)
        self.base = [g["lr"] for g in optimizer.param_groups]
        self.steps = 0

    def factor(self) -> float:
        if self.kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(self.steps, self.total) / self.total))
        return 1.0

    def step(self) -> None:
        self.steps += 1
        for group, base in zip(self.optimizer.param_groups, self.base):
            group["lr"] = base * self.factor()

    def state_dict(self) -> dict:
        return {"steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.steps = state["steps"] - 1
        self.step()
