"""Loss balancing: how per-task losses (or their gradients) become one update, registered by name.

The second axis next to the architecture (LibMTL): an architecture decides what is shared, a
weighting decides how the tasks' losses meet on it. Methods that weight losses (equal, static,
uncertainty, dwa, gradnorm, famo) and methods that combine the tasks' gradients on the shared
representation (pcgrad, cagrad) sit behind one base class, ``base.Weighting``.

The registry (mtl/names.py) maps a name to ``module:Class`` so that validating a config never
imports torch. Adding a method means adding one module here and one line there.
"""

from __future__ import annotations

from mtl.names import WEIGHTINGS
from mtl.registry import resolve


def get_weighting(name: str):
    return resolve(WEIGHTINGS, name)
