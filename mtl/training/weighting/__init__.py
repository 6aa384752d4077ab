"""Loss balancing: how per-task losses (or their gradients) become one update, registered by name.

The second axis next to the architecture (LibMTL): an architecture decides what is shared, a
weighting decides how the tasks' losses meet on it. Methods that weight losses (equal, static,
uncertainty, dwa, gradnorm, famo) and methods that combine the tasks' gradients on the shared
representation (pcgrad, cagrad) sit behind one base class, ``base.Weighting``.

The registry maps a name to ``module:Class`` so that validating a config never imports torch.
Adding a method means adding one module and one line here.
"""

from __future__ import annotations

from mtl.registry import resolve

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


def get_weighting(name: str):
    return resolve(WEIGHTINGS, name)
