"""DAG integrity: the DAG files parse, mirror dvc.yaml, and stay cheap to import.

Parsing happens in a child process (see airflow_env.py); the child prints what the tests need
about each DAG as JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mtl.config import load_config
from mtl.stagelist import STAGES
from tests.airflow.airflow_env import DAG_ID, airflow_env

REPO = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((REPO / "dags").glob("*.py"))

DESCRIBE_DAGS = """
import json
from airflow.dag_processing.dagbag import DagBag

bag = DagBag()  # AIRFLOW__CORE__DAGS_FOLDER


def params(dag):
    return {k: dag.params.get_param(k).schema | {"default": dag.params.get_param(k).value} for k in dag.params}


print("DAGBAG-JSON " + json.dumps({
    "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
    "dags": {
        dag_id: {
            "tasks": [t.task_id for t in dag.topological_sort()],
            "upstream": {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},
            "retries": {t.task_id: t.retries for t in dag.tasks},
            "backoff": {t.task_id: bool(t.retry_exponential_backoff) for t in dag.tasks},
            "pools": {t.task_id: t.pool for t in dag.tasks},
            "queues": {t.task_id: t.queue for t in dag.tasks},
            "kinds": {t.task_id: type(t).__name__ for t in dag.tasks},
            "setup": [t.task_id for t in dag.tasks if t.is_setup],
            "teardown": [t.task_id for t in dag.tasks if t.is_teardown],
            "mapped": [t.task_id for t in dag.tasks if type(t).__name__.endswith("MappedOperator")],
            "outlets": {t.task_id: [getattr(o, "name", str(o)) for o in t.outlets] for t in dag.tasks if t.outlets},
            "on_failure": {t.task_id: [type(c).__name__ for c in (t.on_failure_callback if isinstance(
                t.on_failure_callback, list) else [t.on_failure_callback] if t.on_failure_callback else [])]
                for t in dag.tasks},
            "deferrable": {t.task_id: bool(getattr(t, "deferrable", False)) for t in dag.tasks},
            "trigger_rules": {t.task_id: getattr(t.trigger_rule, "value", t.trigger_rule) for t in dag.tasks},
            "tags": sorted(dag.tags),
            "max_active_runs": dag.max_active_runs,
            "catchup": dag.catchup,
            "schedule": repr(dag.timetable),
            "params": params(dag),
            "doc_md": dag.doc_md,
        }
        for dag_id, dag in bag.dags.items()
    },
}, default=str))
"""


def describe_dags(home: Path, project: Path | None) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", DESCRIBE_DAGS], env=airflow_env(home, project), cwd=home,
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("DAGBAG-JSON "))
    return json.loads(line.removeprefix("DAGBAG-JSON "))


@pytest.fixture(scope="module")
def checkout_dags(tmp_path_factory) -> dict:
    """The checkout's dags folder as the DAG processor sees it, $MTL_PROJECT_DIR unset."""
    return describe_dags(tmp_path_factory.mktemp("airflow_home"), project=None)


def test_no_import_errors(checkout_dags):
    assert checkout_dags["import_errors"] == {}
    assert DAG_ID in checkout_dags["dags"]


DAG_IDS = {"mtl_training", "mtl_retraining", "mtl_ingest", "mtl_scoring", "mtl_maintenance"}
PIPELINE = ["generate", "validate", "preprocess", "baseline", "train", "score", "evaluate_task", "evaluate", "gate",
            "promote"]


def test_every_dag_has_tags_retries_and_one_run_at_a_time(checkout_dags):
    assert set(checkout_dags["dags"]) == DAG_IDS
    for dag_id, dag in checkout_dags["dags"].items():
        assert dag["tags"] and "mtl" in dag["tags"], dag_id
        # Training runs each work in a workspace of their own (airflow.max_active_runs at once);
        # scoring only reads the registry and writes its own day's file; retraining and ingest
        # each look at one incoming folder.
        limit = {"mtl_scoring": 4, "mtl_training": load_config(REPO / "params.yaml").airflow.max_active_runs}
        assert dag["max_active_runs"] == limit.get(dag_id, 1), dag_id
        assert dag["catchup"] is False, dag_id
        assert dag["doc_md"], dag_id


