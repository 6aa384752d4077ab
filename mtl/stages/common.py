"""What every stage shares: its JSON hand-offs and the error a failed contract raises."""

from __future__ import annotations

import json
from pathlib import Path

from mtl.handoffs import read_json, write_json  # noqa: F401  (the stages' JSON I/O, defined once there)


class ValidationFailed(RuntimeError):
    """The raw data broke the data contract; the message is the human summary."""


def read_json_if_present(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None
