"""Data-triggered retraining on a live Airflow: new files in the incoming folder -> `mtl_ingest`
publishes the Asset -> the scheduler starts `mtl_retraining` -> it runs `mtl_training` on the
window of new data. The same data again is a no-op."""

from __future__ import annotations

import json
import time

import pandas as pd

from mtl import workspaces
from mtl.config import load_config
from mtl.data.ingest import synthetic
from tests.airflow.live import LiveAirflow


def _runs(live: LiveAirflow, dag_id: str) -> list[dict]:
    return live.api("GET", f"/dags/{dag_id}/dagRuns?limit=100&order_by=-run_after")["dag_runs"]


def _wait_new_run(live: LiveAirflow, dag_id: str, known: set[str], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [r for r in _runs(live, dag_id) if r["dag_run_id"] not in known]
        if new:
            return new[0]
        time.sleep(2)
    raise TimeoutError(f"no new run of {dag_id} after {timeout:.0f} s\n{live.log_tail()}")


def _drop_daily_files(live: LiveAirflow, days: slice) -> list[str]:
    """The project's synthetic log, split into one parquet file per day, written as a producer
    would: under a temporary name, then renamed (mtl_ingest never sees a half-written file)."""
    cfg = load_config(live.project / "params.yaml")
    log = live.project / ".cache" / "log.parquet"
    if not log.exists():
        log.parent.mkdir(exist_ok=True)
        synthetic.write(cfg.data.synthetic, log)
    frame = pd.read_parquet(log)
    incoming = live.project / "data" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    names = []
    for day, rows in list(frame.groupby(frame["ts"].dt.floor("D")))[days]:
        name = f"impressions_{day:%Y-%m-%d}.parquet"
        rows.to_parquet(incoming / f"{name}.part", index=False)
        (incoming / f"{name}.part").rename(incoming / name)
        names.append(name)
    return names


def test_new_files_trigger_retraining_on_the_window_and_same_data_is_a_no_op(live_airflow: LiveAirflow):
    live = live_airflow
    for dag_id in ("mtl_ingest", "mtl_retraining", "mtl_training"):
        live.wait_for_dag(dag_id)
        live.unpause(dag_id)
    seen_retraining = {r["dag_run_id"] for r in _runs(live, "mtl_retraining")}
    seen_training = {r["dag_run_id"] for r in _runs(live, "mtl_training")}

    files = _drop_daily_files(live, slice(0, 14))
    ingest = live.wait_run("mtl_ingest", live.trigger("mtl_ingest"), timeout=120)
    assert ingest.state == "success" and ingest.tasks == {"publish_new_files": "success"}, ingest

    # The Asset event, not a person or a clock, starts the retraining run.
    retraining = _wait_new_run(live, "mtl_retraining", seen_retraining)
    assert retraining["run_type"] == "asset_triggered", retraining
    result = live.wait_run("mtl_retraining", retraining["dag_run_id"], timeout=600)
    if result.state != "success":  # say why: the failed task is in the mtl_training run it started
        training_id = f"retraining__{retraining['dag_run_id']}"
        training = live.wait_run("mtl_training", training_id, timeout=60)
        raise AssertionError(live.explain("mtl_retraining", result) + "\n" + live.explain("mtl_training", training))
    assert result.tasks == {"data_changed": "success", "retrain": "success", "record": "success"}

    # ... which trained through mtl_training, on the incoming files' newest window_days.
    training = _wait_new_run(live, "mtl_training", seen_training, timeout=10)
    assert training["dag_run_id"] == f"retraining__{retraining['dag_run_id']}"
    assert training["state"] == "success"
    window = load_config(live.project / "params.yaml").airflow.retraining.window_days
    assert training["conf"]["data_source"] == str(live.project / "data" / "incoming")
    assert training["conf"]["window_days"] == window
    manifest = json.loads((workspaces.latest(live.project) / "data" / "01_raw" / "manifest.json").read_text())
    assert manifest["files"] == [str(live.project / "data" / "incoming" / f) for f in files]
    assert manifest["window"]["days"] == window == 10
    assert manifest["window"]["from"].startswith(files[4].removeprefix("impressions_").removesuffix(".parquet"))
    assert manifest["window"]["to"].startswith(files[-1].removeprefix("impressions_").removesuffix(".parquet"))
    seen_retraining.add(retraining["dag_run_id"])
    seen_training.add(training["dag_run_id"])

    # Nothing new: mtl_ingest publishes nothing (skipped: no Asset event, no retraining run) ...
    ingest = live.wait_run("mtl_ingest", live.trigger("mtl_ingest"), timeout=120)
    assert ingest.tasks == {"publish_new_files": "skipped"}, ingest
    # ... and a retraining run on the same data (here by hand) is a no-op.
    again = live.wait_run("mtl_retraining", live.trigger("mtl_retraining"), timeout=120)
    assert again.state == "success"
    assert again.tasks == {"data_changed": "success", "retrain": "skipped", "record": "skipped"}, again
    seen_retraining.add(again.run_id)
    assert {r["dag_run_id"] for r in _runs(live, "mtl_retraining")} == seen_retraining
    assert {r["dag_run_id"] for r in _runs(live, "mtl_training")} == seen_training
