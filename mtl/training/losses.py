"""Per-task losses on logits, masked to the rows where each task is defined."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def task_losses(out: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, is_binary: torch.Tensor) -> torch.Tensor:
    """(batch, tasks) outputs, labels and masks -> (tasks,) mean loss per task.

    Binary tasks: BCE on logits (numerically stable, unlike BCE on sigmoid outputs). Regression
    tasks: MSE on the standardised target. A task with no defined rows in the batch contributes 0.
    """
    out = out.float()
    bce = F.binary_cross_entropy_with_logits(out, labels, reduction="none")
    mse = (out - labels) ** 2
    per_row = torch.where(is_binary, bce, mse) * mask
    return per_row.sum(0) / mask.sum(0).clamp(min=1)
