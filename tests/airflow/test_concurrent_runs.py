"""Two `mtl_training` runs at once under the LocalExecutor (`airflow standalone`): each works in a
workspace of its own (mtl/workspaces.py), both succeed, and the checkout's params.yaml is never
written while they run."""

from __future__ import annotations

import time
from datetime import datetime

from mlflow import MlflowClient

from mtl import tracking, workspaces
from mtl.paths import Paths
from tests.airflow.airflow_env import DAG_ID
from tests.airflow.live import FINISHED, LiveAirflow

FORMS = ({"epochs": 1, "architecture": "shared_bottom", "gate": "relaxed"},
         {"epochs": 2, "tasks": ["click", "purchase", "dwell"], "gate": "relaxed"})


def _interval(ti: dict) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(ti["start_date"]), datetime.fromisoformat(ti["end_date"])


def test_two_runs_with_different_forms_proceed_at_once(live_airflow: LiveAirflow):
    live = live_airflow
    live.wait_for_dag(DAG_ID)
    live.unpause(DAG_ID)
    params = live.project / "params.yaml"
    own = params.read_bytes()
    runs = [live.trigger(DAG_ID, form) for form in FORMS]
    deadline = time.monotonic() + 900
    while True:  # the checkout's params.yaml, byte for byte, all the while
        assert params.read_bytes() == own
        states = [live.api("GET", f"/dags/{DAG_ID}/dagRuns/{r}")["state"] for r in runs]
        if all(s in FINISHED for s in states) or time.monotonic() > deadline:
            break
        time.sleep(1)
    results = [live.wait_run(DAG_ID, r, timeout=5) for r in runs]
    for result in results:
        assert result.state == "success", live.explain(DAG_ID, result) + "\n" + live.log_tail()

    # They ran at the same time: some task of one ran while a pipeline task of the other did.
    work = [[_interval(ti) for ti in live.api("GET", f"/dags/{DAG_ID}/dagRuns/{r}/taskInstances?limit=100")
             ["task_instances"] if ti["start_date"] and ti["end_date"] and ti["task_id"] != "configure"]
            for r in runs]
    assert any(a0 < b1 and b0 < a1 for a0, a1 in work[0] for b0, b1 in work[1]), work

    # Each trained with its own form, tracked into the project's store.
    client = MlflowClient(tracking.tracking_uri(Paths.at(live.project)))
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT).experiment_id
    for run_id, form in zip(runs, FORMS):
        (trained,) = [r for r in client.search_runs([experiment], f"tags.`mtl.airflow_run_id` = '{run_id}'")
                      if r.data.tags.get("mtl.role") != "baseline"]
        assert trained.data.params["train.epochs"] == str(form["epochs"])
        assert trained.data.tags["mtl.workspace"] == str(workspaces.path_for(live.project, run_id))
    assert not any(workspaces.path_for(live.project, r).exists() for r in runs)  # finished: removed
