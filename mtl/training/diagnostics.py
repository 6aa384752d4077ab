"""What a trained multi-task model is doing inside, logged next to its metrics.

Expert utilisation: for gated architectures (MMoE, CGC, PLE), the mean gate weight each task
puts on each expert over a sample of validation rows. Tasks that share experts agree; a task
whose gate collapses onto one expert (or ignores the shared ones) tells you the architecture is
not sharing the way you think.
"""

from __future__ import annotations

import numpy as np
import torch

from mtl.data.features import Arrays


@torch.no_grad()
def expert_utilisation(model: torch.nn.Module, arrays: Arrays, rows: int = 8192,
                       text_table: np.ndarray | None = None) -> dict[str, list[float]]:
    """task -> mean gate weight per expert (empty for architectures without gates)."""
    if not hasattr(model, "record_gates") or len(arrays) == 0:
        return {}
    model.eval()
    model.record_gates, model.last_gates = True, None
    try:
        from mtl.training.loop import TextVectors

        seq, text = TextVectors(text_table, torch.device("cpu"))(torch.from_numpy(np.array(arrays.seq[:rows])),
                                                                  torch.from_numpy(np.array(arrays.text[:rows])))
        model(torch.from_numpy(np.array(arrays.cat[:rows])), torch.from_numpy(np.array(arrays.num[:rows])), seq, text)
        gates = model.last_gates
    finally:
        model.record_gates = False
    if gates is None:
        return {}
    means = gates.float().mean(dim=1)  # (tasks, experts)
    return {task: [round(float(v), 4) for v in means[i]] for i, task in enumerate(model.spec.tasks)}
