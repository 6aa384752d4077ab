"""The promotion gate: a pure function from metrics to a decision with a reason per task and slice.

Inputs are the candidate's own metrics (for the absolute floors) and, when there is a champion,
the paired comparison of the two on the same test rows (mtl/evaluation/compare.py): per task
and per slice value, the gain (positive = candidate better) and its bootstrap interval. Rules,
from ``gate`` in params.yaml:

* floor: the candidate's gate metric must reach it (every run, the first one included);
* max_regression per task (absolute, or relative to the champion's value): a worse candidate
  fails only when it is worse by more than the limit *and* the interval of the difference
  excludes zero; a drop the resampling cannot tell from noise passes, and says so;
* gate.slices: the same rule on every value of a slice column (each scenario, say), with a
  limit per metric (AUC and RMSE are in different units) or per task, so a model that wins on
  average cannot quietly lose a surface;
* require_improvement: at least one gated task better beyond noise, or a positive mean relative
  gain (Δm) over the gated tasks; an equally good model does not replace the champion.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from mtl.config import GateConfig
from mtl.evaluation.compare import GATE_METRIC, higher_is_better


@dataclass(frozen=True)
class TaskVerdict:
    task: str
    metric: str
    candidate: float | None
    champion: float | None
    passed: bool
    reason: str
    gain: float | None = None
    gain_interval: tuple[float, float] | None = None


@dataclass(frozen=True)
class SliceVerdict:
    task: str
    slice: str  # "column=value"
    metric: str
    candidate: float | None
    champion: float | None
    passed: bool
    reason: str


@dataclass(frozen=True)
class Improvement:
    passed: bool
    reason: str
    delta_m: float | None
    improved: tuple[str, ...]


@dataclass(frozen=True)
class Decision:
    promote: bool
    summary: str
    tasks: tuple[TaskVerdict, ...]
    slices: tuple[SliceVerdict, ...] = ()
    improvement: Improvement | None = None

    def to_dict(self) -> dict:
        return {"promote": self.promote, "summary": self.summary, "tasks": [asdict(t) for t in self.tasks],
                "slices": [asdict(s) for s in self.slices],
                "improvement": asdict(self.improvement) if self.improvement else None}


def _fmt_interval(iv) -> str:
    return f"[{iv[0]:+.4f}, {iv[1]:+.4f}]" if iv else "(no interval)"


def _regression(comp: dict, max_regression: float, relative: bool) -> tuple[bool, str]:
    """(passed, reason) of the limit on how much worse than the champion a metric may be."""
    metric, gain, iv = comp["metric"], comp["gain"], comp.get("gain_interval")
    old, new = comp["champion"], comp["candidate"]
    allowed = max_regression * abs(old) if relative else max_regression
    limit = f"{max_regression:.1%} of the champion" if relative else f"{max_regression:.4f}"
    head = f"{metric} {new:.4f} vs champion {old:.4f} (gain {gain:+.4f}, interval {_fmt_interval(iv)})"
    if gain >= -allowed:
        return True, f"{head}: within the allowed regression {limit}"
    if iv is not None and iv[1] >= 0:
        return True, f"{head}: worse by more than {limit}, but the interval includes 0: noise"
    return False, f"{head}: worse by {-gain:.4f}, more than the allowed {limit}"


def _judge(task: str, task_type: str, cand: dict, comp: dict | None, gate: GateConfig) -> TaskVerdict:
    metric = cand.get("gate_metric") or GATE_METRIC[task_type][0]  # a forecast's: wape or pinball
    higher = higher_is_better(metric)
    value = cand.get(metric)
    old = comp.get("champion") if comp else None
    rule = gate.tasks.get(task)
    if rule is None:
        return TaskVerdict(task, metric, value, old, True, "not gated (no gate.tasks entry)")
    if value is None:
        return TaskVerdict(task, metric, value, old, False, f"{metric} is undefined on the test split")
    better = (lambda a, b: a >= b) if higher else (lambda a, b: a <= b)
    if rule.floor is not None and not better(value, rule.floor):
        word = "below the floor" if higher else "above the ceiling"
        return TaskVerdict(task, metric, value, old, False, f"{metric} {value:.4f} is {word} {rule.floor:.4f}")
    if comp is None or comp.get("gain") is None:
        why = f"{metric} {value:.4f} meets the floor" if rule.floor is not None else "no floor set"
        note = (" (no champion yet)" if comp is None else " (the champion has no such task)" if comp.get("absent")
                else " (the champion's metric is undefined)")
        return TaskVerdict(task, metric, value, old, True, why + note)
    passed, reason = _regression(comp, rule.max_regression, rule.relative)
    return TaskVerdict(task, metric, value, old, passed, reason, comp["gain"], comp.get("gain_interval"))


def _judge_slices(comparison: dict, gate: GateConfig) -> list[SliceVerdict]:
    out = []
    for col, rule in gate.slices.items():
        for task in gate.tasks:
            for value, comp in comparison.get(task, {}).get("slices", {}).get(col, {}).items():
                where = f"{col}={value}"
                limit = rule.limit(task, comp["metric"])
                if limit is None:
                    continue
                if comp.get("gain") is None:
                    out.append(SliceVerdict(task, where, comp["metric"], comp["candidate"], comp["champion"], True,
                                            f"{comp['metric']} undefined on this slice: not judged"))
                    continue
                passed, reason = _regression(comp, limit.max_regression, limit.relative)
                out.append(SliceVerdict(task, where, comp["metric"], comp["candidate"], comp["champion"], passed,
                                        reason))
    return out


def _improvement(comparison: dict, gate: GateConfig) -> Improvement:
    improved, relative = [], []
    for task in gate.tasks:
        comp = comparison.get(task)
        if not comp or comp.get("gain") is None:
            continue
        iv = comp.get("gain_interval")
        if (iv[0] > 0) if iv else comp["gain"] > 0:
            improved.append(task)
        if comp["champion"]:
            relative.append(comp["gain"] / abs(comp["champion"]))
    delta_m = sum(relative) / len(relative) if relative else None
    parts = [f"better beyond noise on {', '.join(improved)}" if improved else "no task better beyond noise",
             f"mean relative gain Δm {delta_m:+.3%}" if delta_m is not None else "Δm undefined"]
    passed = bool(improved) or (delta_m is not None and delta_m > 0)
    return Improvement(passed, "; ".join(parts), delta_m, tuple(improved))


def decide(candidate: dict[str, dict], comparison: dict[str, dict] | None, task_types: dict[str, str],
           gate: GateConfig) -> Decision:
    """``candidate``: task -> its metrics; ``comparison``: task -> paired comparison with the
    champion (mtl.evaluation.compare), None on the first run (floors alone decide)."""
    # a task the champion was not trained for (another run's task list) is judged on its floor
    absent = {"absent": True, "gain": None, "champion": None}
    verdicts = tuple(
        _judge(t, task_types[t], candidate.get(t, {}), comparison.get(t, absent) if comparison else None, gate)
        for t in task_types
    )
    slices = tuple(_judge_slices(comparison, gate)) if comparison else ()
    improvement = _improvement(comparison, gate) if comparison and gate.require_improvement else None
    failed = [v.task for v in verdicts if not v.passed]
    failed_slices = [f"{s.task} on {s.slice}" for s in slices if not s.passed]
    if failed or failed_slices:
        summary = "rejected: " + "; ".join(filter(None, [
            f"{', '.join(failed)} failed the gate" if failed else "",
            f"slice regression ({', '.join(failed_slices)})" if failed_slices else ""]))
    elif improvement is not None and not improvement.passed:
        summary = f"rejected: no improvement on the champion ({improvement.reason})"
    elif comparison is None:
        summary = "promoted: first model, all floors met"
    else:
        summary = "promoted: no gated task or slice worse than the champion beyond its limit" + (
            f"; {improvement.reason}" if improvement else "")
    promote = not failed and not failed_slices and (improvement is None or improvement.passed)
    return Decision(promote, summary, verdicts, slices, improvement)
