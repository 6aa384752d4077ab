"""Per-task losses on the model's outputs, masked to the rows where each task is defined.

Binary tasks: BCE on logits (numerically stable, unlike BCE on sigmoid outputs). Regression
tasks, by their ``loss``: MSE on the standardised target; Poisson or Tweedie deviance on the
log of the mean of a count scaled by its mean (a log link); pinball for a quantile.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from mtl.config import TaskConfig

KINDS = ("binary", "mse", "poisson", "tweedie", "pinball")
MAX_LOG = 20.0  # exp of a log-link output is clamped here: an early step must not overflow


class TaskLosses:
    """(batch, tasks) outputs, labels and masks -> (tasks,) mean loss per task; a task with no
    defined rows in the batch contributes 0."""

    def __init__(self, kinds: Sequence[str], quantile: Sequence[float] | None = None,
                 power: Sequence[float] | None = None, device: torch.device | str = "cpu") -> None:
        self.kind = torch.tensor([KINDS.index(k) for k in kinds], device=device)
        self.present = set(kinds)
        self.quantile = torch.tensor(quantile or [0.5] * len(kinds), device=device)
        self.power = torch.tensor(power or [1.5] * len(kinds), device=device)

    @classmethod
    def for_tasks(cls, tasks: Sequence[TaskConfig], device: torch.device | str = "cpu") -> "TaskLosses":
        return cls(["binary" if t.type == "binary" else t.loss for t in tasks], [t.quantile or 0.5 for t in tasks],
                   [t.tweedie_power for t in tasks], device)

    def __call__(self, out: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = out.float()
        per_row = torch.zeros_like(out)
        for name in self.present:
            per_row = torch.where(self.kind == KINDS.index(name), _PER_ROW[name](self, out, labels), per_row)
        per_row = per_row * mask
        return per_row.sum(0) / mask.sum(0).clamp(min=1)


def _tweedie(losses: TaskLosses, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Tweedie deviance (up to terms without the prediction) with log link: -y mu^(1-p)/(1-p) + mu^(2-p)/(2-p)."""
    p, log_mu = losses.power, out.clamp(max=MAX_LOG)
    return -y * torch.exp(log_mu * (1 - p)) / (1 - p) + torch.exp(log_mu * (2 - p)) / (2 - p)


def _pinball(losses: TaskLosses, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    diff = y - out
    return torch.maximum(losses.quantile * diff, (losses.quantile - 1) * diff)


_PER_ROW = {
    "binary": lambda _, out, y: F.binary_cross_entropy_with_logits(out, y, reduction="none"),
    "mse": lambda _, out, y: (out - y) ** 2,
    "poisson": lambda _, out, y: torch.exp(out.clamp(max=MAX_LOG)) - y * out,
    "tweedie": _tweedie,
    "pinball": _pinball,
}


def task_losses(out: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, is_binary: torch.Tensor) -> torch.Tensor:
    """Log-loss or MSE by ``is_binary``: the losses of tasks with the default regression loss."""
    return TaskLosses(["binary" if b else "mse" for b in is_binary.tolist()], device=out.device)(out, labels, mask)