def test_training_dag_shape(checkout_dags):
    dag = checkout_dags["dags"][DAG_ID]
    assert dag["tasks"][0] == "configure" and dag["tasks"][-1] == "close_workspace"
    assert dag["tasks"][1:-1] == PIPELINE  # approval is off in params.yaml
    assert PIPELINE == [s.name for s in STAGES]  # the DAG, the CLI and dvc.yaml come from one list
    up = dag["upstream"]
    # a plain chain: each step waits for the one before it
    for before, after in zip(["configure", *PIPELINE], PIPELINE):
        # the mapped evaluation also reads the run's task list from configure
        expected = sorted([before, "configure"]) if after == "evaluate_task" else [before]
        assert up[after] == expected, (after, up[after])
    assert dag["setup"] == ["configure"] and dag["teardown"] == ["close_workspace"]
    assert "promote" in up["close_workspace"]  # the teardown comes last, whatever happened
    assert dag["mapped"] == ["evaluate_task"]
    assert dag["kinds"]["gate"] == "_ShortCircuitDecoratedOperator"
    assert dag["schedule"].startswith("<airflow") and "NullTimetable" in dag["schedule"]  # triggered only
    # training tasks in the GPU pool, retries with backoff everywhere but where a retry cannot help
    assert dag["pools"]["train"] == dag["pools"]["baseline"] == "mtl_gpu"
    retries = dict(dag["retries"])
    assert retries.pop("validate") == 0 and retries.pop("configure") == 0
    assert all(r >= 1 for t, r in retries.items() if t != "close_workspace")
    assert dag["backoff"]["train"] is True


def test_training_form_is_typed_with_params_yaml_defaults(checkout_dags):
    import yaml

    form = checkout_dags["dags"][DAG_ID]["params"]
    assert set(form) == {"architecture", "tasks", "epochs", "weighting", "data_source", "data_path",
                         "window_days", "gate"}
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert form["epochs"]["type"] == "integer" and form["epochs"]["default"] == params["train"]["epochs"]
    assert form["architecture"]["default"] == params["model"]["architecture"]
    assert {"mmoe", "ple", "esmm"} <= set(form["architecture"]["enum"])
    assert form["tasks"]["default"] == [t["name"] for t in params["tasks"]]
    assert form["weighting"]["default"] == params["train"]["weighting"]["method"]
    assert form["gate"]["enum"] == ["as_configured", "strict", "relaxed"]


def test_retraining_dags(checkout_dags):
    ingest, retraining = checkout_dags["dags"]["mtl_ingest"], checkout_dags["dags"]["mtl_retraining"]
    assert ingest["outlets"] == {"publish_new_files": ["mtl_incoming"]}
    # the schedule of params.yaml OR an update of the incoming folder's Asset
    assert "AssetOrTimeSchedule" in retraining["schedule"] and "mtl_incoming" in retraining["schedule"]
    assert "0 0 * * 0" in retraining["schedule"]  # @weekly
    assert retraining["tasks"] == ["data_changed", "retrain", "record"]
    assert retraining["kinds"]["data_changed"] == "_ShortCircuitDecoratedOperator"
    assert retraining["kinds"]["retrain"] == "TriggerDagRunOperator"


def test_scoring_dag(checkout_dags):
    dag = checkout_dags["dags"]["mtl_scoring"]
    assert dag["tasks"] == ["wait_for_input", "score"]
    assert dag["upstream"]["score"] == ["wait_for_input"]
    assert dag["kinds"]["wait_for_input"] == "DecoratedSensorOperator"
    # @daily over data intervals: the run at midnight scores the day that just ended
    assert "CronDataIntervalTimetable" in dag["schedule"] and "0 0 * * *" in dag["schedule"]
    assert dag["params"]["day"]["default"] is None and dag["params"]["day"]["format"] == "date"


def _project_dags(tmp_path, params_patch: dict) -> dict:
    """The DAGs as parsed for a project copy whose params.yaml is patched."""
    from tests.conftest import copy_project, set_params

    project = copy_project(tmp_path / "project")
    set_params(project, params_patch)
    home = tmp_path / "airflow_home"
    home.mkdir()
    return describe_dags(home, project)


def test_approval_and_schedules_follow_params_yaml(tmp_path):
    parsed = _project_dags(tmp_path, {"airflow.approval": True, "airflow.retraining.schedule": None,
                                      "airflow.scoring.schedule": None,
                                      "airflow.gpu_pool": "gpus", "train.epochs": 7})
    assert parsed["import_errors"] == {}
    dag = parsed["dags"][DAG_ID]
    assert dag["tasks"][1:-1] == [*PIPELINE[:-1], "approve", "promote"]
    assert dag["upstream"]["approve"] == ["gate"] and dag["upstream"]["promote"] == ["approve"]
    assert dag["kinds"]["approve"] == "ApprovalOperator"
    assert dag["pools"]["train"] == "gpus"
    assert dag["params"]["epochs"]["default"] == 7
    # no schedule: retraining runs only when new data lands
    assert "AssetTriggeredTimetable" in parsed["dags"]["mtl_retraining"]["schedule"]
    assert "NullTimetable" in parsed["dags"]["mtl_scoring"]["schedule"]


