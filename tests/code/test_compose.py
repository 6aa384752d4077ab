"""docker-compose.yaml, the Dockerfile and .env.example checked as files: no Docker engine runs
here (tests/airflow/test_celery_stack.py runs the same commands natively). Every service's
command must parse with the real CLI it calls, every variable must come from .env.example,
every health check, dependency, volume and referenced file must exist and fit."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import compose
from tests.conftest import REPO

SPEC = compose.load()
SERVICES = SPEC["services"]
ENV = compose.env_example()
RESOLVED = compose.resolve(SPEC, ENV)["services"]
AIRFLOW_SERVICES = [name for name in SERVICES if name.startswith("airflow-") and name != "airflow-init"]
ONE_OFF = {"airflow-init", "minio-init"}  # run to completion, no health check
IMAGE_ROOT = "/opt/mtl"  # where the Dockerfile copies the project (and the workspace is mounted)


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, list | dict):
        for value in node.values() if isinstance(node, dict) else node:
            yield from _strings(value)


def _variables() -> dict[str, set[str]]:
    """Each ${VAR} the compose file's values use (not $${VAR}: a container's own variable),
    with the operators it is used with."""
    found: dict[str, set[str]] = {}
    for value in _strings(SPEC):
        for m in re.finditer(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?])?", value):
            found.setdefault(m.group(1), set()).add(m.group(2) or "")
    return found


def test_the_stack_has_every_part():
    expected = {"postgres", "redis", "minio", "minio-init", "mlflow", "airflow-init", "airflow-apiserver",
                "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-worker",
                "airflow-worker-gpu"}
    assert expected <= set(SERVICES), expected - set(SERVICES)
    for name in AIRFLOW_SERVICES + ["airflow-init"]:
        env = RESOLVED[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert "@postgres:5432/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], name
        assert "@redis:6379/" in env["AIRFLOW__CELERY__BROKER_URL"], name
        # task workers reach the API server by its service name, on the port it listens on
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/", name
        assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000", name
        assert env["MTL_PROJECT_DIR"] == IMAGE_ROOT and env["AIRFLOW__CORE__DAGS_FOLDER"] == f"{IMAGE_ROOT}/dags"


def test_credentials_come_only_from_the_environment():
    """No secret in the compose file: each is a required ${VAR:?} that .env.example marks
    CHANGE_ME, and .env (the filled-in copy) is git-ignored."""
    secret = re.compile(r"PASSWORD|SECRET|FERNET|_KEY$|^POSTGRES_USER$|MINIO_ROOT_USER")
    variables = _variables()
    for name, ops in variables.items():
        assert name in ENV or ops & {":-", "-"}, f"${{{name}}} has no default and is not in .env.example"
        if ":?" in ops:
            assert name in ENV, f"required ${{{name}}} missing from .env.example"
    for key, value in ENV.items():
        if secret.search(key) and "USER" not in key:
            assert value == "CHANGE_ME", f".env.example must not ship a value for {key}"
            assert ":?" in variables.get(key, set()), f"{key} must be required (${{{key}:?...}}) in the compose file"
    for service in SERVICES.values():
        for key, value in compose.environment(service).items():
            if secret.search(key) and "USER" not in key and key != "GIT_CONFIG_KEY_0":
                assert value.startswith("${") or value == "", f"{key} has a literal value: {value!r}"
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO).returncode
    assert ignored == 0, ".env is not git-ignored"
    # a missing credential stops compose with a message, instead of starting with an empty one
    with pytest.raises(compose.MissingVariable, match="POSTGRES_PASSWORD"):
        compose.resolve(SPEC, {k: v for k, v in ENV.items() if k != "POSTGRES_PASSWORD"})


def test_commands_parse_with_the_real_command_lines():
    """`airflow ...` commands through Airflow's own argument parser (with the Celery provider's
    commands), the MLflow server's through its click command: a typo fails here, not at `up`."""
    airflow_cmds = {n: RESOLVED[n]["command"] for n in AIRFLOW_SERVICES + ["flower"]}
    assert all(c[0] == "airflow" for c in airflow_cmds.values()), airflow_cmds
    script = (
        "import json, sys\n"
        "from airflow.cli.cli_parser import get_parser\n"
        "parser = get_parser()\n"
        "for name, cmd in json.loads(sys.argv[1]).items():\n"
        "    args = parser.parse_args(cmd[1:])\n"
        "    assert callable(args.func), name\n"
        "import click\n"
        "from mlflow.cli import server\n"
        "server.make_context('server', json.loads(sys.argv[2])[2:])\n"
        "print('ok')\n"
    )
    env = {"AIRFLOW__CORE__EXECUTOR": "CeleryExecutor", "PATH": str(Path(sys.executable).parent),
           "AIRFLOW_HOME": str(REPO / ".pytest_cache" / "compose-airflow-home"), "HOME": "/tmp"}
    out = subprocess.run([sys.executable, "-c", script, json.dumps(airflow_cmds), json.dumps(RESOLVED["mlflow"]["command"])],
                         capture_output=True, text=True, env=env, timeout=180)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stdout[-2000:] + out.stderr[-3000:]


