"""`mtl init --from PATH`, then the pipeline, with no edit in between, on files of other shapes
than the synthetic log: a parquet file with its own column names, ids as text, a timestamp and a
regression label, through `mtl run` (DVC); then a CSV folder split into train / valid / test
files, no timestamp, through the same stages in-process."""

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from mtl.paths import Paths
from mtl.stagelist import missing_params
from tests.conftest import set_params
from tests.e2e.test_stages import run_chain
from tests.code.test_init import _log

pytestmark = pytest.mark.slow


def _mtl(project, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mtl.cli", "--project", str(project), *args],
                          cwd=project, capture_output=True, text=True, timeout=900)


def _with_signal(log: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Labels that depend on the features (a visitor's and a surface's propensity), so the
    models have something to learn."""
    rng = np.random.default_rng(seed)
    visitor = log["visitor"].map(dict(zip(log["visitor"].unique(), rng.normal(0, 1, log["visitor"].nunique()))))
    logit = (-1.0 + 0.5 * visitor + log["surface"].map({"app": 1.2, "web": -1.2, "mini": 0.0})
             + 0.8 * (np.log1p(log["amount"]) - 3.0))
    click = rng.random(len(log)) < 1 / (1 + np.exp(-logit))
    order = click & (rng.random(len(log)) < 0.25)
    return log.assign(clicked=click.astype(int), ordered=order.astype(int),
                      seconds_on_page=np.where(click, rng.gamma(2, 20, len(log)), np.nan))


def test_init_then_run_without_edits_on_a_parquet_file_and_a_csv_folder(project, tmp_path):
    # the project's own settings, which init keeps: no baselines (time), small batches (6,000 rows)
    set_params(project, {"train.batch_size": 256, "evaluation.baselines": False})
    shop = tmp_path / "shop.parquet"
    _with_signal(_log(6000, seed=1).drop(columns=["title"]), seed=1).to_parquet(shop)
    done = _mtl(project, "init", "--from", str(shop), "--labels", "clicked,ordered,seconds_on_page")
    assert done.returncode == 0, done.stderr
    assert re.search(r"^event_time +time ", done.stdout, re.M), done.stdout
    assert "ordered: binary, only where clicked is 1" in done.stdout
    assert (project / "params.yaml.bak").is_file()
    run = _mtl(project, "run")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    paths = Paths.at(project)
    metrics = json.loads(paths.metrics_file.read_text())
    assert set(metrics["tasks"]) == {"clicked", "ordered", "seconds_on_page"}
    assert metrics["tasks"]["clicked"]["auc"] > 0.7  # the features carry the signal through (oracle ~0.8)
    assert json.loads(paths.transform_file.read_text())["split"]["method"] == "time"
    assert json.loads(paths.decision_file.read_text())["summary"]
    assert "the stages that ran:" in run.stdout and "train" in run.stdout.split("the stages that ran:")[1]

    # Another shop: CSV files named for their split, text ids, no timestamp; labels guessed (0/1)
    folder = tmp_path / "export"
    folder.mkdir()
    other = _with_signal(_log(6000, seed=2), seed=2).drop(columns=["title", "event_time", "recent_skus",
                                                                    "seconds_on_page"])
    other = other.rename(columns={"visitor": "customer_ref", "sku_id": "product", "clicked": "is_click",
                                  "ordered": "is_order"}).assign(product=lambda d: "p" + d["product"].astype(str))
    for name, rows in (("train", slice(0, 4200)), ("valid", slice(4200, 4800)), ("test", slice(4800, None))):
        other.iloc[rows].to_csv(folder / f"{name}.csv", index=False)
    done = _mtl(project, "init", "--from", str(folder))
    assert done.returncode == 0, done.stderr
    raw = yaml.safe_load((project / "params.yaml").read_text())
    assert raw["data"]["schema"]["labels"] == ["is_click", "is_order"] and "synthetic" not in raw["data"]
    assert missing_params(raw) == []  # what `mtl run` needs from DVC's side, checked above on the first file
    run_chain(project)  # the same stages in-process: one DVC chain per test is enough (CI time)
    manifest = json.loads(paths.raw_manifest.read_text())
    assert manifest["splits"] == {"train": 4200, "validation": 600, "test": 1200}  # the files' own split
    assert set(json.loads(paths.metrics_file.read_text())["tasks"]) == {"is_click", "is_order"}
