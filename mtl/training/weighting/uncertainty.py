"""Homoscedastic uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018).

Each task learns s = log(sigma^2) and contributes ``k * exp(-s) * L + s / 2``: k = 1/2 for a
regression task (Gaussian likelihood, the paper's eq. 5) and k = 1 for a binary task (the
scaled-logit approximation, eq. 10). A noisy task learns a large sigma and so a small weight;
the s/2 term stops sigma growing without bound. s is deliberately not clamped: a clamp (as in
torch-rechub) cuts s's gradient off at the bound and freezes the weight there, and the
objective needs none since exp(-s) * L + s/2 has its minimum at a finite s = log(2kL).
"""

from __future__ import annotations

import torch

from mtl.training.weighting.base import LossWeighting


class Uncertainty(LossWeighting):
    def __init__(self, tasks, cfg, model, device):
        super().__init__(tasks, cfg, model, device)
        self.log_var = torch.zeros(self.n_tasks, device=self.device, requires_grad=True)
        self.k = torch.tensor([1.0 if t.type == "binary" else 0.5 for t in tasks], device=self.device)

    def parameters(self):
        return [self.log_var]

    def objective(self, losses, present):
        weights = self.k * torch.exp(-self.log_var)
        # A task absent from the batch adds nothing, not even s/2, which would otherwise pull its
        # sigma down on batches that carry no evidence about it.
        terms = torch.where(present, weights * losses + 0.5 * self.log_var, torch.zeros_like(losses))
        return terms.sum(), weights
