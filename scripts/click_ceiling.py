"""How much of the oracle's lift on click the default log lets a model learn.

    .venv/bin/python scripts/click_ceiling.py          # after `make run` (reads data/01_raw, data/05_evaluation)

The synthetic log records the true click probability of every row; the oracle AUC uses it. But
a model only sees ids: a user's own taste (their latent factor) is learnable only from their
rows, an item's only from its impressions. This rebuilds the generator's latent factors
(mtl/data/ingest/synthetic.py, params.yaml's data.synthetic) and scores the test day with the true
click logit in which what a model could not know from the training days is replaced by its
best guess:

- segment-level taste: every user's factor replaced by the mean of their segment's (items exact);
- ids known from K impressions: a user's or item's factor (and bias) exact when it has at least K
  training impressions, else its segment's or category's mean;
- no user taste at all.

Each line prints the test AUC and its share of the oracle's lift over random,
(AUC - 0.5) / (oracle - 0.5). With data/05_evaluation/test_predictions.parquet (a `make run`),
the trained model's and the single-task baseline's AUC per item-frequency band follow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

import benchparams  # scripts/, beside this file

ROOT = benchparams.ROOT


def main() -> None:
    from mtl.data.ingest import synthetic
    from mtl.paths import Paths

    # the ceilings come from the impression generator's latent factors, so params.yaml must generate that log
    cfg = benchparams.load(ROOT / "params.yaml")
    raw_file = Paths.at(ROOT).raw_file
    if not raw_file.is_file():
        benchparams.fail(f"{raw_file} does not exist: run the pipeline first (`make run`, or `mtl generate`)")
    world = synthetic.build_world(cfg.data.synthetic)
    raw = pd.read_parquet(raw_file, columns=["ts", "user_id", "item_id", "click", "p_click"])
    last_day = raw["ts"].max().normalize()
    test = raw[raw["ts"] >= last_day - pd.Timedelta(days=cfg.data.split.test_days - 1)]
    train = raw[raw["ts"] < last_day - pd.Timedelta(days=cfg.data.split.test_days + cfg.data.split.validation_days - 1)]
    y, u, i = test["click"].to_numpy(), test["user_id"].to_numpy(), test["item_id"].to_numpy()
    oracle = roc_auc_score(y, test["p_click"])

    def line(what: str, score: np.ndarray) -> None:
        a = roc_auc_score(y, score)
        print(f"{what:<62} {a:.4f}  {100 * (a - 0.5) / (oracle - 0.5):5.1f}%")

    p = test["p_click"].to_numpy()
    logit = np.log(p / (1 - p))
    v = world.item_factor["click"]
    # the affinity part of the click logit is 1.3 <u, v> (mtl/data/ingest/synthetic.py)
    rest = logit - 1.3 * np.einsum("ij,ij->i", world.user_factor[u], v[i])
    segment_mean = np.stack([world.user_factor[world.user_segment == s].mean(0)
                             for s in range(cfg.data.synthetic.user_segments)])
    category_mean = np.stack([v[world.item_category == c].mean(0) for c in range(cfg.data.synthetic.categories)])
    seg, cat = world.user_segment[u], world.item_category[i]
    user_rows = train["user_id"].value_counts().reindex(u).fillna(0).to_numpy()
    item_rows = train["item_id"].value_counts().reindex(i).fillna(0).to_numpy()

    print(f"test day: {len(test):,} rows, click rate {y.mean():.3f}; training days: {len(train):,} rows\n")
    line("oracle (the true probability)", logit)
    line("segment-level user taste, items exact", rest + 1.3 * np.einsum("ij,ij->i", segment_mean[seg], v[i]))
    for k in (30, 100, 300):
        uf = np.where((user_rows >= k)[:, None], world.user_factor[u], segment_mean[seg])
        vf = np.where((item_rows >= k)[:, None], v[i], category_mean[cat])
        biases = (np.where(user_rows >= k, 0.0, -world.user_bias[u])
                  + np.where(item_rows >= k, 0.0, -world.item_bias[i]))
        line(f"ids known from {k} training impressions, else group means", rest + biases
             + 1.3 * np.einsum("ij,ij->i", uf, vf))
    line("no user taste (items exact)", rest)

    predictions = ROOT / "data/05_evaluation/test_predictions.parquet"
    if not predictions.is_file():
        return
    # test_raw.parquet holds the test rows in the order the predictions are in
    rows = pd.read_parquet(ROOT / "data/03_features/test_raw.parquet", columns=["item_id", "click", "p_click"])
    model = pd.read_parquet(predictions)["click"].to_numpy()
    baseline_file = ROOT / "data/05_evaluation/baseline_predictions.parquet"
    baseline = pd.read_parquet(baseline_file) if baseline_file.is_file() else pd.DataFrame()
    counts = train["item_id"].value_counts().reindex(rows["item_id"]).fillna(0).to_numpy()
    yy = rows["click"].to_numpy()
    print("\nclick AUC by the item's training impressions: oracle, model (share of lift), single-task baseline")
    for lo, hi in ((0, 10), (10, 30), (30, 100), (100, 300), (300, 1000), (1000, None)):
        m = (counts >= lo) & (counts < (hi or np.inf))
        if yy[m].sum() < 20:
            continue
        o, a = roc_auc_score(yy[m], rows["p_click"].to_numpy()[m]), roc_auc_score(yy[m], model[m])
        b = f"{roc_auc_score(yy[m], baseline['click'].to_numpy()[m]):.4f}" if "click" in baseline else "-"
        print(f"  [{lo}, {hi or 'inf'}) impressions, {m.mean():6.1%} of rows: {o:.4f}  {a:.4f} "
              f"({100 * (a - 0.5) / (o - 0.5):.0f}%)  {b}")


if __name__ == "__main__":
    main()
