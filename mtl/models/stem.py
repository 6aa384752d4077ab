"""STEM: shared and task-specific embeddings (Su et al., AAAI 2024), in CGC form.

Where every task reads one embedding table, the tasks' gradients meet in it: a click factor and
a purchase factor of the same item pull its one vector two ways, and a dense task such as click
can end up worse than its own single-task model (negative transfer) however the experts above
are shared. STEM gives each task its own embedding slice (and interaction) feeding its own
experts, plus a shared slice feeding the shared experts; each task's gate, read from its own
input, mixes its experts with the shared ones (CGC's extraction layer). So a task keeps a
single-task model's embedding and still borrows from the others through the shared experts.
"""

from __future__ import annotations

import torch

from mtl.config import ModelConfig
from mtl.models.base import Shared
from mtl.models.layers import FusedEmbedding, InputSpec
from mtl.models.ple import PLE


class STEM(PLE):
    def __init__(self, spec: InputSpec, cfg: ModelConfig):
        super().__init__(spec, cfg, levels=1)
        copies = self.n_tasks + 1  # one slice per task, then the shared one
        # A per-copy input has the width of the single one PLE's level was built for: only the
        # table (and the history encoders, text projections, interactions) become per copy.
        self.embedding = FusedEmbedding(spec.cardinalities, cfg.embedding_dim * copies)
        self._add_inputs(spec, cfg, copies)

    def represent(self, cat: torch.Tensor, num: torch.Tensor, seq: torch.Tensor | None = None,
                  text: torch.Tensor | None = None) -> Shared:
        s = self.embed_copies(cat, num, seq, text, self.n_tasks + 1)  # (tasks + 1, batch, d): CGC's groups
        s.rep = self.levels[0].run_experts(s.x)
        s.ctx = {"inputs": s.x}
        return s
