"""scripts/airflow.sh wires Airflow to the project it sits in (without starting the servers)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


def _script(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    base["PATH"] = str(Path(sys.executable).parent) + os.pathsep + base.get("PATH", "")
    return subprocess.run(
        ["bash", str(project / "scripts" / "airflow.sh"), *args], env={**base, **env}, cwd=project,
        capture_output=True, text=True, timeout=120,
    )


def test_airflow_home_and_dags_live_in_the_project(project):
    proc = _script(project, "config", "get-value", "core", "dags_folder")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == str(project / "dags")
    assert (project / ".airflow" / "airflow.cfg").is_file()


def test_refuses_a_busy_port(project):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        proc = _script(project, AIRFLOW__API__PORT=port)
    assert proc.returncode == 1
    assert f"port {port} is already in use" in proc.stderr
