"""Forecast metrics against hand computations (mtl/evaluation/forecast.py)."""

import numpy as np
import pytest

from mtl.evaluation import forecast


def test_wape_and_bias_by_hand():
    actual = np.array([10.0, 0.0, 5.0, 5.0])
    pred = np.array([8.0, 1.0, 5.0, 9.0])
    # |errors| 2 + 1 + 0 + 4 = 7 over 20 units; signed -2 + 1 + 0 + 4 = 3 over 20
    assert forecast.wape(actual, pred) == pytest.approx(7 / 20)
    assert forecast.bias(actual, pred) == pytest.approx(3 / 20)
    assert forecast.wape(np.zeros(3), np.ones(3)) is None  # no units: undefined, not 0 or inf


def test_pinball_by_hand():
    actual = np.array([10.0, 10.0])
    pred = np.array([6.0, 13.0])
    # q=0.9: under by 4 costs 0.9*4 = 3.6, over by 3 costs 0.1*3 = 0.3 -> mean 1.95
    assert forecast.pinball(actual, pred, 0.9) == pytest.approx(1.95)
    # q=0.5 is half the absolute error: (4 + 3) / 2 / 2
    assert forecast.pinball(actual, pred, 0.5) == pytest.approx(1.75)
    assert forecast.pinball(np.array([]), np.array([]), 0.5) is None


def test_seasonal_scales_by_hand():
    # series "a": 9 days with a season of 7 -> diffs y7-y0 = 3 - 1 = 2 and y8-y1 = 0 - 4 = -4
    a = [1, 4, 0, 0, 0, 0, 0, 3, 0]
    b = [2] * 9  # no seasonal change: no scale
    values = np.array(a + b, dtype=float)
    series = np.array(["a"] * 9 + ["b"] * 9)
    # time order within a series matters, interleaving of series does not: a0 b0 a1 b1 ...
    interleaved = np.ravel(np.column_stack([np.arange(9), np.arange(9, 18)]))
    scales = forecast.seasonal_scales(values, series)
    assert scales["a"] == pytest.approx((3.0, 10.0))  # mean(|2|, |-4|), mean(4, 16)
    assert scales["b"] == (0.0, 0.0)
    assert forecast.seasonal_scales(values[interleaved], series[interleaved]) == scales


def test_mase_and_rmsse_by_hand():
    scales = {"a": (3.0, 10.0), "b": (0.0, 0.0), "c": (1.0, 1.0)}
    # horizon 7: each error is a 7-day sum, averaged per day
    actual = np.array([14.0, 28.0, 7.0, 0.0])
    pred = np.array([7.0, 42.0, 7.0, 14.0])
    series = np.array(["a", "a", "b", "c"])
    s = forecast.scaled(actual, pred, series, scales, horizon=7)
    # a: daily errors 1 and -2 -> MAE 1.5 / 3 = 0.5; MSE 2.5 / 10 -> sqrt(0.25) = 0.5
    # c: daily error -2 -> 2 / 1 = 2; sqrt(4 / 1) = 2; b has no scale
    assert s.mase == pytest.approx((0.5 + 2.0) / 2)
    assert s.rmsse == pytest.approx((0.5 + 2.0) / 2)
    assert (s.series, s.unscaled) == (2, 1)


def test_an_all_zero_forecast_wins_on_mae_type_metrics_but_not_on_rmsse():
    """Why RMSSE is reported beside MASE: on an intermittent series the median (zero) beats the
    mean on absolute errors, while squared errors favour the mean."""
    rng = np.random.default_rng(1)
    days = rng.binomial(1, 0.2, 7 * 200) * rng.integers(1, 4, 7 * 200)  # mostly-zero days
    weekly = days.reshape(-1, 7).sum(1).astype(float)  # 7-day totals: the forecast targets
    series = np.zeros(len(weekly), dtype=int)
    scales = forecast.seasonal_scales(days.astype(float), np.zeros(len(days), dtype=int))
    zero = forecast.scaled(weekly, np.zeros_like(weekly), series, scales, horizon=7)
    mean = forecast.scaled(weekly, np.full_like(weekly, weekly.mean()), series, scales, horizon=7)
    assert mean.rmsse < zero.rmsse
    daily_zero = forecast.scaled(days.astype(float), np.zeros(len(days)), np.zeros(len(days), int), scales, 1)
    daily_mean = forecast.scaled(days.astype(float), np.full(len(days), days.mean()), np.zeros(len(days), int),
                                 scales, 1)
    assert daily_zero.mase < daily_mean.mase  # the all-zero forecast "wins" on MASE day by day


