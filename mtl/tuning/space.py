"""The pure half of `mtl tune`: what a trial trains (its values, drawn from the search space
around params.yaml's), the study's name, and the outcome (the verdict against the shipped
settings, the overlay of the best values, the table of trials). No I/O."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mtl.config import Config, SearchDimension, apply_overrides

SHIPPED = "mtl.shipped"  # user attribute of the trial that trains params.yaml as it is
VALUES = "mtl.values"  # user attribute: the dotted key -> value a trial trained with
PARENT_RUN = "mlflow_run_id"  # study attribute: the MLflow run its trials are children of
METRIC = "val_selection_score"  # the early-stopping metric (mean validation AUC of the gated tasks): maximised


def current_values(cfg: Config, keys: list[str]) -> dict[str, Any]:
    """The value of each dotted key in ``cfg`` (lists for tuples, as params.yaml writes them)."""
    raw = cfg.model_dump(mode="json", by_alias=True)
    out = {}
    for key in keys:
        node: Any = raw
        for part in key.split("."):
            node = node[part]
        out[key] = node
    return out


def _label(choice: Any) -> Any:
    """Optuna's name for a choice: lists become their JSON text (its choices must be scalars)."""
    return json.dumps(choice) if isinstance(choice, list) else choice


def _integer(dim: SearchDimension, current: Any) -> bool:
    """A range over a key that holds an integer draws integers (an unset key: if both ends are)."""
    if current is not None:
        return isinstance(current, int) and not isinstance(current, bool)
    return isinstance(dim.low, int) and isinstance(dim.high, int)


def _round(value: float) -> float:
    # Three significant digits: what a person would write in params.yaml, and what the trial
    # trains with, so the overlay reproduces the trial exactly.
    return float(f"{value:.3g}")


def suggest(trial, space: dict[str, SearchDimension], current: dict[str, Any]) -> dict[str, Any]:
    """The value of each key of ``space`` for this Optuna trial, as the config takes it."""
    values = {}
    for key, dim in space.items():
        if dim.choices is not None:
            labels = [_label(c) for c in dim.choices]
            values[key] = dim.choices[labels.index(trial.suggest_categorical(key, labels))]
        elif _integer(dim, current.get(key)):
            values[key] = trial.suggest_int(key, int(dim.low), int(dim.high), log=dim.log)
        else:
            values[key] = _round(trial.suggest_float(key, float(dim.low), float(dim.high), log=dim.log))
    return values


def shipped_params(space: dict[str, SearchDimension], current: dict[str, Any]) -> dict[str, Any]:
    """Optuna's params for the trial of the shipped settings: each key's current value where the
    space holds it. A value outside the space is left out; that trial trains it all the same."""
    params = {}
    for key, dim in space.items():
        value = current[key]
        if dim.choices is not None:
            if value in dim.choices:
                params[key] = _label(value)
        elif value is not None and dim.low <= value <= dim.high:
            params[key] = value
    return params


def study_name(cfg: Config, features_fingerprint: str) -> str:
    """tune.study, else the model's name and a hash of what makes trial scores comparable: the
    features, the model, training and task settings, and the search itself (not how many trials
    or for how long, so that a rerun asking for more resumes the same study)."""
    if cfg.tune.study:
        return cfg.tune.study
    payload = {"features": features_fingerprint, "tasks": [t.model_dump(mode="json") for t in cfg.tasks],
               "model": cfg.model.model_dump(mode="json"),
               "train": cfg.train.model_dump(mode="json", exclude={"progress", "num_threads"}),
               "tune": cfg.tune.model_dump(mode="json", exclude={"trials", "timeout_minutes", "study"})}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return f"{cfg.gate.model_name}-{digest[:12]}"


# --- pure: the outcome ----------------------------------------------------------------------

@dataclass(frozen=True)
class TrialRow:
    number: int
    state: str  # complete | pruned | fail | running | waiting
    value: float | None
    seconds: float | None
    values: dict[str, Any] = field(default_factory=dict)
    shipped: bool = False


def verdict(best: TrialRow | None, shipped: TrialRow | None) -> tuple[bool, str]:
    """Whether the best finished trial beats the shipped settings on the validation metric, and
    the sentence that says so (or why it cannot be said)."""
    if best is None:
        return False, "no trial finished, so there is no best setting to write"
    if shipped is None or shipped.state != "complete":
        return False, ("could not compare with the shipped defaults: their trial has not completed "
                       "(rerun `mtl tune` to resume)")
    if best.number == shipped.number or best.value <= shipped.value:
        return False, (f"could not beat the shipped defaults: their trial {shipped.number} scores {METRIC} "
                       f"{shipped.value:.4f} and no other trial scored higher; params.yaml stays as it is")
    return True, (f"trial {best.number} beats the shipped defaults: {METRIC} {best.value:.4f} against "
                  f"{shipped.value:.4f} (+{best.value - shipped.value:.4f}) on the validation split")


def flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Leaf values by dotted key: the inverse of ``apply_overrides({}, dotted)`` (mtl.config)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        out.update(flat(value, dotted) if isinstance(value, dict) else {dotted: value})
    return out


class _OverlayDumper(yaml.SafeDumper):
    """Block mappings, flow lists: the layout of params.yaml."""


_OverlayDumper.add_representer(list, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))


def overlay_text(best: TrialRow, shipped: TrialRow, study: str) -> str:
    """tune_best.yaml: the best trial's settings in params.yaml's shape, with where they came from."""
    header = (f"# `mtl tune`, study {study}: trial {best.number} scored {METRIC} {best.value:.4f} on the\n"
              f"# validation split, the shipped settings (trial {shipped.number}) {shipped.value:.4f}.\n"
              "# `mtl tune --apply` writes these values into params.yaml (its comments kept); then `mtl run`.\n")
    return header + yaml.dump(apply_overrides({}, best.values), Dumper=_OverlayDumper, sort_keys=False,
                              default_flow_style=False)


def cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return "[" + ",".join(map(cell, value)) + "]"
    return str(value)


def table(rows: list[TrialRow], keys: list[str]) -> str:
    """One line per trial: number, state, score, seconds and each searched value."""
    short = [k.split(".")[-1] for k in keys]
    names = short if len(set(short)) == len(short) else keys
    head = ["trial", "state", "score", "seconds", *names]
    body = [[f"{r.number}{'*' if r.shipped else ''}", r.state, "" if r.value is None else f"{r.value:.4f}",
             "" if r.seconds is None else f"{r.seconds:.0f}", *(cell(r.values.get(k, "")) for k in keys)]
            for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip() for line in [head, *body]]
    return "\n".join(lines) + "\n(* the shipped settings of params.yaml)"


@dataclass(frozen=True)
class TuneResult:
    study: str
    rows: list[TrialRow]
    keys: list[str]
    improved: bool
    message: str
    overlay: Path | None

    @property
    def finished(self) -> int:
        return sum(r.state in ("complete", "pruned") for r in self.rows)

    def describe(self) -> str:
        lines = [f"study {self.study}: {self.finished} finished trial(s)", "", table(self.rows, self.keys), "",
                 self.message]
        if self.overlay is not None:
            lines.append(f"best settings written to {self.overlay}; apply them with `mtl tune --apply` "
                         "(writes them into params.yaml), then `mtl run`")
        return "\n".join(lines)


