"""A real Airflow (`scripts/airflow.sh`, i.e. `airflow standalone`) over a project copy, driven
through its REST API.

Airflow runs only in child processes, as in airflow_env.py: the pytest process never imports it.
Standalone starts the API server, scheduler, DAG processor and triggerer as its own children, and
task processes put themselves in process groups of their own, so stopping it means signalling
every descendant, not only the group that the script starts.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FINISHED = {"success", "failed"}


@dataclass(frozen=True)
class RunResult:
    """A finished DAG run: its state and the state of each task instance (mapped ones as task[i])."""

    run_id: str
    state: str
    tasks: dict[str, str | None] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def live_env(project: Path, port: int) -> dict[str, str]:
    """The environment `scripts/airflow.sh` starts under: nothing from the caller's Airflow setup.

    The script derives AIRFLOW_HOME, the DAGs and plugins folders from the project it sits in; the
    rest is set here so that a run does not depend on who starts it.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    for var in ("MTL_PROJECT_DIR", "MLFLOW_TRACKING_URI"):
        env.pop(var, None)
    # A project copy has no .venv: the script, and standalone (which runs `airflow <component>`
    # from PATH), must find the interpreter running the tests.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.update(
        MTL_PROJECT_DIR=str(project),
        DVC_NO_ANALYTICS="1",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__HOST="127.0.0.1",
        # Look for new DAG files every 5 s instead of every 5 minutes (changed files are re-parsed
        # whenever the processor's queue empties, new ones only on a bundle refresh).
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        # Re-parse known files every 10 s instead of 30 (the DAGs read params.yaml when parsed).
        AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="10",
        # One parser process: a test machine may have two cores, and tasks need them more.
        AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES="1",
        # LocalExecutor forks this many workers up front (default 32); runs here are few and serial.
        AIRFLOW__CORE__PARALLELISM="4",
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )
    return env


