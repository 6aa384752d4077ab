"""Threshold metrics: the F1-maximising threshold (chosen on validation) and precision, recall,
F1 and accuracy at it (reported on test), checked against scikit-learn."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_recall_curve, precision_score, recall_score

from mtl.config import parse_config
from mtl.evaluation import metrics
from mtl.evaluation.evaluate import at_thresholds, evaluate_scores, format_table
from mtl.promotion import model_card

CFG = parse_config({
    "data": {"schema": {"categorical": ["u"], "labels": ["click", "buy", "dwell"]}},
    "tasks": [{"name": "ctr", "label": "click", "type": "binary"},
              {"name": "ctcvr", "label": "buy", "type": "binary", "implies": "click"},
              {"name": "dwell", "label": "dwell", "type": "regression",
               "condition": {"column": "click", "equals": 1}}],
    "evaluation": {"bootstrap": 0},
})


def _scored(n: int, seed: int, decimals: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Labels and informative scores, rounded so that many rows tie."""
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.02, 0.7, n)
    y = (rng.random(n) < truth).astype(np.float64)
    return y, np.round(np.clip(truth + rng.normal(0, 0.15, n), 0, 1), decimals)


# Small logs too: there a cut point more or less, or a wrong denominator, changes the choice.
@pytest.mark.parametrize(("n", "decimals", "seed"), [(800, 2, s) for s in range(3)] + [(25, 1, s) for s in range(20)])
def test_best_threshold_maximises_f1_as_scikit_learn_measures_it(n, decimals, seed):
    y, p = _scored(n, seed, decimals)
    if y.min() == y.max():
        pytest.skip("one class: no threshold (tested below)")
    t = metrics.best_f1_threshold(y, p)
    precision, recall, thresholds = precision_recall_curve(y, p)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1_curve = np.nan_to_num(2 * precision * recall / (precision + recall))[:-1]
    best = f1_curve.max()
    assert t in set(p)  # a cut point at an observed score
    assert f1_score(y, p >= t) == pytest.approx(best, abs=1e-12)
    # Every distinct score as a threshold, scored by scikit-learn: none beats the chosen one, and
    # of the equally good ones it is the highest.
    brute = {float(c): f1_score(y, p >= c) for c in np.unique(p)}
    assert max(brute.values()) == pytest.approx(brute[t], abs=1e-12)
    assert t == max(c for c, f in brute.items() if f >= brute[t] - 1e-12)
    assert t == pytest.approx(thresholds[np.isclose(f1_curve, best, rtol=0, atol=1e-12)].max())


def test_threshold_metrics_match_scikit_learn_at_any_threshold():
    y, p = _scored(1000, 7)
    for t in (0.05, 0.21, 0.3, 0.5, 0.77, metrics.best_f1_threshold(y, p)):
        got = metrics.threshold_metrics(y, p, t)
        pred = (p >= t).astype(int)
        assert got["threshold"] == t
        assert got["precision"] == pytest.approx(precision_score(y, pred), abs=1e-12)
        assert got["recall"] == pytest.approx(recall_score(y, pred), abs=1e-12)
        assert got["f1"] == pytest.approx(f1_score(y, pred), abs=1e-12)
        assert got["accuracy"] == pytest.approx(accuracy_score(y, pred), abs=1e-12)


def test_a_row_at_exactly_the_threshold_is_predicted_positive():
    y, p = np.array([0.0, 1.0, 1.0, 0.0]), np.array([0.1, 0.4, 0.4, 0.9])
    got = metrics.threshold_metrics(y, p, 0.4)
    assert (got["precision"], got["recall"], got["accuracy"]) == (pytest.approx(2 / 3), 1.0, 0.75)
    assert metrics.best_f1_threshold(y, p) == 0.4  # both positives above 0.4 would drop recall


def test_of_equally_good_thresholds_the_highest_is_chosen():
    y, p = np.array([1.0, 0.0, 0.0, 1.0]), np.array([0.9, 0.8, 0.7, 0.6])
    assert f1_score(y, p >= 0.9) == f1_score(y, p >= 0.6) == pytest.approx(2 / 3)  # the best, twice
    assert metrics.best_f1_threshold(y, p) == 0.9  # fewer rows flagged for the same F1


def test_one_class_or_no_rows_gives_no_threshold_and_no_metrics():
    p = np.array([0.2, 0.5, 0.9])
    for y in (np.zeros(3), np.ones(3), np.zeros(0)):
        assert metrics.best_f1_threshold(y, p[: len(y)]) is None
    assert set(metrics.threshold_metrics(np.zeros(3), p, None).values()) == {None}
    assert set(metrics.threshold_metrics(np.zeros(0), p[:0], 0.5).values()) == {None}
    # Nothing predicted positive: precision is undefined (scikit-learn would warn and say 0).
    nothing = metrics.threshold_metrics(np.array([0.0, 1.0, 0.0]), p, 0.95)
    assert nothing["precision"] is None and nothing["recall"] == 0.0 and nothing["f1"] == 0.0