def test_the_forecast_entry_of_a_panel_task_by_hand():
    import pandas as pd

    from mtl.config import PanelConfig, TaskConfig
    from mtl.evaluation.forecasting import forecast_entry, format_forecasts, is_forecast

    panel = PanelConfig(series=("item",), sums={"demand": "units"}, horizon=7)
    rows = pd.DataFrame({"item": ["a", "a", "b"], "naive_demand": [7.0, 14.0, 0.0],
                         "scale_mae_demand": [1.0, 1.0, 2.0], "scale_mse_demand": [1.0, 1.0, 4.0],
                         "truth_demand": [14.0, 14.0, 7.0], "wh": ["x", "y", "x"]})
    y, pred = np.array([14.0, 7.0, 7.0]), np.array([7.0, 7.0, 14.0])
    mean = TaskConfig(name="demand", label="demand", type="regression", loss="tweedie")
    assert is_forecast(mean, panel) and not is_forecast(TaskConfig(name="s", label="s", type="binary"), panel)
    e = forecast_entry(mean, y, pred, rows, panel, {"wh": rows["wh"].to_numpy()}, min_rows=1)
    assert e["wape"] == pytest.approx(14 / 28) and e["bias"] == 0.0
    # a: daily errors 1 and 0 -> MAE 0.5 / 1; b: daily error -1 -> 1 / 2; mean of the two series
    assert e["mase"] == pytest.approx((0.5 + 0.5) / 2)
    assert e["rmsse"] == pytest.approx((np.sqrt(0.5) + np.sqrt(1 / 4)) / 2)
    assert e["naive"]["wape"] == pytest.approx((7 + 7 + 7) / 28)
    assert e["oracle"]["wape"] == pytest.approx((0 + 7 + 0) / 28)
    assert e["slices"]["wh"]["x"] == {"wape": pytest.approx(14 / 21), "bias": pytest.approx(0.0),
                                      "naive_wape": pytest.approx(14 / 21), "rows": 2}
    p90 = TaskConfig(name="demand_p90", label="demand", type="regression", loss="pinball", quantile=0.9)
    q = forecast_entry(p90, y, pred, rows, panel, {}, min_rows=1)
    assert q["pinball"] == pytest.approx((0.9 * 7 + 0 + 0.1 * 7) / 3) and q["coverage"] == pytest.approx(2 / 3)
    table = "\n".join(format_forecasts({"demand": {"forecast": e}, "demand_p90": {"forecast": q}}))
    assert "demand_p90" in table and "0.5000" in table


def test_the_conformal_adjustment_by_hand():
    # forecasts of 1 (mean level m = 1) and actuals 0..9: scores (y - 1) / 2 = -0.5 .. 4; the
    # rank ceil(0.9 * 11) = 10 is 4, so the P90 becomes 1 + 4 * (1 + 1) = 9, covering every row
    a = forecast.conformal_adjustment(np.arange(10.0), np.ones(10), 0.9, min_rows=1)
    assert (a["c"], a["m"], a["coverage"]) == (4.0, 1.0, [0.2, 1.0])
    assert np.allclose(forecast.calibrated(np.ones(3), a), 9.0)
    # an all-zero forecast (m falls back to the actuals' mean, 1.25) is still reached: 0 + 4 * 1.25
    a = forecast.conformal_adjustment(np.array([0.0, 0, 0, 5]), np.zeros(4), 0.9, min_rows=1)
    assert (a["c"], a["m"]) == (4.0, 1.25) and np.allclose(forecast.calibrated(np.zeros(1), a), 5.0)
    # an over-covering forecast comes down: scores (y - 20) / 40, the 10th is -0.275 -> 20 - 11 = 9
    a = forecast.conformal_adjustment(np.arange(10.0), np.full(10, 20.0), 0.9, min_rows=1)
    assert a["c"] == pytest.approx(-0.275) and np.allclose(forecast.calibrated(np.full(2, 20.0), a), 9.0)
    # under min_rows, or when the pinball loss would not fall (a median already in place): as trained
    assert forecast.conformal_adjustment(np.arange(10.0), np.ones(10), 0.9) is None
    assert forecast.conformal_adjustment(np.arange(11.0), np.full(11, 5.0), 0.5, min_rows=1) is None


def test_a_conformal_adjustment_covers_new_rows_at_its_quantile():
    """An under-covering P90 (a forecast of the mean), adjusted on one sample of rows of very
    different sizes, covers a new sample from the same process at about 90%, and its pinball
    loss there falls."""
    rng = np.random.default_rng(0)

    def draw(n):
        level = rng.gamma(0.5, 10.0, n)  # many slow movers, a few best sellers
        return rng.poisson(level).astype(float), level

    actual, mean = draw(5000)
    a = forecast.conformal_adjustment(actual, mean, 0.9)
    new_actual, new_mean = draw(20000)
    moved = forecast.calibrated(new_mean, a)
    assert np.mean(new_actual <= new_mean) < 0.8 and a["c"] > 0
    assert abs(np.mean(new_actual <= moved) - 0.9) < 0.015
    assert forecast.pinball(new_actual, moved, 0.9) < forecast.pinball(new_actual, new_mean, 0.9)


def test_a_longer_horizon_is_scaled_by_its_own_days():
    """demand_14d is demand over 14 days: MASE and RMSSE divide by 14 days of in-sample error."""
    import pandas as pd

    from mtl.config import PanelConfig, TaskConfig
    from mtl.evaluation.forecasting import forecast_entry, format_forecasts, is_forecast

    panel = PanelConfig(series=("item",), sums={"demand": "units"}, events={"out": "stockout"}, horizon=7,
                        horizons=(14,))
    assert panel.is_sum("demand_14d") and not panel.is_sum("out_14d") and panel.horizon_of("demand_14d") == 14
    rows = pd.DataFrame({"item": ["a", "a", "b"], "naive_demand_14d": [7.0, 14.0, 0.0],
                         "scale_mae_demand_14d": [1.0, 1.0, 2.0], "scale_mse_demand_14d": [1.0, 1.0, 4.0]})
    y, pred = np.array([14.0, 7.0, 7.0]), np.array([7.0, 7.0, 14.0])
    task = TaskConfig(name="d14", label="demand_14d", type="regression", loss="tweedie")
    assert is_forecast(task, panel)
    e = forecast_entry(task, y, pred, rows, panel, {}, min_rows=1)
    assert e["horizon"] == 14 and e["wape"] == pytest.approx(14 / 28)
    assert e["mase"] == pytest.approx((3.5 / 14 + 7 / 14 / 2) / 2)  # half the 7-day figure of the same errors
    assert "   14" in "\n".join(format_forecasts({"d14": {"forecast": e}}))
    with pytest.raises(ValueError, match="longer than horizon"):
        PanelConfig(series=("item",), sums={"demand": "units"}, horizon=7, horizons=(7,))