class LiveAirflow:
    """`airflow standalone` for one project, on a free port, with an admin token for the REST API."""

    # what /monitor/health must call healthy before the tests start
    HEALTH_COMPONENTS: tuple[str, ...] = ("metadatabase", "scheduler", "dag_processor")

    def __init__(self, project: Path, port: int | None = None):
        self.project = project
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = project / ".airflow"
        self.log_path = self.home / "standalone.log"  # .airflow/ is git-ignored
        self.username = "admin"
        self.password = ""
        self._token = ""
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, timeout: float = 180) -> LiveAirflow:
        """Start Airflow and return once the API answers and the scheduler and DAG processor report in."""
        started = time.monotonic()
        self.home.mkdir(parents=True, exist_ok=True)
        try:
            self._launch()
            self._wait_healthy(started + timeout)
            self.password = self._wait_password(started + timeout)
            self._token = self._login()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def _launch(self) -> None:
        with open(self.log_path, "ab") as log:
            # Its own session (and process group), so that stop() can signal all of it at once.
            self._proc = subprocess.Popen(
                ["bash", str(self.project / "scripts" / "airflow.sh")], cwd=self.project,
                env=live_env(self.project, self.port), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )

    def stop(self, grace: float = 30) -> None:
        """SIGTERM everything Airflow started, SIGKILL what is left after ``grace`` seconds."""
        if self._proc is None:
            return
        root = self._proc.pid
        known = _descendants(root)
        if self._proc.poll() is None:
            known[root] = _start_time(root)
        _signal_all(root, known, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            self._proc.poll()
            known.update(_descendants_of(known))  # children spawned while shutting down
            if not _alive(known):
                break
            time.sleep(0.5)
        else:
            _signal_all(root, known, signal.SIGKILL)
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._proc = None

    def __enter__(self) -> LiveAirflow:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_tail(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- REST API --------------------------------------------------------------------------------

    def api(self, method: str, path: str, json: Any = None) -> Any:
        """Call the REST API (``path`` under /api/v2, e.g. "/dags/x") as admin; the decoded JSON reply.

        A read or an idempotent update that meets the SQLite metadata DB locked by the scheduler
        (HTTP 500 "Database error", while task processes write) is tried again a few times; a
        trigger (POST) never is, since a retry could start a second run."""
        for attempt in range(4):
            try:
                return self._request(method, f"/api/v2{path}", json, token=self._token)
            except AirflowAPIError as e:
                if method == "POST" or e.status != 500 or "Database error" not in str(e) or attempt == 3:
                    raise
                time.sleep(2 * (attempt + 1))

    def unpause(self, dag_id: str) -> None:
        self.api("PATCH", f"/dags/{dag_id}?update_mask=is_paused", {"is_paused": False})

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> dict:
        """Wait until the DAG processor has parsed and stored ``dag_id``; its /dags record."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.api("GET", f"/dags/{dag_id}")
            except AirflowAPIError as e:
                if e.status != 404:
                    raise
            self._check_running()
            if time.monotonic() > deadline:
                errors = self.api("GET", "/importErrors").get("import_errors", [])
                detail = "\n".join(f"{e['filename']}:\n{e['stack_trace']}" for e in errors) or self.log_tail()
                raise TimeoutError(f"DAG {dag_id!r} not parsed after {timeout:.0f} s:\n{detail}")
            time.sleep(2)

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        """Start a manual run of ``dag_id``; its run_id."""
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
        return run["dag_run_id"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 600) -> RunResult:
        """Poll until the run succeeds or fails; raises TimeoutError (with task states) after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            if state in FINISHED:
                return RunResult(run_id, state, self.task_states(dag_id, run_id))
            self._check_running()
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"run {run_id} of {dag_id} still {state!r} after {timeout:.0f} s; tasks: "
                    f"{self.task_states(dag_id, run_id)}\n{self.log_tail()}"
                )
            time.sleep(3)

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        states: dict[str, str | None] = {}
        offset = 0
        while True:
            page = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100&offset={offset}")
            for ti in page["task_instances"]:
                key = ti["task_id"] if ti.get("map_index", -1) < 0 else f"{ti['task_id']}[{ti['map_index']}]"
                states[key] = ti["state"]
            offset += len(page["task_instances"])
            if not page["task_instances"] or offset >= page["total_entries"]:
                return states

    def explain(self, dag_id: str, result: RunResult, lines: int = 40) -> str:
        """The states of ``result`` and the log tail of each task instance that did not succeed, so a
        failed run in CI says why without a second run."""
        parts = [f"run {result.run_id}: {result.state}; tasks: {result.tasks}"]
        for key, state in result.tasks.items():
            if state != "failed":
                continue
            task, _, index = key.partition("[")
            map_index = int(index.rstrip("]")) if index else -1
            try:
                ti = self.api("GET", f"/dags/{dag_id}/dagRuns/{result.run_id}"
                              f"/taskInstances/{task}" + (f"/{map_index}" if map_index >= 0 else ""))
                log = self.api("GET", f"/dags/{dag_id}/dagRuns/{result.run_id}"
                               f"/taskInstances/{task}/logs/{max(ti.get('try_number') or 1, 1)}"
                               f"?map_index={map_index}&full_content=true")
                events = log.get("content") or []
                text = [e.get("event", "") if isinstance(e, dict) else str(e) for e in events]
                parts.append(f"--- {key} ({state}), last {lines} log lines:\n" + "\n".join(text[-lines:]))
            except (AirflowAPIError, OSError, KeyError) as e:
                parts.append(f"--- {key} ({state}): no log ({e})")
        return "\n".join(parts)

    # -- internals -------------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Any = None, token: str = "") -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            raise AirflowAPIError(method, path, e.code, e.read().decode(errors="replace")) from None
        return json.loads(raw) if raw else None

    def _check_running(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            code = None if self._proc is None else self._proc.returncode
            raise RuntimeError(f"Airflow exited (code {code}); log {self.log_path}:\n{self.log_tail()}")

    def _wait_healthy(self, deadline: float) -> None:
        """API up, scheduler and DAG processor heartbeating (triggers would otherwise only queue)."""
        last = "no answer"
        while time.monotonic() < deadline:
            self._check_running()
            try:
                health = self._request("GET", "/api/v2/monitor/health")
                last = {c: (health.get(c) or {}).get("status") for c in self.HEALTH_COMPONENTS}
                if all(status == "healthy" for status in last.values()):
                    return
            except (OSError, AirflowAPIError) as e:
                last = repr(e)
            time.sleep(2)
        raise TimeoutError(f"Airflow not healthy in time (last: {last}); log:\n{self.log_tail()}")

    def _wait_password(self, deadline: float) -> str:
        passwords = self.home / "simple_auth_manager_passwords.json.generated"
        while time.monotonic() < deadline:
            try:
                return json.loads(passwords.read_text())[self.username]
            except (FileNotFoundError, json.JSONDecodeError, KeyError):
                time.sleep(1)
        raise TimeoutError(f"no password for {self.username!r} in {passwords}")

    def _login(self) -> str:
        # The simple auth manager's token endpoint (a JWT valid for [api_auth] jwt_expiration_time).
        reply = self._request("POST", "/auth/token", {"username": self.username, "password": self.password})
        return reply["access_token"]


class AirflowAPIError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: str):
        super().__init__(f"{method} {path} -> HTTP {status}: {body[:2000]}")
        self.status = status


# -- processes ------------------------------------------------------------------------------------
# Tracked as (pid, start time) so that a pid the kernel reuses after a process exits is never hit.


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the "(comm)" field


def _children() -> dict[int, list[int]]:
    by_parent: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            by_parent.setdefault(ppid, []).append(int(entry.name))
    return by_parent


def _descendants(pid: int) -> dict[int, str | None]:
    return _descendants_of({pid: None}) if Path(f"/proc/{pid}").exists() else {}


def _descendants_of(roots: dict[int, str | None]) -> dict[int, str | None]:
    by_parent = _children()
    found: dict[int, str | None] = {}
    todo = [p for p in roots if _same_process(p, roots[p])]
    while todo:
        for child in by_parent.get(todo.pop(), []):
            if child not in found and child not in roots:
                found[child] = _start_time(child)
                todo.append(child)
    return found


def _same_process(pid: int, start: str | None) -> bool:
    now = _start_time(pid)
    return now is not None and (start is None or now == start)


def _alive(procs: dict[int, str | None]) -> bool:
    return any(_same_process(pid, start) and not _zombie(pid) for pid, start in procs.items())


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _signal_all(group: int, procs: dict[int, str | None], sig: int) -> None:
    try:
        os.killpg(group, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for pid, start in procs.items():
        if _same_process(pid, start):
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
