"""What every architecture shares: the input embedding, and a split into shared and task parts.

An architecture is ``represent`` (the shared part: embedding, shared bottom or experts) followed
by ``decode`` (gates, towers, heads: task-specific). The split is what lets a loss-balancing
method act on the gradients of the *shared representation*, the tensor every task's gradient
flows through, instead of on flattened embedding tables; ``last_shared_layer`` is the weight
GradNorm measures. ``forward`` is the two composed, returning (batch, tasks) logits for binary
tasks and standardised values for regression tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mtl.config import ModelConfig
from mtl.models.interactions import get_interaction
from mtl.models.layers import FusedEmbedding, HistoryEncoder, InputSpec, history_inputs
from mtl.models.temporal import TCN


@dataclass
class Shared:
    rep: torch.Tensor  # the shared representation (its per-task gradients are what balancing combines)
    x: torch.Tensor  # the embedded input, (batch, d_in)
    scenario: torch.Tensor | None = None  # scenario ids, for scenario-aware gates
    ctx: dict | None = None  # whatever else an architecture's decode needs (PLE's per-task inputs)
    emb: torch.Tensor | None = None  # the embedding rows this batch looked up (their L2 penalty)


class MultiTaskModel(nn.Module):
    def __init__(self, spec: InputSpec, cfg: ModelConfig):
        super().__init__()
        self.spec = spec
        self.cfg = cfg
        self.n_tasks = len(spec.tasks)
        self.embedding = FusedEmbedding(spec.cardinalities, cfg.embedding_dim)
        self._add_inputs(spec, cfg, 1)
        # Diagnostics: when set, gated architectures keep their last (tasks, batch, experts) gates.
        self.record_gates = False
        self.last_gates: torch.Tensor | None = None

    def _add_inputs(self, spec: InputSpec, cfg: ModelConfig, copies: int) -> None:
        """The history encoder, the text projections and the temporal encoder of a panel's lag
        window, when the data has them, then the
        feature interaction (model.interaction); sets ``d_in``, the width of one copy's input to
        the architecture. History and text outputs join the embedded input, so every
        architecture's experts (and gates) read them; nothing is built, and nothing costs,
        without them. ``copies``: independent ones per task (the single-task baseline)."""
        self.history = self.text_projection = self.temporal = None
        d_extra, fields = 0, len(spec.cardinalities)
        if spec.window:
            self.temporal = nn.ModuleList(TCN(spec.window, cfg.temporal) for _ in range(copies))
            d_extra += cfg.temporal.filters
            fields += 1 if cfg.temporal.filters == cfg.embedding_dim else 0
        if spec.seq_shares:
            self.history = nn.ModuleList(
                HistoryEncoder(spec.seq_length, cfg.embedding_dim, cfg.sequence.layers, cfg.sequence.heads,
                               cfg.sequence.pooling)
                for _ in range(copies))
            d_extra += cfg.embedding_dim
            fields += 1
        if spec.n_text:
            # Frozen sentence vectors in, a trainable projection per text column (and copy) out.
            self.text_projection = nn.Parameter(torch.empty(spec.n_text, spec.text_dim, cfg.text_dim * copies))
            nn.init.normal_(self.text_projection, std=spec.text_dim**-0.5)
            d_extra += spec.n_text * cfg.text_dim
            fields += spec.n_text if cfg.text_dim == cfg.embedding_dim else 0
        self.d_extra = d_extra
        d_flat = len(spec.cardinalities) * cfg.embedding_dim + spec.n_numeric + d_extra
        self.interaction = get_interaction(cfg.interaction)(fields, cfg.embedding_dim, spec.n_numeric, d_flat,
                                                            copies, cfg)
        self.d_in = self.interaction.out_dim

    def extra_inputs(self, cat: torch.Tensor, num: torch.Tensor, seq: torch.Tensor | None, text: torch.Tensor | None,
                     copy: int = 0, width: int | None = None) -> list[torch.Tensor]:
        """The temporal encoding (batch, 1, filters), the history vector (batch, 1, dim) and the
        projected text vectors (batch, texts, text_dim) of copy ``copy`` (embedding columns
        [copy * width, (copy + 1) * width) of a shared table)."""
        out = [self.temporal[copy](num).unsqueeze(1)] if self.temporal is not None else []
        if self.history is not None:
            dim = self.cfg.embedding_dim
            tokens, query, padding = history_inputs(self.embedding.table, self.embedding.offsets,
                                                    self.spec.seq_shares, cat, seq)
            if width is not None:
                tokens, query = tokens[..., copy * dim:(copy + 1) * dim], query[..., copy * dim:(copy + 1) * dim]
            out.append(self.history[copy](tokens, query, padding).unsqueeze(1))
        if self.text_projection is not None:
            d = self.cfg.text_dim
            w = self.text_projection[..., copy * d:(copy + 1) * d].to(text.dtype)
            out.append(torch.einsum("btk,tkd->btd", text, w))
        return out

    def interact(self, e: torch.Tensor, extra: list[torch.Tensor], num: torch.Tensor) -> torch.Tensor:
        """(copies, batch, cols, dim) embeddings, each copy's extra inputs -> (copies, batch, d_in):
        the flat input through the interaction layer. Vectors as wide as an embedding (the
        history, text projections of that width) take part in the interaction as fields."""
        dim = self.cfg.embedding_dim
        extra = [v.to(e.dtype) for v in extra]
        flat = [e.flatten(2), num.to(e.dtype).expand(e.shape[0], *num.shape)]
        flat += [v.flatten(2) for v in extra]
        fields = torch.cat([e, *(v for v in extra if v.shape[-1] == dim)], dim=2)
        return self.interaction(fields, num, torch.cat(flat, dim=2))

    def embed_copies(self, cat: torch.Tensor, num: torch.Tensor, seq: torch.Tensor | None, text: torch.Tensor | None,
                     copies: int) -> Shared:
        """The input of ``copies`` independent models, (copies, batch, d_in), from a table of
        width embedding_dim * copies: copy c only ever reads (and so only trains) its own slice,
        its own history encoder, text projection and interaction."""
        e = self.embedding.fields(cat)  # (batch, cols, dim * copies)
        b, cols, _ = e.shape
        e = e.view(b, cols, copies, -1).permute(2, 0, 1, 3)  # (copies, batch, cols, dim)
        extra = []
        if self.d_extra:
            per_copy = [self.extra_inputs(cat, num, seq, text, c, self.cfg.embedding_dim) for c in range(copies)]
            extra = [torch.stack(parts) for parts in zip(*per_copy)]
        x = self.interact(e, extra, num)
        scenario = cat[:, self.spec.scenario_input] if self.spec.scenario_input >= 0 else None
        return Shared(x, x, scenario, emb=e)

    def embed(self, cat: torch.Tensor, num: torch.Tensor, seq: torch.Tensor | None = None,
              text: torch.Tensor | None = None) -> Shared:
        e = self.embedding.fields(cat)
        extra = [v.unsqueeze(0) for v in self.extra_inputs(cat, num, seq, text)] if self.d_extra else []
        x = self.interact(e.unsqueeze(0), extra, num)[0]
        scenario = cat[:, self.spec.scenario_input] if self.spec.scenario_input >= 0 else None
        return Shared(x, x, scenario, emb=e)

    def represent(self, cat: torch.Tensor, num: torch.Tensor, seq: torch.Tensor | None = None,
                  text: torch.Tensor | None = None) -> Shared:
        raise NotImplementedError

    def decode(self, shared: Shared) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, cat: torch.Tensor, num: torch.Tensor, seq: torch.Tensor | None = None,
                text: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.represent(cat, num, seq, text))

    def last_shared_layer(self) -> torch.Tensor:
        """The weight of the last layer all tasks share (GradNorm measures gradient norms here)."""
        raise NotImplementedError

    def extra_loss(self, out: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor | None:
        """An architecture's own regulariser (AITM's calibration), added to the weighted task losses."""
        return None

    def _keep_gates(self, gates: torch.Tensor) -> None:
        if self.record_gates:
            self.last_gates = gates.detach()
