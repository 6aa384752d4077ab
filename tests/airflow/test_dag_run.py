"""The DAG end to end with `airflow dags test` on a small project copy and a SQLite metadata DB.

`airflow dags test` runs one DAG run in-process (no scheduler, no executor), writing task and
run states to the metadata DB, which is where the tests read them from.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mtl.pipeline import run_stage, stage_names
from tests.airflow.airflow_env import DAG_ID, airflow, airflow_env, run_states, tail
from tests.conftest import set_params

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def migrated_db(tmp_path_factory) -> Path:
    """An empty, migrated metadata DB, made once per module; each test runs on its own copy."""
    home = tmp_path_factory.mktemp("airflow_template")
    proc = airflow(["db", "migrate"], airflow_env(home, None), timeout=300)
    assert proc.returncode == 0, tail(proc.stdout)
    return home / "airflow.db"


@pytest.fixture
def airflow_home(tmp_path, migrated_db) -> Path:
    home = tmp_path / "airflow_home"
    home.mkdir()
    shutil.copy(migrated_db, home / "airflow.db")
    return home


def test_dag_runs_every_stage(project, airflow_home):
    proc = airflow(["dags", "test", DAG_ID], airflow_env(airflow_home, project))
    assert proc.returncode == 0, tail(proc.stdout)

    run_state, task_states = run_states(airflow_home)
    assert run_state == "success"
    assert task_states == {stage: "success" for stage in stage_names(project)}
    # Stage output (here DVC's own) streams into the task log, which `dags test` prints.
    assert "Running stage 'promote'" in proc.stdout
    assert (project / "data" / "05_evaluation" / "metrics.json").is_file()
    assert (project / "data" / "06_promotion" / "decision.json").is_file()


def _log_without_purchases(project: Path, dest: Path) -> Path:
    """The project's own synthetic impression log minus the `purchase` label, as a parquet file.

    Derived from the generator rather than written by hand so that it follows the schema in
    params.yaml: the only thing wrong with it is the missing column.
    """
    import pyarrow.parquet as pq

    run_stage("generate", root=project, echo=lambda line: None)
    (raw,) = (project / "data" / "01_raw").glob("*.parquet")
    pq.write_table(pq.read_table(raw).drop_columns(["purchase"]), dest)
    return dest


def test_invalid_data_fails_at_validate(project, airflow_home, tmp_path):
    bad_log = _log_without_purchases(project, tmp_path / "no_purchase.parquet")
    set_params(project, {"data.source": str(bad_log)})

    proc = airflow(["dags", "test", DAG_ID], airflow_env(airflow_home, project))
    assert proc.returncode != 0, tail(proc.stdout)

    run_state, task_states = run_states(airflow_home)
    assert run_state == "failed"
    stages = stage_names(project)
    after = stages[stages.index("validate") + 1:]
    assert task_states["generate"] == "success"
    assert task_states["validate"] == "failed"
    assert {task_states[s] for s in after} == {"upstream_failed"}
    # The failure reaches the task log naming the missing column.
    assert any("purchase" in line and "missing" in line for line in proc.stdout.splitlines()), tail(proc.stdout)
    assert not (project / "data" / "04_model").exists()
