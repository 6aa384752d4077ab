"""Architectures for funnels (impression -> click -> purchase), driven by each task's ``implies``.

ESMM (Ma et al., SIGIR 2018) models a dependent task as its conditional (CVR: purchase given a
click) times its parent's probability, and trains the product (CTCVR) on every impression, so
the CVR tower learns on the entire space instead of only the clicked rows it would be served
beyond. AITM (Xi et al., KDD 2021) lets each task attend to information transferred from its
parent's tower, and adds a calibrator loss that penalises a child predicted above its parent.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mtl.config import ModelConfig
from mtl.models.base import MultiTaskModel, Shared
from mtl.models.layers import BatchedMLP, Heads, InputSpec


def funnel_order(spec: InputSpec) -> list[int]:
    """Tasks ordered so every parent comes before its children."""
    order: list[int] = []

    def visit(t: int, path: tuple[int, ...]) -> None:
        if t in order:
            return
        if t in path:
            raise ValueError(f"tasks {[spec.tasks[i] for i in path]} imply each other in a cycle")
        parent = spec.parent(t)
        if parent >= 0:
            visit(parent, path + (t,))
        order.append(t)

    for t in range(len(spec.tasks)):
        visit(t, ())
    return order


def logit_from_log_prob(logp: torch.Tensor) -> torch.Tensor:
    """log p -> log(p / (1 - p)), stable for p near 0 and near 1."""
    logp = logp.clamp(max=-1e-7)
    log1m = torch.where(logp > -0.693, torch.log(-torch.expm1(logp)), torch.log1p(-torch.exp(logp)))
    return logp - log1m


def chain_probabilities(spec: InputSpec, own: torch.Tensor, order: list[int]) -> torch.Tensor:
    """(batch, tasks) conditional logits -> logits of the joint probabilities along the funnel."""
    logp: dict[int, torch.Tensor] = {}
    out = list(own.unbind(1))
    for t in order:
        if not spec.is_binary(t):
            continue
        parent = spec.parent(t)
        logp[t] = F.logsigmoid(own[:, t]) + (logp[parent] if parent >= 0 and parent in logp else 0.0)
        if parent >= 0 and parent in logp:
            out[t] = logit_from_log_prob(logp[t])
    return torch.stack(out, dim=1)


class ESMM(MultiTaskModel):
    """Entire-space multi-task model: the shared embedding is the only shared part."""

    def __init__(self, spec: InputSpec, cfg: ModelConfig):
        super().__init__(spec, cfg)
        self.order = funnel_order(spec)
        self.heads = Heads(self.n_tasks, self.d_in, (*cfg.expert_hidden, *cfg.tower_hidden), cfg.dropout, cfg.norm == "batch")
        self.last_conditional: torch.Tensor | None = None

    def represent(self, cat: torch.Tensor, num: torch.Tensor, seq: torch.Tensor | None = None,
                  text: torch.Tensor | None = None) -> Shared:
        return self.embed(cat, num, seq, text)

    def decode(self, shared: Shared) -> torch.Tensor:
        own = self.heads(shared.rep.expand(self.n_tasks, *shared.rep.shape))  # conditional logits (CVR)
        self.last_conditional = own.detach()
        return chain_probabilities(self.spec, own, self.order)

    def last_shared_layer(self) -> torch.Tensor:
        return self.embedding.table.weight


class AITM(MultiTaskModel):
    """Adaptive information transfer along the funnel, with the behavioural calibrator."""

    def __init__(self, spec: InputSpec, cfg: ModelConfig):
        super().__init__(spec, cfg)
        self.order = funnel_order(spec)
        t = self.n_tasks
        self.towers = BatchedMLP(t, self.d_in, cfg.expert_hidden, cfg.dropout, cfg.norm == "batch")
        d = self.towers.out_dim
        init = d**-0.5
        # Per task: the transfer of its parent's representation, and a 2-token self-attention.
        self.transfer = nn.Parameter(torch.empty(t, d, d).uniform_(-init, init))
        self.qkv = nn.Parameter(torch.empty(t, 3, d, d).uniform_(-init, init))
        self.heads = Heads(t, d, cfg.tower_hidden, cfg.dropout, cfg.norm == "batch")
        self.calibration_weight = cfg.calibration_weight
        self.scale = d**-0.5

    def represent(self, cat: torch.Tensor, num: torch.Tensor, seq: torch.Tensor | None = None,
                  text: torch.Tensor | None = None) -> Shared:
        return self.embed(cat, num, seq, text)

    def decode(self, shared: Shared) -> torch.Tensor:
        q = self.towers(shared.rep)  # (tasks, batch, d)
        z: dict[int, torch.Tensor] = {}
        for t in self.order:
            parent = self.spec.parent(t)
            if parent < 0:
                z[t] = q[t]
                continue
            info = torch.relu(z[parent] @ self.transfer[t])
            u = torch.stack([info, q[t]], dim=1)  # (batch, 2, d)
            qq, kk, vv = (u @ self.qkv[t, i] for i in range(3))
            w = torch.softmax((qq * kk).sum(-1) * self.scale, dim=1)  # (batch, 2)
            z[t] = (w.unsqueeze(-1) * vv).sum(1)
        return self.heads(torch.stack([z[t] for t in range(self.n_tasks)]))

    def extra_loss(self, out: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor | None:
        """Calibrator: a child (purchase) should not be predicted likelier than its parent (click)."""
        pairs = [(t, self.spec.parent(t)) for t in range(self.n_tasks)
                 if self.spec.parent(t) >= 0 and self.spec.is_binary(t)]
        if not pairs or self.calibration_weight == 0:
            return None
        p = torch.sigmoid(out.float())
        gaps = torch.stack([torch.relu(p[:, t] - p[:, parent]).mean() for t, parent in pairs])
        return self.calibration_weight * gaps.sum()

    def last_shared_layer(self) -> torch.Tensor:
        return self.embedding.table.weight
