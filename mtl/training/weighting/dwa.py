"""Dynamic Weight Average (Liu, Johns & Davison, CVPR 2019).

``w_i = n_tasks * softmax(r / T)_i`` with ``r_i = L_i(e-1) / L_i(e-2)``, the ratio of the task's
mean training loss over the last two epochs: a task whose loss fell more slowly gets more
weight. Weights are 1 for the first two epochs (no ratio yet). ``T`` is
``train.weighting.dwa_temperature`` (2 in the paper); a larger T pulls the weights towards equal.
"""

from __future__ import annotations

import torch

from mtl.training.weighting.base import LossWeighting


class DWA(LossWeighting):
    def __init__(self, tasks, cfg, model, device):
        super().__init__(tasks, cfg, model, device)
        self.w = torch.ones(self.n_tasks, device=self.device)
        self.previous: list[torch.Tensor] = []

    def epoch_end(self, train_losses):
        self.previous = (self.previous + [train_losses.detach().float().to(self.device)])[-2:]
        if len(self.previous) == 2:
            self.w = dwa_weights(*self.previous, self.cfg.dwa_temperature)

    def objective(self, losses, present):
        return (self.w * losses).sum(), self.w


def dwa_weights(before: torch.Tensor, last: torch.Tensor, temperature: float) -> torch.Tensor:
    """Weights from the mean losses of the epoch before last and of the last epoch."""
    # A task with no defined rows in an epoch (loss 0) gets the neutral ratio 1.
    ratio = torch.where(before > 0, last / torch.where(before > 0, before, 1.0), 1.0)
    return len(ratio) * torch.softmax(ratio / temperature, 0)
