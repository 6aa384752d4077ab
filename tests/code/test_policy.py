"""The promotion gate as a table of cases."""

import pytest

from mtl.config import GateConfig, TaskGate
from mtl.promotion.policy import decide

TYPES = {"click": "binary", "dwell": "regression"}
GATE = GateConfig(tasks={"click": TaskGate(floor=0.6, max_regression=0.01), "dwell": TaskGate(max_regression=1.0)})


def m(click_auc, dwell_rmse):
    return {"click": {"auc": click_auc}, "dwell": {"rmse": dwell_rmse}}


@pytest.mark.parametrize(
    "candidate, champion, promote, failing",
    [
        (m(0.70, 30.0), None, True, []),  # first run: floors only
        (m(0.55, 30.0), None, False, ["click"]),  # first run below the floor
        (m(0.70, 30.0), m(0.69, 30.5), True, []),  # better everywhere
        (m(0.695, 30.9), m(0.70, 30.0), True, []),  # worse, but within both limits
        (m(0.68, 30.0), m(0.70, 30.0), False, ["click"]),  # AUC drop beyond the limit
        (m(0.71, 31.5), m(0.70, 30.0), False, ["dwell"]),  # RMSE (lower is better) regressed
        (m(None, 30.0), None, False, ["click"]),  # undefined AUC never passes a gated task
    ],
)
def test_gate(candidate, champion, promote, failing):
    decision = decide(candidate, champion, TYPES, GATE)
    assert decision.promote is promote
    assert [v.task for v in decision.tasks if not v.passed] == failing
    assert all(v.reason for v in decision.tasks)


def test_ungated_task_is_reported_not_judged():
    decision = decide(m(0.7, 99.0), m(0.7, 1.0), TYPES, GateConfig(tasks={"click": TaskGate(floor=0.5)}))
    assert decision.promote
    assert "not gated" in next(v.reason for v in decision.tasks if v.task == "dwell")
