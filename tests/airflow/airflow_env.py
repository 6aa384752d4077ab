"""Run the Airflow CLI against a project copy, in its own AIRFLOW_HOME with a SQLite metadata DB.

Airflow is only ever run in child processes: importing it reads its configuration from the
environment once and reconfigures logging for the whole interpreter, which must not leak into
(or depend on) the pytest process.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

# The `airflow` entry point of the interpreter running the tests (the project's virtualenv).
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
DAG_ID = "mtl_training"


def airflow_env(home: Path, project: Path | None) -> dict[str, str]:
    """Environment for an Airflow command: nothing inherited from the caller's Airflow setup.

    ``project=None`` leaves $MTL_PROJECT_DIR unset (the DAG then uses the folder above dags/)
    and loads the checkout's own dags folder.
    """
    repo = Path(__file__).resolve().parents[2]
    dags_root = project or repo
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    for var in ("MTL_PROJECT_DIR", "MLFLOW_TRACKING_URI"):
        env.pop(var, None)
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags_root / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(dags_root / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        DVC_NO_ANALYTICS="1",
    )
    if project is not None:
        env["MTL_PROJECT_DIR"] = str(project)
    return env


def airflow(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    """Run one `airflow ...` command; stdout and stderr together (task logs go to both)."""
    return subprocess.run(
        [AIRFLOW, *args], env=env, cwd=env["AIRFLOW_HOME"], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=timeout,
    )


def run_states(home: Path, dag_id: str = DAG_ID) -> tuple[str, dict[str, str | None]]:
    """The (only) run of ``dag_id`` in the metadata DB: its state and each task's state.

    Read straight from SQLite: the CLI's `-o json` output shares stdout with log lines, and
    `dag_run` / `task_instance` (dag_id, run_id, task_id, state) are Airflow's oldest tables.
    """
    with sqlite3.connect(home / "airflow.db") as db:
        runs = db.execute("SELECT run_id, state FROM dag_run WHERE dag_id = ?", (dag_id,)).fetchall()
        assert len(runs) == 1, f"expected one run of {dag_id}, found {runs}"
        run_id, run_state = runs[0]
        tasks = db.execute(
            "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", (dag_id, run_id)
        ).fetchall()
    return run_state, dict(tasks)


def tail(output: str, lines: int = 60) -> str:
    return "\n".join(output.splitlines()[-lines:])
