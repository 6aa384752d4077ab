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


def _query(env: dict[str, str], sql: str, args: tuple) -> list[tuple]:
    """Rows from the metadata DB the environment points at (SQLite file or PostgreSQL)."""
    url = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            return db.execute(sql, args).fetchall()
    import psycopg2

    with psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://")) as db, db.cursor() as cur:
        cur.execute(sql.replace("?", "%s"), args)
        return cur.fetchall()


def run_states(home: Path | dict, dag_id: str = DAG_ID) -> tuple[str, dict[str, str | None]]:
    """The latest run of ``dag_id`` in the metadata DB: its state and each task's state (a mapped
    task as ``task[i]``).

    Read straight from the DB: the CLI's `-o json` output shares stdout with log lines, and
    `dag_run` / `task_instance` (dag_id, run_id, task_id, map_index, state) are Airflow's oldest tables.
    ``home`` is an AIRFLOW_HOME with airflow.db, or the environment of the run.
    """
    env = home if isinstance(home, dict) else {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}"}
    runs = _query(env, "SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC", (dag_id,))
    assert runs, f"no run of {dag_id}"
    run_id, run_state = runs[0]
    rows = _query(env, "SELECT task_id, map_index, state FROM task_instance WHERE dag_id = ? AND run_id = ?",
                  (dag_id, run_id))
    return run_state, {(t if i < 0 else f"{t}[{i}]"): state for t, i, state in rows}


def tail(output: str, lines: int = 60) -> str:
    return "\n".join(output.splitlines()[-lines:])
