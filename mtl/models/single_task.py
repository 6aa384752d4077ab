"""Single-task baseline: one independent model per task, trained side by side.

Each task gets its own slice of the embedding table and its own MLP and head; no parameter is
shared, so nothing one task learns reaches another. This is the reference the multi-task
architectures must beat, above all on sparse tasks (purchase) that borrow strength from dense
ones (click). Batched across tasks, so it costs one model's worth of kernel launches.
"""

from __future__ import annotations

import torch

from mtl.config import ModelConfig
from mtl.models.base import MultiTaskModel, Shared
from mtl.models.layers import BatchedMLP, FusedEmbedding, Heads, InputSpec


class SingleTask(MultiTaskModel):
    def __init__(self, spec: InputSpec, cfg: ModelConfig):
        super().__init__(spec, cfg)
        # One table of width dim * tasks: task t only ever reads (and so only trains) its own slice.
        self.embedding = FusedEmbedding(spec.cardinalities, cfg.embedding_dim * self.n_tasks)
        # One history encoder, text projection and interaction per task.
        self._add_inputs(spec, cfg, self.n_tasks)
        self.mlps = BatchedMLP(self.n_tasks, self.d_in, cfg.expert_hidden, cfg.dropout, cfg.norm == "batch")
        self.heads = Heads(self.n_tasks, self.mlps.out_dim, cfg.tower_hidden, cfg.dropout, cfg.norm == "batch")

    def embed(self, cat: torch.Tensor, num: torch.Tensor, seq: torch.Tensor | None = None,
              text: torch.Tensor | None = None) -> Shared:
        return self.embed_copies(cat, num, seq, text, self.n_tasks)

    def represent(self, cat: torch.Tensor, num: torch.Tensor, seq: torch.Tensor | None = None,
                  text: torch.Tensor | None = None) -> Shared:
        s = self.embed(cat, num, seq, text)
        s.rep = self.mlps(s.x)  # (tasks, batch, d): task t's gradient only reaches row t
        return s

    def decode(self, shared: Shared) -> torch.Tensor:
        return self.heads(shared.rep)

    def last_shared_layer(self) -> torch.Tensor:
        return self.mlps.weights[-1]  # nothing is shared; the last hidden layer is the closest analogue
