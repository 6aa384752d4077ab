"""The model card's plots (mtl/promotion/model_card.py): axes with labels and ticks, a legend
with each model's AUC or ECE, and the champion's curve beside the candidate's."""

import re

import numpy as np
import pandas as pd

from mtl.config import parse_config
from mtl.evaluation import metrics
from mtl.evaluation.compare import compare
from mtl.promotion import model_card


def test_the_roc_and_reliability_plots_show_both_models_on_labelled_axes():
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.3).astype(float)
    candidate, champion = np.clip(0.3 + 0.3 * (y - 0.3) + rng.normal(0, 0.2, 2000), 0, 1), rng.random(2000)
    cfg = parse_config({"data": {"schema": {"categorical": ["u"], "labels": ["click"]}},
                        "tasks": [{"name": "click", "label": "click", "type": "binary"}],
                        "evaluation": {"bootstrap": 0, "slices": [], "gauc_by": None}})
    rows = pd.DataFrame({"u": "a", "click": y})
    comparison = compare(pd.DataFrame({"click": candidate}), pd.DataFrame({"click": champion}), rows, cfg)
    assert comparison["click"]["champion_roc"] == metrics.roc_points(y, champion)
    card = {"model_name": "m", "comparison": comparison, "decision": {"summary": "promoted", "tasks": []},
            "metrics": {"click": {"type": "binary", "auc": metrics.auc(y, candidate), "ece": metrics.ece(y, candidate)}}}
    page = model_card.to_html(card, {"click": metrics.roc_points(y, candidate)},
                              {"click": metrics.reliability(y, candidate)})
    svgs = re.findall(r"<svg.*?</svg>", page)
    assert len(svgs) == 2
    roc, reliability = svgs
    assert "false positive rate" in roc and "true positive rate" in roc
    assert f"candidate (AUC {metrics.auc(y, candidate):.3f})" in roc
    assert f"champion (AUC {comparison['click']['champion']:.3f})" in roc
    assert roc.count("<polyline") == 3  # the diagonal, the candidate, the champion
    assert "mean prediction" in reliability and "observed rate" in reliability and "champion" in reliability
    assert ">0.5<" in roc and ">1<" in roc  # ticks
    alone = model_card.to_html(card | {"comparison": None}, {"click": metrics.roc_points(y, candidate)})
    assert "champion (AUC" not in alone and alone.count("<polyline") == 2  # a first model: its curve alone
