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

from mtl.pipeline import stage_names
from tests.airflow.airflow_env import DAG_ID, airflow_env

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "dags" / "mtl_training.py"

DESCRIBE_DAGS = """
import json
from airflow.dag_processing.dagbag import DagBag

bag = DagBag()  # AIRFLOW__CORE__DAGS_FOLDER
print("DAGBAG-JSON " + json.dumps({
    "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
    "dags": {
        dag_id: {
            "tasks": [t.task_id for t in dag.topological_sort()],
            "upstream": {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},
            "retries": {t.task_id: t.retries for t in dag.tasks},
            "trigger_rules": {t.task_id: getattr(t.trigger_rule, "value", t.trigger_rule) for t in dag.tasks},
            "tags": sorted(dag.tags),
            "max_active_runs": dag.max_active_runs,
            "catchup": dag.catchup,
            "schedule": repr(dag.schedule),
            "doc_md": dag.doc_md,
        }
        for dag_id, dag in bag.dags.items()
    },
}))
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


def test_one_task_per_stage_in_dvc_order(checkout_dags):
    dag = checkout_dags["dags"][DAG_ID]
    stages = stage_names(REPO)
    assert dag["tasks"] == stages
    # A plain chain: each stage waits for exactly the one before it, with the default trigger
    # rule, so a failed stage leaves everything after it unrun (upstream_failed).
    assert dag["upstream"] == {s: ([stages[i - 1]] if i else []) for i, s in enumerate(stages)}
    assert set(dag["trigger_rules"].values()) == {"all_success"}


def test_dag_settings(checkout_dags):
    dag = checkout_dags["dags"][DAG_ID]
    assert dag["max_active_runs"] == 1
    assert dag["catchup"] is False
    assert dag["schedule"] == "None"  # manual trigger only
    assert dag["tags"]
    assert dag["doc_md"] and all(stage in dag["doc_md"] for stage in dag["tasks"])
    # Retries by default; bad data fails at once instead of being validated twice.
    retries = dag["retries"]
    assert retries.pop("validate") == 0
    assert all(r >= 1 for r in retries.values())


def test_stage_list_and_root_follow_mtl_project_dir(tmp_path):
    """$MTL_PROJECT_DIR picks the workspace, and the tasks come from its dvc.yaml."""
    project = tmp_path / "project"
    (project / "dags").mkdir(parents=True)
    (project / "dags" / "mtl_training.py").write_text(DAG_FILE.read_text())
    (project / "dvc.yaml").write_text("stages:\n  first: {cmd: 'true'}\n  second: {cmd: 'true'}\n")
    home = tmp_path / "airflow_home"
    home.mkdir()
    dag = describe_dags(home, project)["dags"][DAG_ID]
    assert dag["tasks"] == ["first", "second"] == stage_names(project)
    assert str(project) in dag["doc_md"]


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
HEAVY = ("torch", "mlflow", "great_expectations", "pandas", "sklearn", "dvc")


def test_dag_file_imports_fast_and_light(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, str(DAG_FILE)], env=airflow_env(tmp_path, None), cwd=tmp_path,
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("PROBE-JSON "))
    probe = json.loads(line.removeprefix("PROBE-JSON "))
    heavy = [m for m in probe["new_modules"] if m.split(".")[0] in HEAVY]
    assert heavy == [], f"importing the DAG file loaded {heavy}; import them inside the task instead"
    assert probe["seconds"] < 1.0, f"importing the DAG file took {probe['seconds']:.2f}s"
