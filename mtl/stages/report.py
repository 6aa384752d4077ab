"""The end-of-run summary `mtl run` and `mtl report` print: the validation line, per-task test
metrics beside the oracle, the multi-task gain and the promotion decision."""

from __future__ import annotations

from mtl.handoffs import Decision
from mtl.paths import Paths
from mtl.stages.common import read_json, read_json_if_present


def report(paths: Paths) -> str:
    from mtl.evaluation.evaluate import format_table

    metrics = read_json(paths.metrics_file, "evaluate")
    decision = Decision.read_if_present(paths.decision_file)
    table = format_table(metrics["tasks"], decision.to_dict() if decision else None, metrics.get("mtl_gain"))
    v = read_json_if_present(paths.validation_result)
    if v is None:
        return table
    ref = v.get("drift_reference") or {}
    drift = f"drift against {ref['name']}" if ref.get("name") else f"drift not checked: {ref.get('skipped', 'off')}"
    line = (f"data validation: {'passed' if v['success'] else 'FAILED'}, {v['checks_total']} checks on "
            f"{v['rows']:,} rows, {v.get('warnings', 0)} warning(s); {drift}")
    return line + "\n\n" + table
