"""The promotion gate: a pure function from metrics to a decision with a reason per task."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from mtl.config import GateConfig

# The metric each task type is gated on, and whether higher is better.
GATE_METRIC = {"binary": ("auc", True), "regression": ("rmse", False)}


@dataclass(frozen=True)
class TaskVerdict:
    task: str
    metric: str
    candidate: float | None
    champion: float | None
    passed: bool
    reason: str


@dataclass(frozen=True)
class Decision:
    promote: bool
    summary: str
    tasks: tuple[TaskVerdict, ...]

    def to_dict(self) -> dict:
        return {"promote": self.promote, "summary": self.summary, "tasks": [asdict(t) for t in self.tasks]}


def _judge(task: str, task_type: str, cand: dict, champ: dict | None, gate: GateConfig) -> TaskVerdict:
    metric, higher = GATE_METRIC[task_type]
    value = cand.get(metric)
    old = champ.get(metric) if champ else None
    rule = gate.tasks.get(task)
    if rule is None:
        return TaskVerdict(task, metric, value, old, True, "not gated (no gate.tasks entry)")
    if value is None:
        return TaskVerdict(task, metric, value, old, False, f"{metric} is undefined on the test split")
    better = (lambda a, b: a >= b) if higher else (lambda a, b: a <= b)
    if rule.floor is not None and not better(value, rule.floor):
        word = "below the floor" if higher else "above the ceiling"
        return TaskVerdict(task, metric, value, old, False, f"{metric} {value:.4f} is {word} {rule.floor:.4f}")
    if old is None:
        why = f"{metric} {value:.4f} meets the floor" if rule.floor is not None else "no floor set"
        return TaskVerdict(task, metric, value, old, True, why + ("" if champ else " (no champion yet)"))
    worsening = (old - value) if higher else (value - old)
    if worsening > rule.max_regression:
        return TaskVerdict(
            task, metric, value, old, False,
            f"{metric} {value:.4f} vs champion {old:.4f}: worse by {worsening:.4f} > allowed {rule.max_regression:.4f}",
        )
    return TaskVerdict(task, metric, value, old, True, f"{metric} {value:.4f} vs champion {old:.4f}: within limits")


def decide(
    candidate: dict[str, dict], champion: dict[str, dict] | None, task_types: dict[str, str], gate: GateConfig
) -> Decision:
    """candidate/champion: task -> metrics on the same test rows; champion None on the first run."""
    verdicts = tuple(
        _judge(t, task_types[t], candidate.get(t, {}), champion.get(t, {}) if champion else None, gate)
        for t in task_types
    )
    failed = [v.task for v in verdicts if not v.passed]
    if failed:
        summary = f"rejected: {', '.join(failed)} failed the gate"
    elif champion is None:
        summary = "promoted: first model, all floors met"
    else:
        summary = "promoted: no gated task worse than the champion beyond its limit"
    return Decision(not failed, summary, verdicts)
