"""Model architectures, registered by name.

The registry maps a name to ``module:Class`` so that validating a config never imports torch.
Adding an architecture means adding one module and one line here.
"""

from __future__ import annotations

from mtl.registry import resolve

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


def get_architecture(name: str):
    return resolve(ARCHITECTURES, name)
