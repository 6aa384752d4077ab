"""docker-compose.yaml's topology, natively: Airflow with the CeleryExecutor on this machine's
PostgreSQL and Redis, and an MLflow tracking server on a PostgreSQL backend store.

No Docker engine runs here, so each container becomes a process, started the way its container
is: through docker/entrypoint.sh, with the service's own `command` from the compose file and its
environment, where only what names the container network is swapped for this machine (hosts,
ports, paths, fresh databases, an empty Redis database) and MinIO for a folder (MLflow's artifact
destination, the DVC remote). The one-off setup is the compose file's own docker/init.sh, and
the health checks are the compose file's own commands.

The REST API part (trigger, wait, task states, logs) is LiveAirflow's.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests import compose
from tests.conftest import wait_for_http
from tests.airflow.live import LiveAirflow, _alive, _descendants_of, _signal_all, _start_time, free_port, live_env

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379

# The Airflow services of the compose file that run as long-lived processes here; the GPU
# worker is a second Celery worker on its own queue (its torch is the CPU build here).
COMPONENTS = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
              "airflow-worker", "airflow-worker-gpu")


class CeleryStack(LiveAirflow):
    """The stack for one project copy: ``start()`` brings it up, ``stop()`` takes all of it down
    and drops its databases."""

    HEALTH_COMPONENTS = (*LiveAirflow.HEALTH_COMPONENTS, "triggerer")

    def __init__(self, project: Path, gpu_queue: str = "gpu", dvc_remote: str = "team"):
        super().__init__(project)
        self.spec = compose.load()
        self.services = self.spec["services"]
        self.name = f"mtl_stack_{secrets.token_hex(4)}"
        self.airflow_db = f"{self.name}_airflow"
        self.mlflow_db = f"{self.name}_mlflow"
        self.mlflow_auth_db = f"{self.name}_mlflow_auth"
        self.mlflow_password = secrets.token_urlsafe(12)  # the MLflow admin's, the pipeline's login
        self.mlflow_port = free_port()
        self.mlflow_url = f"http://127.0.0.1:{self.mlflow_port}"
        self.scheduler_health_port = free_port()
        self.artifacts = project.parent / "minio" / "mlflow"  # MinIO's bucket, as a folder
        self.gpu_queue = gpu_queue
        self.dvc_remote = dvc_remote
        self.redis_db: int | None = None
        self.password = secrets.token_urlsafe(12)
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        self._envs: dict[str, dict[str, str]] = {}
        self.env: dict[str, str] = {}

    # -- environment ------------------------------------------------------------------------------

    def pg_url(self, db: str, driver: str = "postgresql+psycopg2") -> str:
        return f"{driver}://postgres@127.0.0.1:5432/{db}"

    def native_env(self) -> dict[str, str]:
        """x-airflow-common's environment, each value that names the container network replaced."""
        declared = compose.environment(self.services["airflow-worker"])
        native = {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.pg_url(self.airflow_db),
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{self.redis_db}",
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.pg_url(self.airflow_db),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",  # a 2-core machine
            "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.project / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.project / "plugins"),
            "MTL_PROJECT_DIR": str(self.project),
            "MLFLOW_TRACKING_URI": self.mlflow_url,
            "MLFLOW_TRACKING_PASSWORD": self.mlflow_password,
            "MTL_GPU_QUEUE": self.gpu_queue,
            "MTL_DVC_REMOTE": self.dvc_remote,
            # no MinIO here: init.sh leaves the DVC remote alone; the test configures a folder
            "DVC_BUCKET": "",
            "MINIO_ENDPOINT": "",
            "AWS_ACCESS_KEY_ID": "",
            "AWS_SECRET_ACCESS_KEY": "",
            "HOME": str(self.home),
            "AIRFLOW_UID": str(os.getuid()),
        }
        unknown = set(native) - set(declared)
        assert not unknown, f"the native stack sets variables the compose file does not: {unknown}"
        env = {**compose.resolve(declared, {**compose.env_example(), "MTL_GPU_QUEUE": ""}), **native}
        # What `airflow standalone` gets in LiveAirflow: this interpreter's bin on PATH, a quick
        # DAG processor, no example DAGs; plus what a container has by itself.
        env = {**live_env(self.project, self.port), **env}
        env.update(
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__API__WORKERS="1",
            # A task whose worker died is declared failed (and retried) after 20 s without a
            # heartbeat instead of 5 minutes: the fault tests wait for it.
            AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT="20",
            AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT=str(self.scheduler_health_port),
            HOSTNAME=socket.gethostname(),
        )
        return env

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self, timeout: float = 300) -> CeleryStack:
        return super().start(timeout)

    def _launch(self) -> None:
        self._create_databases()
        self.redis_db = _claim_redis_db(self.name)
        self.env = self.native_env()
        self._start_mlflow()
        self._init()
        for service in COMPONENTS:
            # the API server's own addition to the common environment: the admin's password
            extra = {"AIRFLOW_ADMIN_PASSWORD": self.password} if service == "airflow-apiserver" else {}
            assert set(extra) <= set(compose.environment(self.services[service]))
            # Each container has its own network namespace; processes on one host need their
            # own log-server ports (workers and triggerer serve task logs on fixed defaults).
            ports = {"AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                     "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port())}
            self._spawn(service, self._command(service), {**self.env, **extra, **ports})

    def _wait_healthy(self, deadline: float) -> None:
        super()._wait_healthy(deadline)
        self._wait_mlflow(deadline)

    def stop(self, grace: float = 30) -> None:
        """SIGTERM every process (a Celery worker's warm shutdown), SIGKILL what is left after
        ``grace`` seconds; then drop the databases and empty the Redis database."""
        known: dict[int, str | None] = {}
        for proc in self.procs.values():
            if proc.poll() is None:
                known[proc.pid] = _start_time(proc.pid)
        known.update(_descendants_of(dict(known)))
        for pid in list(known):
            _signal_all(pid, {pid: known[pid]}, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            for proc in self.procs.values():
                proc.poll()
            known.update(_descendants_of(known))
            if not _alive(known):
                break
            time.sleep(0.5)
        else:
            for pid in list(known):
                _signal_all(pid, {pid: known[pid]}, signal.SIGKILL)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.procs.clear()
        self._drop_databases()
        if self.redis_db is not None:
            import redis

            redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=self.redis_db).flushdb()
            self.redis_db = None

    # -- the compose file's commands --------------------------------------------------------------

    def _command(self, service: str) -> list[str]:
        cmd = [str(c) for c in compose.resolve(self.services[service]["command"], self.env)]
        if service == "airflow-worker-gpu":
            # Two workers on one host need two Celery node names (containers have two hostnames).
            cmd += ["--celery-hostname", f"gpu@{socket.gethostname()}"]
        return cmd

    def healthcheck(self, service: str) -> subprocess.CompletedProcess:
        """Run the compose file's health check of ``service`` here: its URLs pointed at this
        machine's ports, $HOSTNAME this host's name."""
        test = self.services[service]["healthcheck"]["test"]
        ports = {"localhost:8080": f"127.0.0.1:{self.port}", "localhost:8974": f"127.0.0.1:{self.scheduler_health_port}",
                 "localhost:5000": f"127.0.0.1:{self.mlflow_port}"}
        kind, *args = [str(a).replace("$$", "$") for a in test]
        for container, here in ports.items():
            args = [a.replace(container, here) for a in args]
        argv = ["sh", "-c", args[0]] if kind == "CMD-SHELL" else args
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=120)

    def component_log(self, service: str, lines: int = 60) -> str:
        try:
            return "\n".join(self.logs[service].read_text(errors="replace").splitlines()[-lines:])
        except (KeyError, FileNotFoundError):
            return "(no log)"

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(f"--- {name}:\n{self.component_log(name, lines)}" for name in ("mlflow", *COMPONENTS))

    # -- internals --------------------------------------------------------------------------------

    def kill(self, service: str) -> None:
        """SIGKILL a component and every process under it, task processes included: a crashed
        container."""
        proc = self.procs[service]
        known = {proc.pid: _start_time(proc.pid)}
        known.update(_descendants_of(dict(known)))
        for pid in known:
            _signal_all(pid, {pid: known[pid]}, signal.SIGKILL)
        proc.wait(timeout=30)

    def restart(self, service: str) -> None:
        """Start a killed component again, as `restart: unless-stopped` would."""
        self._spawn(service, self._command(service), self._envs[service])

    def _spawn(self, service: str, command: list[str], env: dict[str, str] | None = None) -> None:
        self._envs[service] = env or self.env
        entrypoint = self.project / "docker" / "entrypoint.sh"
        self.logs[service] = self.home / f"{service}.log"
        with open(self.logs[service], "ab") as log:
            self.procs[service] = subprocess.Popen(
                ["bash", str(entrypoint), *command], cwd=self.project, env=env or self.env,
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )

    def _init(self) -> None:
        """airflow-init: the compose file's command (docker/init.sh), to completion."""
        command = [str(c) for c in self.services["airflow-init"]["command"]]
        command = [c.replace("/opt/mtl", str(self.project)) for c in command]
        out = subprocess.run(["bash", str(self.project / "docker" / "entrypoint.sh"), *command], cwd=self.project,
                             env=self.env, capture_output=True, text=True, timeout=300)
        (self.home / "airflow-init.log").write_text(out.stdout + out.stderr)
        if out.returncode != 0:
            raise RuntimeError(f"airflow-init failed (exit {out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")

    def _start_mlflow(self) -> None:
        """The mlflow service's command: its backend store a fresh PostgreSQL database here, its
        artifact destination a folder instead of the MinIO bucket, on a free port of 127.0.0.1."""
        argv = [str(a) for a in compose.resolve(self.services["mlflow"]["command"], compose.env_example())]
        swap = {"--backend-store-uri": self.pg_url(self.mlflow_db), "--artifacts-destination": str(self.artifacts),
                "--host": "127.0.0.1", "--port": str(self.mlflow_port)}
        for flag, value in swap.items():
            argv[argv.index(flag) + 1] = value
        self.artifacts.mkdir(parents=True, exist_ok=True)
        declared = compose.environment(self.services["mlflow"])
        native = {
            "MLFLOW_ADMIN_PASSWORD": self.mlflow_password,
            "MLFLOW_AUTH_DATABASE_URI": self.pg_url(self.mlflow_auth_db),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(32),
            "HOME": str(self.home),  # where the entrypoint writes the basic-auth ini
            "MLFLOW_SERVER_ALLOWED_HOSTS": f"127.0.0.1:{self.mlflow_port},localhost:{self.mlflow_port}",
            "MLFLOW_S3_ENDPOINT_URL": "", "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
        }
        assert set(native) <= set(declared), set(native) - set(declared)
        base = {k: v for k, v in self.env.items() if not k.startswith(("AIRFLOW__", "MLFLOW_"))}
        env = {**base, **compose.resolve(declared, compose.env_example()), **native}
        self._spawn("mlflow", argv, {k: v for k, v in env.items() if v != ""})

    def _wait_mlflow(self, deadline: float) -> None:
        wait_for_http(f"{self.mlflow_url}/health", self.procs["mlflow"], self.logs["mlflow"],
                      timeout=max(1.0, deadline - time.monotonic()), what="mlflow server")

    def _wait_password(self, deadline: float) -> str:
        return self.password

    def _check_running(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited (code {proc.returncode}):\n{self.component_log(name)}")

    def _create_databases(self) -> None:
        import psycopg2

        db = psycopg2.connect(PG_ADMIN)
        db.autocommit = True
        with db.cursor() as cur:
            for name in (self.airflow_db, self.mlflow_db, self.mlflow_auth_db):
                cur.execute(f'CREATE DATABASE "{name}"')
        db.close()

    def _drop_databases(self) -> None:
        import psycopg2

        try:
            db = psycopg2.connect(PG_ADMIN)
        except psycopg2.Error:
            return
        db.autocommit = True
        with db.cursor() as cur:
            for name in (self.airflow_db, self.mlflow_db, self.mlflow_auth_db):
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        db.close()


CLAIM_KEY = "mtl:stack:claim"


def _claim_redis_db(name: str) -> int:
    """A Redis database (1-15) of this stack's own, so that stacks running at once (two pytest
    workers, a CI run beside a session) never share a Celery queue. Claimed atomically with
    SET NX; the claim expires after 3 hours in case its stack is killed before stop()."""
    import redis

    for index in range(15, 0, -1):
        if redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=index).set(CLAIM_KEY, name, nx=True, ex=3 * 3600):
            return index
    raise RuntimeError("every Redis database 1-15 is claimed by another stack")


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()