def test_every_long_running_service_has_a_health_check_and_dependencies_wait_for_it():
    for name, service in SERVICES.items():
        if name in ONE_OFF:
            assert service.get("restart") == "no", f"{name} runs once"
            continue
        check = service.get("healthcheck") or {}
        assert check.get("test", [None])[0] in ("CMD", "CMD-SHELL"), f"{name}: no health check"
        assert {"interval", "timeout", "retries"} <= set(check), f"{name}: health check timing"
    for name, service in SERVICES.items():
        for dep, spec in (service.get("depends_on") or {}).items():
            assert dep in SERVICES, f"{name} depends on unknown {dep}"
            condition = spec["condition"]
            assert condition in ("service_healthy", "service_completed_successfully"), (name, dep, condition)
            assert (condition == "service_completed_successfully") == (dep in ONE_OFF), (name, dep, condition)
    for name in AIRFLOW_SERVICES:
        deps = SERVICES[name]["depends_on"]
        assert {"postgres", "redis", "mlflow", "airflow-init"} <= set(deps), name
    for worker in ("airflow-worker", "airflow-worker-gpu"):
        assert SERVICES[worker]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    _acyclic({n: set(s.get("depends_on") or {}) for n, s in SERVICES.items()})


def _acyclic(graph: dict[str, set[str]]) -> None:
    done: set[str] = set()

    def visit(node: str, path: tuple[str, ...]) -> None:
        assert node not in path, f"dependency cycle: {' -> '.join(path + (node,))}"
        if node not in done:
            for dep in graph[node]:
                visit(dep, path + (node,))
            done.add(node)

    for node in graph:
        visit(node, ())


def test_volumes_and_referenced_files_exist():
    named = set(SPEC.get("volumes") or {})
    used = set()
    for name, service in RESOLVED.items():
        for volume in service.get("volumes") or []:
            source, target = volume.split(":")[:2]
            if source.startswith((".", "/")):
                assert (REPO / source).resolve().exists(), f"{name}: bind mount {source} does not exist"
            else:
                assert source in named, f"{name}: volume {source} is not declared"
                used.add(source)
        # files the commands name inside the image are the project's own
        for arg in service.get("command") or []:
            if str(arg).startswith(f"{IMAGE_ROOT}/"):
                path = REPO / str(arg).removeprefix(f"{IMAGE_ROOT}/")
                assert path.is_file(), f"{name}: {arg} is not in the repository"
    assert named == used, f"declared but unused volumes: {named - used}"
    for name in ("postgres", "redis", "minio"):
        assert any(not v.startswith((".", "/")) for v in RESOLVED[name]["volumes"]), f"{name} keeps no named volume"
    assert "airflow-home:/opt/airflow" in RESOLVED["airflow-worker"]["volumes"]


