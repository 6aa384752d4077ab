"""The generated impression log: listed so "synthetic" is a known source; reads no files."""

from __future__ import annotations

from mtl.data.adapters.base import Adapter, register


@register("synthetic")
class Synthetic(Adapter):
    """mtl/data/synthetic.py writes the raw log itself (see mtl.data.sources.materialise_raw)."""

    format = "synthetic"
