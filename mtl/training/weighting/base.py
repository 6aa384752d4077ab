"""The contract every loss-balancing method meets, and the gradient helpers they share.

Two families sit behind :class:`Weighting`:

* :class:`LossWeighting` - the update is the gradient of one scalar built from the per-task
  losses (equal, static, uncertainty, DWA, FAMO); GradNorm also learns its weights from gradient
  norms on the model's last shared layer.
* :class:`RepGradWeighting` - the tasks' gradients w.r.t. the shared representation
  ``shared.rep`` (the activation every task's gradient flows through, e.g. MMoE's expert
  outputs) are combined into one (PCGrad, CAGrad). Working on the representation instead of on
  the shared *parameters* keeps the cost at one small backward per task through the
  task-specific part, and never flattens embedding tables with millions of rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from mtl.config import TaskConfig, WeightingConfig
from mtl.models.base import Shared


class Weighting:
    """Turns one step's per-task losses into gradients on the model's parameters.

    The trainer zeroes the gradients, calls :meth:`backward` (which runs the backward pass
    itself, so gradient-surgery methods can reshape what reaches the shared part) and steps the
    optimizer. :meth:`parameters` are learnable tensors of the method (uncertainty's
    log-variances, GradNorm's weights) that the trainer's optimizer must hold; :meth:`epoch_end`
    sees each epoch's mean training losses (DWA); :meth:`after_step` may recompute the losses on
    the same batch after the update (FAMO). A task with no defined rows in the batch
    (``present`` false, loss 0) must leave the method's state unchanged and never cause a
    division by zero.
    """

    def __init__(self, tasks: Sequence[TaskConfig], cfg: WeightingConfig, model: torch.nn.Module, device: torch.device):
        self.tasks = tasks
        self.n_tasks = len(tasks)
        self.cfg = cfg
        self.device = torch.device(device)

    def parameters(self) -> list[torch.Tensor]:
        return []

    def backward(
        self,
        losses: torch.Tensor,
        shared: Shared,
        model: torch.nn.Module,
        extra: torch.Tensor | None = None,
        present: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor | float]:
        """Accumulate the step's gradients into ``.grad``.

        ``losses`` (tasks,) still attached to the graph; ``extra`` the architecture's own
        regulariser, added with weight 1; ``present`` (tasks,) bool, whether each task has rows
        in this batch (all true when None). Returns ``{"weights": (tasks,) coefficient each task
        loss got}`` plus any method-specific scalar diagnostics, all detached.
        """
        raise NotImplementedError

    def epoch_end(self, train_losses: torch.Tensor) -> None:
        """Called with the epoch's (tasks,) mean training losses."""

    def state_dict(self) -> dict:
        """The method's learnt state (tensors, tensor lists, its own optimizer) for checkpoints."""
        state: dict = {}
        for key, value in vars(self).items():
            if isinstance(value, torch.Tensor):
                state[key] = value.detach().cpu().clone()
            elif isinstance(value, list) and all(isinstance(v, torch.Tensor) for v in value):
                state[key] = [v.detach().cpu().clone() for v in value]
            elif isinstance(value, torch.optim.Optimizer):
                state[key] = value.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            current = getattr(self, key, None)
            if isinstance(current, torch.Tensor):
                with torch.no_grad():  # in place: the trainer's optimizer holds these very tensors
                    current.copy_(value.to(current.device))
            elif isinstance(current, torch.optim.Optimizer):
                current.load_state_dict(value)
            else:
                setattr(self, key, [v.to(self.device) for v in value])

    def after_step(self, recompute: Callable[[], torch.Tensor]) -> None:
        """Called after the optimizer step; ``recompute()`` gives the batch's losses again (no grad)."""


class LossWeighting(Weighting):
    """Methods whose update is the gradient of one scalar built from the losses."""

    def objective(self, losses: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the scalar to differentiate, the (tasks,) coefficient on each task loss)."""
        raise NotImplementedError

    def backward(self, losses, shared, model, extra=None, present=None):
        total, weights = self.objective(losses, present_mask(losses, present))
        with_extra(total, extra).backward()
        return {"weights": weights.detach()}


class RepGradWeighting(Weighting):
    """Methods that combine the tasks' gradients w.r.t. the shared representation.

    The combined gradient replaces, where it enters the shared part (a hook on ``shared.rep``),
    the plain sum of the task gradients; so the shared parameters under ``shared.rep`` (experts,
    and the embedding below them) receive it exactly once, while the task-specific parameters
    (gates, towers, heads) get each task's own unweighted gradient from the same single backward
    pass of the summed losses. An architecture regulariser's gradient on ``shared.rep`` is kept
    as it is. Gradients that reach shared parameters *around* ``shared.rep`` (MMoE's gates read
    the embedded input) are left alone: they belong to task-specific modules.
    """

    def combine(self, grads: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """(tasks, n) float32 per-task gradients -> ((n,) combined gradient, scalar diagnostics)."""
        raise NotImplementedError

    def backward(self, losses, shared, model, extra=None, present=None):
        rep = shared_rep(shared)
        grads = task_grads(losses, rep)
        combined, stats = self.combine(grads.float(), present_mask(losses, present))
        combined = combined.to(rep.dtype).view_as(rep)
        if extra is None:
            swap = lambda g: combined  # noqa: E731
        else:
            task_sum = grads.sum(0).view_as(rep)
            swap = lambda g: g - task_sum + combined  # noqa: E731 - keep the regulariser's part
        handle = rep.register_hook(swap)
        try:
            with_extra(losses.sum(), extra).backward()
        finally:
            handle.remove()
        return {"weights": torch.ones(self.n_tasks, device=losses.device), **stats}


def shared_rep(shared: Shared) -> torch.Tensor:
    if not shared.rep.requires_grad:
        raise RuntimeError(
            "shared.rep does not require grad: an architecture's represent() must return, as rep, "
            "the tensor all tasks' gradients flow through (computed from trainable parameters)"
        )
    return shared.rep


def task_grads(losses: torch.Tensor, rep: torch.Tensor) -> torch.Tensor:
    """(tasks, rep.numel()): the gradient of each task's loss w.r.t. ``rep`` (the graph is kept).

    One partial backward per task through the task-specific part only: autograd stops at
    ``rep`` and never walks the shared layers below it.
    """
    rows = []
    for loss in losses:
        g = torch.autograd.grad(loss, rep, retain_graph=True, allow_unused=True)[0] if loss.requires_grad else None
        rows.append(torch.zeros_like(rep) if g is None else g)
    return torch.stack(rows).reshape(len(rows), -1)


def gradient_conflict(losses: torch.Tensor, shared: Shared) -> dict[tuple[int, int], float | None]:
    """Cosine between each pair of tasks' gradients on the shared representation.

    Negative means the two tasks pull the shared part in opposing directions (what PCGrad and
    CAGrad act on). None where a task has no gradient in this batch (no defined rows).
    """
    g = task_grads(losses, shared_rep(shared)).float()
    gram = (g @ g.T).double().cpu()
    norms = gram.diagonal().clamp(min=0).sqrt()
    out: dict[tuple[int, int], float | None] = {}
    for i in range(len(g)):
        for j in range(i + 1, len(g)):
            ok = norms[i] > 0 and norms[j] > 0
            out[(i, j)] = float(gram[i, j] / (norms[i] * norms[j])) if ok else None
    return out


def present_mask(losses: torch.Tensor, present: torch.Tensor | None) -> torch.Tensor:
    return torch.ones(len(losses), dtype=torch.bool, device=losses.device) if present is None else present


def with_extra(total: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
    return total if extra is None else total + extra
