"""Human approval before promotion (params.yaml airflow.approval) on a live Airflow, answered the
way the UI's "Required actions" page does (the HITL REST API), and the links the plugin puts on
the task instances.

It switches approval on in the shared live project, so it runs last of the live tests (pytest
takes files in name order: test_ui_approval.py after test_ui.py and test_retraining.py)."""

from __future__ import annotations

import json
import time

from mtl import workspaces
from tests.airflow.live import LiveAirflow
from tests.conftest import set_params

DAG = "mtl_training"


def _wait_tasks(live: LiveAirflow, has_approve: bool, timeout: float = 150) -> None:
    """Until the DAG processor has re-parsed the DAG with (or without) the approval step."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = {t["task_id"] for t in live.api("GET", f"/dags/{DAG}/tasks")["tasks"]}
        if ("approve" in tasks) == has_approve:
            return
        time.sleep(3)
    raise TimeoutError(f"mtl_training not re-parsed with approval={has_approve}\n{live.log_tail()}")


def _wait_state(live: LiveAirflow, run_id: str, task: str, states: set[str], timeout: float = 400) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = live.task_states(DAG, run_id).get(task)
        if state in states:
            return state
        if live.api("GET", f"/dags/{DAG}/dagRuns/{run_id}")["state"] in ("success", "failed"):
            break
        time.sleep(3)
    raise AssertionError(f"{task} never reached {states}: {live.task_states(DAG, run_id)}\n{live.log_tail()}")


def _wait_pause_processed(live: LiveAirflow, run_id: str, timeout: float = 60) -> None:
    """Until the scheduler has handled the end of the workload that paused `approve`.

    Airflow 3.3.2 races when the answer comes within one scheduler loop of the pause (a quarter
    of a second here, never a person): the scheduler requeues the task for the answer, then takes
    the paused workload's "success" event for the requeued one and fails it ("finished with state
    success, but the task instance's state attribute is queued"). Answer as a person would: after
    the scheduler logged that workload as finished."""
    marker = f"TaskInstance Finished: dag_id={DAG}, task_id=approve, run_id={run_id},"
    deadline = time.monotonic() + timeout
    while marker not in live.log_path.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise AssertionError(f"the scheduler never logged the paused approve workload\n{live.log_tail()}")
        time.sleep(1)


def test_promotion_waits_for_approval_and_tasks_link_out(live_airflow: LiveAirflow):
    live = live_airflow
    live.wait_for_dag(DAG)
    live.unpause(DAG)
    run_id = None
    # A model name of its own: judged on floors alone (no champion yet), whatever ran before.
    set_params(live.project, {"airflow.approval": True, "gate.model_name": "mtl-approval"})
    try:
        _wait_tasks(live, has_approve=True)
        run_id = live.trigger(DAG, {"epochs": 1})
        # The gate passed: the run now waits for a person, and has not promoted.
        assert _wait_state(live, run_id, "approve", {"awaiting_input"}) == "awaiting_input"
        assert live.task_states(DAG, run_id)["promote"] in (None, "none")
        _wait_pause_processed(live, run_id)
        detail = live.api("GET", f"/dags/{DAG}/dagRuns/{run_id}/taskInstances/approve/-1/hitlDetails")
        assert detail["options"] == ["Approve", "Reject"] and detail["response_received"] is False
        live.api("PATCH", f"/dags/{DAG}/dagRuns/{run_id}/taskInstances/approve/-1/hitlDetails",
                 {"chosen_options": ["Approve"]})
        result = live.wait_run(DAG, run_id, timeout=300)
        assert result.state == "success", live.explain(DAG, result)
        assert result.tasks["approve"] == result.tasks["promote"] == "success", result.tasks

        # The plugin's links: GX Data Docs on validate, the MLflow run on train, the version on promote.
        def links(task: str) -> dict:
            return live.api("GET", f"/dags/{DAG}/dagRuns/{run_id}/taskInstances/{task}/links")["extra_links"]

        # published out of the run's workspace, which goes when the run ends
        docs = links("validate")["GX Data Docs"]
        assert f"/mtl/data-docs/runs/{workspaces.path_for(live.project, run_id).name}/index.html" in docs, docs
        assert "/#/experiments/" in links("train")["MLflow run"]
        version = json.loads((workspaces.latest(live.project) / "data" / "06_promotion" / "decision.json").read_text())
        assert version["promote"] is True
        assert links("promote")["Model version"].endswith(
            f"/#/models/mtl-approval/versions/{version['registered_version']}")
    finally:
        set_params(live.project, {"airflow.approval": False, "gate.model_name": "mtl-ecommerce"})
        if run_id is not None and live.task_states(DAG, run_id).get("approve") == "awaiting_input":
            live.api("PATCH", f"/dags/{DAG}/dagRuns/{run_id}/taskInstances/approve/-1/hitlDetails",
                     {"chosen_options": ["Reject"]})  # never leave a run holding max_active_runs
