"""PCGrad, projecting conflicting gradients (Yu, Kumar, Gupta, Levine, Hausman & Finn, NeurIPS 2020).

For each task i, and each other task j in a fresh random order: if ``g_i . g_j < 0`` remove from
``g_i`` its component along ``g_j``. The projected gradients are summed (so with no conflict the
update is exactly equal weighting's). Applied to the gradients w.r.t. the shared representation
(see ``RepGradWeighting``). Every projected ``g_i`` stays a combination of the original
gradients, so the whole procedure runs on the (tasks x tasks) Gram matrix and costs one matrix
product over the representation, however many projections happen.
"""

from __future__ import annotations

import numpy as np
import torch

from mtl.training.weighting.base import RepGradWeighting


class PCGrad(RepGradWeighting):
    def __init__(self, tasks, cfg, model, device):
        super().__init__(tasks, cfg, model, device)
        self.rng = np.random.default_rng(torch.initial_seed())

    def combine(self, grads, present):
        combined, projections = pcgrad(grads, self.rng)
        return combined, {"projections": projections}


def pcgrad(grads: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, float]:
    """(tasks, n) gradients -> ((n,) sum of the projected gradients, fraction of pairs projected)."""
    t = len(grads)
    gram = (grads @ grads.T).double().cpu().numpy()
    coef = np.eye(t)  # projected g_i = coef[i] @ grads
    projections = 0
    for i in range(t):
        for j in rng.permutation(t):
            if j == i or gram[j, j] <= 0:  # a task without rows in the batch has nothing to project on
                continue
            dot = coef[i] @ gram[:, j]
            if dot < 0:
                coef[i, j] -= dot / gram[j, j]
                projections += 1
    combined = torch.from_numpy(coef.sum(0)).to(grads) @ grads
    return combined, projections / max(t * (t - 1), 1)
