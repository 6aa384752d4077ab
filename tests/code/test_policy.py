"""The promotion gate as a table of cases: candidate metrics + paired comparison -> decision."""

import pytest

from mtl.config import ConfigError, GateConfig, Limit, SliceGate, TaskGate, parse_config
from mtl.promotion.policy import decide

TYPES = {"click": "binary", "dwell": "regression"}
GATE = GateConfig(
    tasks={"click": TaskGate(floor=0.6, max_regression=0.01), "dwell": TaskGate(max_regression=1.0)},
    slices={"scenario": SliceGate(auc=Limit(max_regression=0.02))},
)


def cand(click_auc, dwell_rmse):
    return {"click": {"auc": click_auc}, "dwell": {"rmse": dwell_rmse}}


def comp(new, old, interval=None, metric="auc", slices=None):
    higher = metric == "auc"
    gain = (new - old) if higher else (old - new)
    return {"metric": metric, "candidate": new, "champion": old, "gain": gain, "gain_interval": interval,
            "slices": {"scenario": slices} if slices else {}}


def scen(**gains):
    """Per-scenario click comparisons: value -> (candidate AUC, champion AUC, interval)."""
    return {k: comp(*v) for k, v in gains.items()}


FLAT = scen(home=(0.70, 0.70, (-0.01, 0.01)), search=(0.70, 0.70, (-0.01, 0.01)))


@pytest.mark.parametrize(
    "candidate, comparison, promote, failing, reason",
    [
        # first run: floors alone decide
        (cand(0.70, 30.0), None, True, [], "first model"),
        (cand(0.55, 30.0), None, False, ["click"], "below the floor 0.6000"),
        # better on every task, beyond noise
        (cand(0.72, 29.0), {"click": comp(0.72, 0.70, (0.01, 0.03), slices=FLAT),
                            "dwell": comp(29.0, 30.0, (0.5, 1.5), "rmse")}, True, [], "better beyond noise"),
        # click worse by 0.03 > 0.01 and the interval excludes 0: a real regression
        (cand(0.67, 29.0), {"click": comp(0.67, 0.70, (-0.04, -0.02), slices=FLAT),
                            "dwell": comp(29.0, 30.0, (0.5, 1.5), "rmse")}, False, ["click"], "failed the gate"),
        # the same drop, but the interval includes 0: noise, and dwell improved -> promoted
        (cand(0.67, 29.0), {"click": comp(0.67, 0.70, (-0.07, 0.01), slices=FLAT),
                            "dwell": comp(29.0, 30.0, (0.5, 1.5), "rmse")}, True, [], "better beyond noise on dwell"),
        # RMSE (lower is better) regressed beyond its limit
        (cand(0.72, 31.5), {"click": comp(0.72, 0.70, (0.01, 0.03), slices=FLAT),
                            "dwell": comp(31.5, 30.0, (-2.0, -1.1), "rmse")}, False, ["dwell"], "failed the gate"),
        # better on average, but one scenario lost 0.05 beyond noise: a slice regression
        (cand(0.72, 29.0), {"click": comp(0.72, 0.70, (0.01, 0.03),
                                          slices=scen(home=(0.75, 0.70, (0.03, 0.07)), search=(0.60, 0.65, (-0.08, -0.03)))),
                            "dwell": comp(29.0, 30.0, (0.5, 1.5), "rmse")}, False, [], "click on scenario=search"),
        # as good as the champion: nothing better beyond noise and Δm < 0 -> kept
        (cand(0.699, 30.1), {"click": comp(0.699, 0.70, (-0.005, 0.003), slices=FLAT),
                             "dwell": comp(30.1, 30.0, (-0.4, 0.2), "rmse")}, False, [], "no improvement"),
        # undefined AUC never passes a gated task
        (cand(None, 30.0), None, False, ["click"], "undefined"),
    ],
)
def test_gate(candidate, comparison, promote, failing, reason):
    decision = decide(candidate, comparison, TYPES, GATE)
    assert decision.promote is promote, decision.summary
    assert [v.task for v in decision.tasks if not v.passed] == failing
    assert reason in decision.summary + " ".join(v.reason for v in decision.tasks)
    assert all(v.reason for v in decision.tasks) and all(s.reason for s in decision.slices)


def test_noise_is_named_in_the_reason():
    decision = decide(cand(0.67, 29.0), {"click": comp(0.67, 0.70, (-0.07, 0.01)),
                                         "dwell": comp(29.0, 30.0, (0.5, 1.5), "rmse")}, TYPES, GATE)
    click = next(v for v in decision.tasks if v.task == "click")
    assert click.passed and "noise" in click.reason


