"""What every stage shares: its JSON hand-offs and the error a failed contract raises."""

from __future__ import annotations

import json
from pathlib import Path


class ValidationFailed(RuntimeError):
    """The raw data broke the data contract; the message is the human summary."""


def write_json(path: Path, payload: dict) -> None:
    """Write atomically: a reader never sees half a file, a crash leaves the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    tmp.replace(path)


def read_json(path: Path, produced_by: str) -> dict:
    """An earlier stage's output, or an error naming the command that writes it."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `mtl {produced_by}` (or `dvc repro`) first")
    return json.loads(path.read_text())


def read_json_if_present(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None
