"""FAMO, fast adaptive multitask optimization (Liu, Liu, Stone & Liu, NeurIPS 2023).

Balances the tasks' *rates* of improvement at O(1) cost per step, with no per-task gradients:
the model descends ``sum_i z_i log L_i / c`` (so task i's loss gets the weight
``z_i / (c L_i)``, normalised by ``c = sum_i z_i / L_i`` to sum to 1), with ``z = softmax(xi)``.
After the step the losses are recomputed on the same batch and the logits ``xi`` move so that
tasks whose log-loss dropped less get more weight: their gradient is the Jacobian of the
softmax applied to ``log L_before - log L_after``, fed to a separate Adam (``famo_lr``, weight
decay ``famo_decay`` as in the authors' code; 0.025 and 0.01 by default). The recomputation is
one forward pass without gradients, which is most of FAMO's overhead.
"""

from __future__ import annotations

import torch

from mtl.training.weighting.base import LossWeighting

EPS = 1e-8  # the authors' offset: losses are >= 0, so log(L + EPS) is always finite


class FAMO(LossWeighting):
    def __init__(self, tasks, cfg, model, device):
        super().__init__(tasks, cfg, model, device)
        self.logits = torch.zeros(self.n_tasks, device=self.device, requires_grad=True)
        self.opt = torch.optim.Adam([self.logits], lr=cfg.famo_lr, weight_decay=cfg.famo_decay)
        self.before: torch.Tensor | None = None

    def objective(self, losses, present):
        self.before = losses.detach().float()
        z = torch.softmax(self.logits.detach(), 0)
        d = losses.float() + EPS
        # A task absent from the batch (loss 0) is left out of c, or its z / EPS would swamp the others.
        inv = torch.where(present, z / d.detach(), 0.0)
        c = inv.sum().clamp(min=EPS)
        total = torch.where(present, z * d.log(), 0.0).sum() / c
        return total, inv / c

    def after_step(self, recompute):
        if self.before is None:
            return
        after = recompute().detach().float()
        # An absent task has loss 0 both times, so its delta is 0 and its logit is left alone.
        delta = torch.log(self.before + EPS) - torch.log(after + EPS)
        with torch.enable_grad():
            grad = torch.autograd.grad(torch.softmax(self.logits, 0), self.logits, grad_outputs=delta)[0]
        self.opt.zero_grad(set_to_none=True)
        self.logits.grad = grad
        self.opt.step()
        self.before = None
