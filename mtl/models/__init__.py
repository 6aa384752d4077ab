"""Model architectures, registered by name.

The registry (mtl/names.py) maps a name to ``module:Class`` so that validating a config never
imports torch. Adding an architecture means adding one module here and one line there.
"""

from __future__ import annotations

from mtl.names import ARCHITECTURES
from mtl.registry import resolve


def get_architecture(name: str):
    return resolve(ARCHITECTURES, name)
