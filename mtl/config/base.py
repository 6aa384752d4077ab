"""What every config section shares: frozen models that refuse unknown keys, the error that
names the key, and small field types."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class ConfigError(ValueError):
    """params.yaml (or an override of it) is invalid; the message names the key and the fix."""


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


PositiveInt = Annotated[int, Field(gt=0)]
Fraction = Annotated[float, Field(gt=0.0, lt=1.0)]


def registered(name: str, registry: dict, what: str) -> str:
    """``name`` if ``registry`` has it, else the error listing what it has."""
    if name not in registry:
        raise ValueError(f"unknown {what} {name!r}; choose one of {sorted(registry)}")
    return name
