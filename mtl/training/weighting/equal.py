"""Equal weighting: the plain sum of the task losses (LibMTL's EW), the baseline every method is judged against."""

from __future__ import annotations

import torch

from mtl.training.weighting.base import LossWeighting


class Equal(LossWeighting):
    def objective(self, losses, present):
        return losses.sum(), torch.ones_like(losses)