def test_dockerfile_builds_from_files_that_exist():
    text = (REPO / "Dockerfile").read_text()
    args = set(re.findall(r"^ARG (\w+)", text, re.M))
    for service in RESOLVED.values():
        build = service.get("build")
        if build:
            assert (REPO / build["context"] / build.get("dockerfile", "Dockerfile")).is_file()
            assert set(build.get("args") or {}) <= args, f"build args not declared: {set(build['args']) - args}"
    assert RESOLVED["airflow-worker-gpu"]["build"]["args"]["TORCH"] == "cuda"
    ignored = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for line in re.findall(r"^COPY (.+)$", text, re.M):
        *sources, _dest = line.split()
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: not in the repository"
            assert source == "." or source not in ignored, f"COPY {source} but .dockerignore drops it"
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (.+)$", text, re.M).group(1))
    script = REPO / entrypoint[-1].removeprefix(f"{IMAGE_ROOT}/")
    assert script.is_file() and script.stat().st_mode & 0o111, f"{script} missing or not executable"
    # the torch build is chosen by setup.sh, whose MTL_TORCH the build arg sets
    assert 'MTL_TORCH="${TORCH}"' in text and "MTL_TORCH" in (REPO / "scripts" / "setup.sh").read_text()
    # and its extras by the EXTRAS build arg: the team stack and s3 unless .env asks for text too
    assert 'MTL_EXTRAS="${EXTRAS}"' in text and RESOLVED["airflow-worker"]["build"]["args"]["EXTRAS"] == "team,s3"
    for script in (REPO / "docker").glob("*.sh"):
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0, script


def test_gpu_worker_reserves_nvidia_gpus_on_its_own_queue():
    gpu = RESOLVED["airflow-worker-gpu"]
    assert gpu["profiles"] == ["gpu"]  # `--profile gpu`: a machine without the toolkit still starts the rest
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    queues = gpu["command"][gpu["command"].index("--queues") + 1].split(",")
    assert queues == ["gpu"]
    cpu = RESOLVED["airflow-worker"]["command"]
    assert "gpu" not in cpu[cpu.index("--queues") + 1].split(","), "the CPU worker must not take GPU work"
    # the training tasks reach that queue through $MTL_GPU_QUEUE (mtl.orchestration.gpu_task_args)
    assert compose.environment(SERVICES["airflow-worker-gpu"])["MTL_GPU_QUEUE"] == "${MTL_GPU_QUEUE:-}"
    assert "MTL_GPU_QUEUE" in ENV


def test_no_api_answers_without_credentials():
    """Airflow's API and UI need a login (simple auth manager, never all-admins) and so does
    MLflow's (basic-auth app); the pipeline signs in to MLflow with the admin's login."""
    for name in AIRFLOW_SERVICES:
        env = RESOLVED[name]["environment"]
        assert env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False").lower() == "false", name
        assert "AIRFLOW__CORE__AUTH_MANAGER" not in env or "Simple" not in env["AIRFLOW__CORE__AUTH_MANAGER"]
        assert env["MLFLOW_TRACKING_USERNAME"] == RESOLVED["mlflow"]["environment"]["MLFLOW_ADMIN_USERNAME"]
        assert compose.environment(SERVICES[name])["MLFLOW_TRACKING_PASSWORD"].startswith("${MLFLOW_ADMIN_PASSWORD:?")
    mlflow = RESOLVED["mlflow"]["command"]
    assert mlflow[mlflow.index("--app-name") + 1] == "basic-auth"
    # its users and permissions in their own database, which the PostgreSQL init script creates
    assert RESOLVED["mlflow"]["environment"]["MLFLOW_AUTH_DATABASE_URI"].endswith("/" + ENV["MLFLOW_AUTH_DB"])
    assert "MLFLOW_AUTH_DB" in (REPO / "docker" / "postgres-init.sh").read_text()
    assert "MLFLOW_AUTH_DB" in RESOLVED["postgres"]["environment"]


def test_published_ports_are_the_ones_the_commands_listen_on():
    listens = {"airflow-apiserver": "8080", "mlflow": "5000", "minio": "9001", "flower": "5555"}
    for name, port in listens.items():
        (mapping,) = RESOLVED[name]["ports"]
        assert mapping.split(":")[-1] == port, (name, mapping)
    mlflow = RESOLVED["mlflow"]["command"]
    assert mlflow[mlflow.index("--port") + 1] == "5000" and mlflow[mlflow.index("--host") + 1] == "0.0.0.0"
    assert mlflow[mlflow.index("--backend-store-uri") + 1].startswith("postgresql")
    assert mlflow[mlflow.index("--artifacts-destination") + 1].startswith("s3://")
    assert "mlflow:5000" in RESOLVED["mlflow"]["environment"]["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
