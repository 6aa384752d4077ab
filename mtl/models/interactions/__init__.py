"""Explicit feature interactions: the third axis beside the architecture and the loss weighting.

An MLP learns a dot product between two embeddings poorly (Rendle et al. 2020), yet a user's
taste for an item *is* such a product. An interaction layer sits between the embedded input and
whatever the architecture builds on it (experts, shared bottom, towers), so every architecture
can use every interaction; the single-task baseline gets an independent one per task.

The registry (mtl/names.py) maps a name to ``module:Class`` so that validating a config never
imports torch. Adding an interaction means adding one module here and one line there.
"""

from __future__ import annotations

from mtl.names import INTERACTIONS
from mtl.registry import resolve


def get_interaction(name: str):
    return resolve(INTERACTIONS, name)