def test_f1_thresholds_use_each_binary_tasks_defined_rows_only():
    y, p = _scored(600, 3)
    hidden = np.arange(600) % 3 == 0  # rows where the task is undefined: their labels are 0 by design
    labels = np.stack([y, np.where(hidden, 0.0, y), np.zeros(600)], axis=1)
    mask = np.stack([np.ones(600, bool), ~hidden, np.ones(600, bool)], axis=1)
    scores = np.stack([p, np.where(hidden, 1.0, p), p], axis=1)
    got = metrics.f1_thresholds(scores, labels, mask, CFG.tasks)
    assert set(got) == {"ctr", "ctcvr"}  # the regression task has none
    assert got["ctr"] == metrics.best_f1_threshold(y, p)
    assert got["ctcvr"] == metrics.best_f1_threshold(y[~hidden], p[~hidden])


def _log(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    p_click = rng.uniform(0.05, 0.6, n)
    click = (rng.random(n) < p_click).astype(int)
    buy = click * (rng.random(n) < 0.4)
    rows = pd.DataFrame({"u": 0, "click": click, "buy": buy, "dwell": np.where(click == 1, rng.gamma(2, 10, n), np.nan)})
    scores = pd.DataFrame({"ctr": p_click, "ctcvr": p_click * 0.4, "dwell": 20.0})
    return rows, scores


def _table_row(table: str, task: str) -> dict[str, str]:
    """One task's row of the run table by column (without bootstrap: no interval, one '-')."""
    lines = table.splitlines()
    head = lines[0].replace("95% interval", "interval").split()
    row = next(line.split() for line in lines if line.startswith(task + " "))
    assert len(row) == len(head)
    return dict(zip(head, row))


def test_evaluation_reports_threshold_metrics_on_the_rows_of_the_tasks_auc():
    rows, scores = _log()
    thresholds = {"ctr": 0.3, "ctcvr": 0.1}
    result = evaluate_scores(scores, rows, CFG, thresholds=thresholds)
    for name, label in (("ctr", "click"), ("ctcvr", "buy")):
        # the funnel task over every impression, as its headline AUC
        y, s = rows[label].to_numpy(float), scores[name].to_numpy()
        assert result[name]["rows"] == len(rows)
        assert result[name]["f1"] == pytest.approx(f1_score(y, s >= thresholds[name]))
        assert result[name]["precision"] == pytest.approx(precision_score(y, s >= thresholds[name]))
        assert result[name]["threshold"] == thresholds[name]
    assert "f1" not in result["dwell"]
    assert at_thresholds(scores, rows, CFG.tasks, thresholds) == {
        name: {k: result[name][k] for k in ("threshold", "precision", "recall", "f1", "accuracy")}
        for name in ("ctr", "ctcvr")}

    ctr = _table_row(format_table(result), "ctr")
    assert ctr["F1@t"] == f"{result['ctr']['f1']:.4f}" and ctr["P@t"] == f"{result['ctr']['precision']:.4f}"
    assert ctr["R@t"] == f"{result['ctr']['recall']:.4f}"

    card = {"model_name": "m", "metrics": result, "decision": {"summary": "promoted", "tasks": []},
            "mtl_gain": {"tasks": {"ctr": {"gain": 0.0, "baseline_at_threshold": {"f1": 0.25}}}}}
    md = model_card.markdown(card)
    assert model_card.THRESHOLD_TITLE in md
    assert f"| ctr | 0.3000 | {result['ctr']['precision']:.4f} | {result['ctr']['recall']:.4f} | " \
           f"{result['ctr']['f1']:.4f} | {result['ctr']['accuracy']:.4f} | 0.2500 |" in md
    assert "| dwell | " not in md.split(model_card.THRESHOLD_TITLE)[1]
    assert model_card.THRESHOLD_TITLE in model_card.to_html(card)


def test_a_model_without_thresholds_is_evaluated_without_them():
    rows, scores = _log()
    result = evaluate_scores(scores, rows, CFG)  # e.g. trained before thresholds were saved
    assert result["ctr"]["auc"] is not None
    assert all(result["ctr"][k] is None for k in ("threshold", "precision", "recall", "f1", "accuracy"))
    ctr = _table_row(format_table(result), "ctr")
    assert ctr["AUC"] != "-" and ctr["F1@t"] == ctr["P@t"] == ctr["R@t"] == "-"
