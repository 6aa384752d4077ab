"""Static weights: each task's loss times the ``weight`` of its task spec (1 unless set)."""

from __future__ import annotations

import torch

from mtl.training.weighting.base import LossWeighting


class Static(LossWeighting):
    def __init__(self, tasks, cfg, model, device):
        super().__init__(tasks, cfg, model, device)
        self.w = torch.tensor([t.weight for t in tasks], device=self.device)

    def objective(self, losses, present):
        return (self.w * losses).sum(), self.w
