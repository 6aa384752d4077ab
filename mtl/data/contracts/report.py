"""The outcome of validating a batch: one CheckResult per check (the GX suite's, the leakage
guard's, the drift measures'), gathered in a ValidationReport (the validate stage's DVC metric)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from mtl.data.contracts.messages import EXAMPLE_KINDS, failure_detail, note


@dataclass(frozen=True)
class CheckResult:
    expectation: str  # e.g. "expect_column_to_exist", "leakage", "drift.psi"
    column: str | None  # column, "A>=B" for a pair check, "a,b" for a key, None for a table-level check
    success: bool
    unexpected_count: int | None  # bad rows, where the check counts rows
    detail: str  # one sentence: what is wrong and how to fix it (or what was confirmed)
    # "error": a failure fails validation; "warning": it is reported (log, MLflow run) and the run goes on
    severity: str = "error"
    value: float | None = None  # the measured value, for drift measures


@dataclass(frozen=True)
class ValidationReport:
    success: bool
    rows: int
    checks: tuple[CheckResult, ...]
    # what drift was measured against: {"name": ..., "version": ...}, or {"skipped": why}
    reference: dict = field(default_factory=dict)

    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if not c.success and c.severity == "error")

    def warnings(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if not c.success and c.severity != "error")

    def to_dict(self) -> dict:
        """JSON-serialisable form, written as the validation metric file."""
        return {
            "success": self.success,
            "rows": self.rows,
            "checks_total": len(self.checks),
            "checks_failed": len(self.failures()),
            "warnings": len(self.warnings()),
            "drift_reference": self.reference,
            "checks": [asdict(c) for c in self.checks],
        }

    def summary(self) -> str:
        """One line when the data is valid; otherwise one line per failed check, then warnings."""
        failed, warned = self.failures(), self.warnings()
        if not failed:
            head = f"Data validation passed: {len(self.checks)} checks on {self.rows:,} rows"
            lines = [head + (f", {len(warned)} warning(s):" if warned else ".")]
        else:
            lines = [f"Data validation failed: {len(failed)} of {len(self.checks)} checks on {self.rows:,} rows."]
            lines += [f"  - {c.detail}" for c in failed]
            if warned:
                lines.append(f"and {len(warned)} warning(s):")
        lines += [f"  - WARNING: {c.detail}" for c in warned]
        if self.reference.get("skipped"):
            lines.append(f"  (drift not checked: {self.reference['skipped']})")
        return "\n".join(lines)



# --------------------------------------------------------------------------- from GX results


def exception_message(exception_info: dict | None) -> str | None:
    """The error a check raised, if any.

    GX reports it either flat ({"raised_exception": ...}) or per metric that failed
    ({metric id: {"raised_exception": ...}}).
    """
    infos = [exception_info or {}]
    if "raised_exception" not in infos[0]:
        infos = [v for v in infos[0].values() if isinstance(v, dict)]
    for info in infos:
        if info.get("raised_exception"):
            return str(info.get("exception_message") or "unknown error")
    return None


def check_result(result: Any, rows: int) -> CheckResult:
    config = result.expectation_config
    info = config.meta["mtl"]
    kind, column = info["kind"], info["column"]
    severity = "warning" if info.get("severity") == "warning" else "error"
    error = exception_message(result.exception_info)
    if error is not None:
        detail = f"could not check that {note(kind, column, info)} ({error}): check the column's values and type"
        return CheckResult(config.type, column, False, None, detail, severity)
    res = result.result or {}
    n = res.get("unexpected_count")
    if kind == "not_all_null":  # a proportion, not a count: when it fails, every row is null
        n = None if result.success else rows
    unexpected = None if n is None else int(n)
    if result.success:
        return CheckResult(config.type, column, True, unexpected, f"ok: {note(kind, column, info)}", severity)
    observed = res.get("observed_value")
    if observed is None and kind in EXAMPLE_KINDS and res.get("partial_unexpected_list"):
        observed = res["partial_unexpected_list"][0]
    detail = failure_detail(kind, column, info, unexpected, None if observed is None else str(observed))
    return CheckResult(config.type, column, False, unexpected, detail, severity)
