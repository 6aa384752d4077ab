"""GradNorm (Chen, Badrinarayanan, Lee & Rabinovich, ICML 2018).

Learns the loss weights so that each task's gradient norm on the last layer all tasks share,
``G_i = ||d(w_i L_i)/dW||`` with ``W = model.last_shared_layer()``, tracks the mean norm scaled by
the task's relative inverse training rate: target ``mean(G) * r_i ** alpha`` with
``r_i = (L_i / L_i(0)) / mean_j(L_j / L_j(0))``, so a task that has trained less gets a larger
gradient. The weights follow the gradient of ``sum_i |G_i - target_i|`` (the target held
constant) with the trainer's optimizer, and are renormalised to sum to ``n_tasks`` before each
step. ``alpha`` is ``train.weighting.gradnorm_alpha``: 0 equalises the norms, larger values
restore training rates more strongly.
"""

from __future__ import annotations

import torch

from mtl.training.weighting.base import Weighting, present_mask, with_extra

# Weights are kept positive: a weight the optimizer pushed to or below zero would flip or drop its task.
MIN_WEIGHT = 1e-3


class GradNorm(Weighting):
    def __init__(self, tasks, cfg, model, device):
        super().__init__(tasks, cfg, model, device)
        self.w = torch.ones(self.n_tasks, device=self.device, requires_grad=True)
        # L_i(0): the task's loss on the first batch where it had rows (0 until then).
        self.initial = torch.zeros(self.n_tasks, device=self.device)

    def parameters(self):
        return [self.w]

    def backward(self, losses, shared, model, extra=None, present=None):
        present = present_mask(losses, present)
        with torch.no_grad():
            self.w.clamp_(min=MIN_WEIGHT).mul_(self.n_tasks / self.w.sum())
            self.initial = torch.where(present & (self.initial == 0), losses.detach().float(), self.initial)
        weights = self.w.detach().clone()
        layer = model.last_shared_layer()
        norms = torch.stack([_grad_norm(loss, layer) for loss in losses])
        self.w.grad = torch.autograd.grad(gradnorm_loss(self.w, norms, losses.detach(), self.initial, present,
                                                        self.cfg.gradnorm_alpha), self.w)[0]
        with_extra((weights * losses).sum(), extra).backward()
        return {"weights": weights}


def gradnorm_loss(w, norms, losses, initial, present, alpha: float) -> torch.Tensor:
    """``sum_i |w_i * norms_i - target_i|`` over the tasks present; differentiable in ``w`` only.

    Written with masks rather than indexing so that it needs no host sync on a GPU; with fewer
    than two tasks present it is 0 (nothing to balance).
    """
    p = present.float()
    n = p.sum().clamp(min=1)
    g = w * norms.float()
    rate = torch.where(present & (initial > 0), losses.float() / torch.where(initial > 0, initial, 1.0), 0.0)
    mean_rate = (rate * p).sum() / n
    rel = torch.where(mean_rate > 0, rate / torch.where(mean_rate > 0, mean_rate, 1.0), 1.0)
    target = ((g * p).sum() / n).detach() * rel**alpha
    return ((g - target).abs() * p).sum()


def _grad_norm(loss: torch.Tensor, layer: torch.Tensor) -> torch.Tensor:
    g = torch.autograd.grad(loss, layer, retain_graph=True, allow_unused=True)[0] if loss.requires_grad else None
    return torch.zeros((), device=layer.device) if g is None else g.float().norm()
