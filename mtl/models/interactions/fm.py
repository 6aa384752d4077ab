"""Factorization-machine interactions (Rendle 2010; the "FM" part of DeepFM, Guo et al. 2017).

Every pair of fields contributes its inner product <v_i, v_j>: user x item, segment x category,
... exactly the bilinear affinities that drive clicks and purchases, and that an MLP over the
concatenated embeddings needs many units and epochs to approximate. The products are appended
to the flat input, so the experts (and gates) read both the raw embeddings and their pairwise
similarities. Numeric columns take part as fields too, each as a learnt vector scaled by its
(standardised) value, as in DeepFM. One batched matmul per batch: fields x fields^T.

``model.fm.heads`` splits every embedding into that many equal parts and takes the products part
by part: a pair then gives ``heads`` numbers instead of one, so each task's experts and tower can
weight them into a bilinear form of their own (a click and a purchase affinity of the same user
and item need not agree).
"""

from __future__ import annotations

import torch
from torch import nn

from mtl.models.interactions.base import Interaction


class FM(Interaction):
    def __init__(self, n_fields: int, dim: int, n_numeric: int, d_in: int, copies: int, cfg) -> None:
        super().__init__(n_fields, dim, n_numeric, d_in, copies, cfg)
        self.numeric = nn.Parameter(torch.randn(copies, n_numeric, dim) * 0.05) if n_numeric else None
        self.heads = cfg.fm.heads
        f = n_fields + n_numeric
        upper = torch.triu_indices(f, f, offset=1)
        self.register_buffer("pairs", upper[0] * f + upper[1], persistent=False)
        self.out_dim = d_in + len(self.pairs) * self.heads

    def forward(self, fields: torch.Tensor, num: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        c, b, f, d = fields.shape
        if self.numeric is not None:
            scaled = num.to(fields.dtype)[None, :, :, None] * self.numeric[:, None].to(fields.dtype)
            fields = torch.cat([fields, scaled], dim=2)
            f = fields.shape[2]
        h = self.heads
        v = fields.reshape(c * b, f, h, d // h).transpose(1, 2).reshape(c * b * h, f, d // h)
        products = torch.bmm(v, v.transpose(1, 2)).reshape(c, b, h, f * f)[..., self.pairs]
        return torch.cat([x, products.flatten(2).to(x.dtype)], dim=2)
