"""What flows between the stages, typed: the training summary (``data/04_model/train.json``), the
gate's verdict (``data/06_promotion/gate.json``) and the promotion decision (``decision.json``).

Each is a frozen dataclass that reads and writes its JSON file. The files keep their format
(plain JSON, the same keys), so a run's outputs from before still load, and keys a reader does
not know are ignored. Standard library only: the Airflow DAG reads the verdict while it runs
the gate task, and the plugin's links read the others.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TypeVar

T = TypeVar("T", bound="Handoff")


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


class Handoff:
    """Read and write a stage's JSON hand-off (subclasses are dataclasses)."""

    produced_by = ""  # the `mtl` command that writes it, named when it is missing

    @classmethod
    def read(cls: type[T], path: Path) -> T:
        data = read_json(path, cls.produced_by)
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def read_if_present(cls: type[T], path: Path) -> T | None:
        return cls.read(path) if path.is_file() else None

    def to_dict(self) -> dict:
        return asdict(self)  # type: ignore[call-overload]

    def write(self, path: Path) -> None:
        write_json(path, self.to_dict())


@dataclass(frozen=True)
class TrainInfo(Handoff):
    """What `mtl train` did: its MLflow run and logged model, the best epoch, the thresholds
    chosen on validation, the per-epoch history."""

    produced_by = "train"

    run_id: str
    experiment_id: str
    model_uri: str
    best_epoch: int
    epochs_run: int
    seconds: float
    samples_per_second: float
    device: str
    thresholds: dict = field(default_factory=dict)
    quantile_calibration: dict = field(default_factory=dict)  # quantile tasks' conformal adjustments
    history: list = field(default_factory=list)


@dataclass(frozen=True)
class Verdict(Handoff):
    """The gate's verdict on a candidate: pass or fail, with a reason per task and slice."""

    produced_by = "gate"

    model_name: str
    candidate_run_id: str
    promote: bool
    summary: str
    already_champion: bool = False
    champion_version: str | None = None  # the champion it was judged against
    tasks: list = field(default_factory=list)
    slices: list = field(default_factory=list)
    improvement: dict | None = None
    comparison: dict | None = None  # the paired comparison with that champion


@dataclass(frozen=True)
class Decision(Verdict):
    """The promotion's decision: the verdict as it finally held, and what was done."""

    produced_by = "promote"

    registered_version: str | None = None
    rejudged: bool = False  # the champion moved since the gate, and the candidate was judged again
    load_check: dict | None = None

    @property
    def version(self) -> str | None:
        """The model version this decision is about: the registered candidate, or the champion
        it already was."""
        return self.registered_version or self.champion_version
