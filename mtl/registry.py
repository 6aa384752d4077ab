"""Registries map a name to "module:Class" so that validating a config never imports torch;
the class is imported only when it is used."""

from __future__ import annotations

import importlib


def resolve(registry: dict[str, str], name: str):
    module, cls = registry[name].split(":")
    return getattr(importlib.import_module(module), cls)