def test_relative_limit_scales_with_the_champion():
    gate = GateConfig(tasks={"dwell": TaskGate(max_regression=0.05, relative=True)}, require_improvement=False)
    types = {"dwell": "regression"}
    ok = decide({"dwell": {"rmse": 31.0}}, {"dwell": comp(31.0, 30.0, (-1.2, -0.8), "rmse")}, types, gate)
    bad = decide({"dwell": {"rmse": 32.0}}, {"dwell": comp(32.0, 30.0, (-2.2, -1.8), "rmse")}, types, gate)
    assert ok.promote and not bad.promote  # 5% of 30 = 1.5: a 1.0 worsening passes, 2.0 does not


def test_without_require_improvement_an_equal_model_is_promoted():
    gate = GATE.model_copy(update={"require_improvement": False})
    decision = decide(cand(0.70, 30.0), {"click": comp(0.70, 0.70, (-0.01, 0.01), slices=FLAT),
                                         "dwell": comp(30.0, 30.0, (-0.3, 0.3), "rmse")}, TYPES, gate)
    assert decision.promote and decision.improvement is None


def test_ungated_task_is_reported_not_judged():
    gate = GateConfig(tasks={"click": TaskGate(floor=0.5)}, require_improvement=False)
    decision = decide(cand(0.7, 99.0), {"click": comp(0.7, 0.7, (-0.01, 0.01)), "dwell": comp(99.0, 1.0, None, "rmse")},
                      TYPES, gate)
    assert decision.promote
    assert "not gated" in next(v.reason for v in decision.tasks if v.task == "dwell")


def _dwell_on(slices: dict, limit: SliceGate) -> list:
    gate = GateConfig(tasks={"click": TaskGate(), "dwell": TaskGate(max_regression=5.0)},
                      slices={"scenario": limit}, require_improvement=False)
    comparison = {"click": comp(0.70, 0.70, (-0.01, 0.01), slices=FLAT),
                  "dwell": comp(30.0, 30.0, (-0.2, 0.2), "rmse", slices=slices)}
    return decide(cand(0.70, 30.0), comparison, TYPES, gate).slices


def test_slice_limits_are_per_metric_so_auc_and_rmse_never_share_a_number():
    # dwell's RMSE (seconds) 0.80 worse on home_feed, beyond noise: what once failed an AUC-sized 0.01
    worse = {"home_feed": comp(30.8, 30.0, (-1.2, -0.4), "rmse")}
    auc_only = _dwell_on(worse, SliceGate(auc=Limit(max_regression=0.01)))
    assert [s.task for s in auc_only] == ["click", "click"]  # RMSE has no limit here: not judged by AUC's
    relative = _dwell_on(worse, SliceGate(auc=Limit(max_regression=0.01), rmse=Limit(max_regression=0.05, relative=True)))
    dwell = [s for s in relative if s.task == "dwell"]
    assert len(dwell) == 1 and dwell[0].passed and "5.0% of the champion" in dwell[0].reason
    strict = _dwell_on(worse, SliceGate(rmse=Limit(max_regression=0.5)))
    assert [(s.task, s.passed) for s in strict] == [("dwell", False)]
    # a task's own limit wins over its metric's
    own = _dwell_on(worse, SliceGate(rmse=Limit(max_regression=0.5), tasks={"dwell": Limit(max_regression=1.0)}))
    assert [(s.task, s.passed) for s in own] == [("dwell", True)]


def test_one_slice_number_for_every_metric_is_refused_with_the_fix():
    from pathlib import Path

    import yaml

    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    raw["gate"]["slices"] = {"scenario": {"max_regression": 0.01}}
    with pytest.raises(ConfigError, match=r"gate.slices.scenario(.|\n)*auc: \{max_regression"):
        parse_config(raw)


def test_a_task_the_champion_was_not_trained_for_is_judged_on_its_floor():
    # the champion came from a run with fewer tasks (another form): no dwell to pair with
    decision = decide(cand(0.72, 29.0), {"click": comp(0.72, 0.70, (0.01, 0.03), slices=FLAT)}, TYPES, GATE)
    dwell = next(v for v in decision.tasks if v.task == "dwell")
    assert dwell.passed and "the champion has no such task" in dwell.reason
    assert decision.promote, decision.summary
