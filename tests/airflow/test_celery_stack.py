"""The team stack of docker-compose.yaml, run natively (tests/airflow/stack.py): Airflow's API
server, scheduler, DAG processor, triggerer and two Celery workers (the default queue and the
GPU queue) on PostgreSQL and Redis, an MLflow server on a PostgreSQL backend store (behind a
login). One `mtl_training` run goes through all of it, surviving a scheduler and a worker crash
on the way; its run and model must land in MLflow's PostgreSQL store, its artifacts behind the
server, its outputs in the DVC remote. Then `mtl gc` deletes what expires through the server, and
the server side's `mlflow gc` frees it."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg2
import pytest

from mtl import workspaces
from tests.airflow.conftest import LIVE_OVERRIDES
from tests.airflow.stack import COMPONENTS, PG_ADMIN, CeleryStack
from tests.conftest import copy_project, set_params

# One stack for the module: both tests on one pytest-xdist worker (a module fixture is per worker).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200), pytest.mark.xdist_group("celery_stack")]

GPU_TASKS = {"baseline", "train"}  # gpu_task_args: what runs in the GPU pool and queue


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("stack")
    project = copy_project(root / "project")
    # The killed training task is retried after 5 s rather than the shipped 30 (the retry, not its
    # delay, is under test here; test_dag_integrity checks the shipped backoff).
    set_params(project, LIVE_OVERRIDES | {"airflow.retry_delay_seconds": 5})
    # The DVC remote the run pushes to ($MTL_DVC_REMOTE): in the stack the MinIO bucket, here a folder.
    subprocess.run([sys.executable, "-m", "dvc", "remote", "add", "--local", "team", str(root / "minio" / "dvc")],
                   cwd=project, check=True, capture_output=True)
    stack = CeleryStack(project, gpu_queue="gpu", dvc_remote="team").start()
    print(f"\nCelery stack up in {stack.startup_seconds:.0f} s (logs: {stack.home})")
    try:
        yield stack
    finally:
        stack.stop()
        with psycopg2.connect(PG_ADMIN) as db, db.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (stack.name + "%",))
            assert cur.fetchall() == [], "the stack's databases outlived it"


def test_compose_health_checks_pass_natively(stack: CeleryStack):
    """Each health check the compose file declares, run against the native processes."""
    for service in ("mlflow", *COMPONENTS[:-1]):  # the GPU worker's is the worker's, by its node name
        result = stack.healthcheck(service)
        assert result.returncode == 0, f"{service} health check failed:\n{result.stdout}\n{result.stderr}"


def _wait_task(stack: CeleryStack, run_id: str, task: str, states: set[str], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.task_states("mtl_training", run_id).get(task) in states:
            return
        time.sleep(0.5)
    raise TimeoutError(f"{task} never reached {states}: {stack.task_states('mtl_training', run_id)}")


def _get(url: str, auth: tuple[str, str] | None) -> str:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    with urllib.request.urlopen(request, timeout=30) as reply:
        return reply.read().decode()


def test_training_runs_through_celery_workers_survives_crashes_into_mlflow_on_postgres(stack: CeleryStack,
                                                                                    monkeypatch):
    """One run, with two crashes on the way: the scheduler killed while the run starts and the
    GPU worker killed (with its task) in the middle of training. Both come back (compose's
    `restart: unless-stopped`); the run completes through a retry that resumes training from its
    checkpoint, and leaves exactly one run's outputs."""
    stack.wait_for_dag("mtl_training")
    run_id = stack.trigger("mtl_training")
    _wait_task(stack, run_id, "generate", {"running", "success"})
    stack.kill("airflow-scheduler")
    time.sleep(3)
    stack.restart("airflow-scheduler")
    # in the run's own workspace (mtl/workspaces.py)
    checkpoint = workspaces.path_for(stack.project, run_id) / "data" / "04_model" / "checkpoints" / "train_state.pt"
    _wait_task(stack, run_id, "train", {"running"})
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert checkpoint.exists(), "train never saved an epoch"
    stack.kill("airflow-worker-gpu")
    stack.restart("airflow-worker-gpu")

    result = stack.wait_run("mtl_training", run_id, timeout=900)
    assert result.state == "success", stack.explain("mtl_training", result) + "\n" + stack.log_tail()
    assert result.tasks["promote"] == "success" and result.tasks["push"] == "success", result.tasks
    train = stack.api("GET", f"/dags/mtl_training/dagRuns/{run_id}/taskInstances/train")
    assert train["try_number"] >= 2, train  # the killed attempt, then the retry
    log = stack.api("GET", f"/dags/mtl_training/dagRuns/{run_id}/taskInstances/train/logs/{train['try_number']}"
                           "?full_content=true")
    assert "resumed from the checkpoint of epoch" in json.dumps(log), "the retry started over"

    # Routed by queue: training work only on the GPU worker, the rest on the default one.
    page = stack.api("GET", f"/dags/mtl_training/dagRuns/{result.run_id}/taskInstances?limit=100")
    queues = {ti["task_id"]: ti["queue"] for ti in page["task_instances"]}
    assert {t for t, q in queues.items() if q == "gpu"} == GPU_TASKS, queues
    assert {q for t, q in queues.items() if t not in GPU_TASKS} == {"default"}, queues
    # ...and each worker ran its share (a retried task runs twice)
    ran = {w: len(re.findall(r"Task execute_workload\[[\w-]+\] succeeded", stack.component_log(w, 10**6)))
           for w in ("airflow-worker-gpu", "airflow-worker")}
    assert ran["airflow-worker-gpu"] >= len(GPU_TASKS) and ran["airflow-worker"] >= len(queues) - len(GPU_TASKS), ran

    # The run and the model are in the MLflow server's PostgreSQL store...
    with psycopg2.connect(stack.pg_url(stack.mlflow_db, "postgresql")) as db, db.cursor() as cur:
        cur.execute("SELECT r.run_uuid, r.status, e.name, role.value FROM runs r "
                    "JOIN tags t ON t.run_uuid = r.run_uuid JOIN experiments e ON e.experiment_id = r.experiment_id "
                    "LEFT JOIN tags role ON role.run_uuid = r.run_uuid AND role.key = 'mtl.role' "
                    "WHERE t.key = 'mtl.airflow_run_id' AND t.value = %s", (run_id,))
        rows = cur.fetchall()
        # the single-task baseline is a child run of the training run (logged by evaluate)
        assert [(status, name) for _, status, name, role in rows if role == "baseline"] == [
            ("FINISHED", "mtl-training")], rows
        tagged = [(r, status, name) for r, status, name, role in rows if role is None]
        runs = [r for r, status, _ in tagged if status == "FINISHED"]
        # one training run, finished: the retry went on in the killed attempt's run
        assert [status for _, status, name in tagged if name == "mtl-training"] == ["FINISHED"], tagged
        cur.execute("SELECT name, version FROM model_versions")
        versions = cur.fetchall()
        cur.execute("SELECT name, alias, version FROM registered_model_aliases")
        aliases = cur.fetchall()
    assert runs and len(runs) == len(tagged), f"MLflow runs of the Airflow run {run_id}: {tagged}"
    assert versions == [("mtl-ecommerce", 1)], versions
    assert ("mtl-ecommerce", "champion", 1) in aliases, aliases

    # ...its artifacts in the server's artifact destination (the bucket), reachable through it,
    # with the login the pipeline used, and with no other.
    import mlflow

    search = f"{stack.mlflow_url}/api/2.0/mlflow/experiments/search?max_results=5"
    for auth in (None, ("admin", "wrong-password")):
        with pytest.raises(urllib.error.HTTPError) as refused:
            _get(search, auth)
        assert refused.value.code == 401
    assert "mtl-training" in _get(search, ("admin", stack.mlflow_password))
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", stack.mlflow_password)
    client = mlflow.MlflowClient(tracking_uri=stack.mlflow_url, registry_uri=stack.mlflow_url)
    champion = client.get_model_version_by_alias("mtl-ecommerce", "champion")
    assert champion.run_id in runs
    assert list(stack.artifacts.rglob("MLmodel")), f"no model under {stack.artifacts}"
    assert "mlflow-artifacts:" in champion.source or champion.source.startswith("models:/"), champion.source

    # The run's outputs went to the DVC remote.
    pushed = list((stack.project.parent / "minio" / "dvc").rglob("*"))
    assert sum(p.is_file() for p in pushed) >= 3, pushed

    # `mtl gc` against the server. Far enough ahead, the baseline run (no version's) expires. A
    # server's store only deletes, so gc deletes it and says how to free it: `mlflow gc` beside the
    # server, which the README gives and which is run here as written.
    baseline = [r for r, _, _, role in rows if role == "baseline"][0]
    assert _files(stack, baseline), f"the baseline run's artifacts are not under {stack.artifacts}"
    env = {**stack.env, "MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": stack.mlflow_password}
    mtl = [str(Path(sys.executable).with_name("mtl")), "gc", "--as-of", "2100-01-01"]
    first = subprocess.run(mtl, cwd=stack.project, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "is a tracking server, which only deletes" in first.stdout, first.stdout
    stages = _lifecycle(stack)
    assert stages[baseline] == "deleted" and stages[champion.run_id] == "active", stages
    again = subprocess.run(mtl, cwd=stack.project, env=env, capture_output=True, text=True, timeout=600)
    assert re.search(r"^mlflow\s+0\s", again.stdout, re.M), "a deleted run planned again:\n" + again.stdout
    purge = subprocess.run([str(Path(sys.executable).with_name("mlflow")), "gc", "--backend-store-uri",
                            stack.pg_url(stack.mlflow_db), "--run-ids", baseline],
                           env={**env, "MLFLOW_TRACKING_URI": stack.mlflow_url}, capture_output=True, text=True,
                           timeout=300)
    assert purge.returncode == 0, purge.stdout + purge.stderr
    assert baseline not in _lifecycle(stack) and not _files(stack, baseline)  # (its empty folder stays)
    assert client.get_model_version_by_alias("mtl-ecommerce", "champion").version == champion.version
    assert list(stack.artifacts.rglob("MLmodel")), "the champion's model went with the purge"


def _lifecycle(stack: CeleryStack) -> dict[str, str]:
    with psycopg2.connect(stack.pg_url(stack.mlflow_db, "postgresql")) as db, db.cursor() as cur:
        cur.execute("SELECT run_uuid, lifecycle_stage FROM runs")
        return dict(cur.fetchall())


def _files(stack: CeleryStack, run_id: str) -> list:
    return [f for d in stack.artifacts.rglob(run_id) for f in d.rglob("*") if f.is_file()]