def test_a_promotion_is_announced_scoring_follows_it_and_failures_are_told(tmp_path):
    """airflow.scoring.after_promotion: `announce` (after promote) updates the champion's Asset and
    mtl_scoring runs on it as well as on its clock; airflow.notify: every task of every DAG tells
    the notifier when it fails for good. The retraining trigger waits deferred."""
    parsed = _project_dags(tmp_path, {"airflow.scoring.after_promotion": True, "airflow.notify": {
        "notifier": "airflow.providers.smtp.notifications.smtp:SmtpNotifier",
        "args": {"to": "team@shop.example", "subject": "mtl {{ dag_run.run_id }}: {{ mtl_event | default('failure') }}"}}})
    assert parsed["import_errors"] == {}
    dag = parsed["dags"][DAG_ID]
    assert dag["tasks"][-2:] == ["announce", "close_workspace"] and dag["upstream"]["announce"] == ["promote"]
    assert dag["outlets"]["announce"] == ["mtl_champion__mtl-ecommerce"]
    assert "AssetOrTimeSchedule" in parsed["dags"]["mtl_scoring"]["schedule"]
    for dag_id in DAG_IDS:
        assert set(map(tuple, parsed["dags"][dag_id]["on_failure"].values())) == {("SmtpNotifier",)}, dag_id
    assert parsed["dags"]["mtl_retraining"]["deferrable"]["retrain"]


def test_by_default_nothing_is_announced_or_told(checkout_dags):
    dag = checkout_dags["dags"][DAG_ID]
    assert "announce" not in dag["tasks"] and not any(dag["on_failure"].values())
    assert "AssetOrTimeSchedule" not in checkout_dags["dags"]["mtl_scoring"]["schedule"]


def test_team_deployment_queue_push_and_multi_node_training(tmp_path):
    """A stack's GPU queue and DVC remote ($MTL_GPU_QUEUE / $MTL_DVC_REMOTE or params.yaml), and a
    two-machine training: `train` plus one `train_peer`, both on the GPU queue and pool."""
    parsed = _project_dags(tmp_path, {"airflow.gpu_queue": "gpu", "airflow.dvc_remote": "team",
                                      "train.distributed.nnodes": 2, "train.distributed.rdzv_endpoint": "gpu0:29400"})
    assert parsed["import_errors"] == {}
    dag = parsed["dags"][DAG_ID]
    up = dag["upstream"]
    assert dag["queues"]["train"] == dag["queues"]["baseline"] == dag["queues"]["train_peer"] == "gpu"
    assert dag["pools"]["train_peer"] == "mtl_gpu" and "train_peer" in dag["mapped"]
    assert up["train_peer"] == ["baseline"] and up["score"] == ["train", "train_peer"]
    assert {q for t, q in dag["queues"].items() if t not in ("train", "baseline", "train_peer")} == {"default"}
    # the outputs go to the remote once evaluated, beside the gate; params.yaml is restored after
    assert up["push"] == ["evaluate"] and "push" in up["close_workspace"]
    assert "`team`" in dag["doc_md"]


def test_dag_files_follow_mtl_project_dir(tmp_path):
    """$MTL_PROJECT_DIR picks the workspace: its params.yaml feeds the form, its folder the docs."""
    project = tmp_path / "project"
    (project / "dags").mkdir(parents=True)
    for f in DAG_FILES:
        (project / "dags" / f.name).write_text(f.read_text())
    (project / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
    (project / "params.yaml").write_text((REPO / "params.yaml").read_text().replace("epochs: 4", "epochs: 9"))
    home = tmp_path / "airflow_home"
    home.mkdir()
    parsed = describe_dags(home, project)
    assert parsed["import_errors"] == {}
    assert parsed["dags"][DAG_ID]["params"]["epochs"]["default"] == 9
    assert str(project) in parsed["dags"][DAG_ID]["doc_md"]


IMPORT_PROBE = """
import importlib.util, json, sys, time
import airflow.sdk  # the DAG processor has Airflow loaded already: time only the DAG file
before = set(sys.modules)
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("mtl_training_probe", sys.argv[1])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
print("PROBE-JSON " + json.dumps({
    "seconds": time.perf_counter() - start,
    "new_modules": sorted(set(sys.modules) - before),
}))
"""
HEAVY = ("torch", "mlflow", "great_expectations", "pandas", "sklearn", "dvc", "numpy")


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_fast_and_light(tmp_path, dag_file):
    proc = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, str(dag_file)], env=airflow_env(tmp_path, None), cwd=tmp_path,
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("PROBE-JSON "))
    probe = json.loads(line.removeprefix("PROBE-JSON "))
    heavy = [m for m in probe["new_modules"] if m.split(".")[0] in HEAVY]
    assert heavy == [], f"importing {dag_file.name} loaded {heavy}; import them inside the task instead"
    assert probe["seconds"] < 1.0, f"importing {dag_file.name} took {probe['seconds']:.2f}s"
