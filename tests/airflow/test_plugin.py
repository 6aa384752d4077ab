"""The `mtl_links` plugin (plugins/mtl_links.py) as Airflow loads it and as the UI reaches it.

Airflow runs only in child processes (see airflow_env.py); each child prints one
``RESULT-JSON {...}`` line that the tests read. The links and the Data Docs are exercised through
Airflow's own API server app (``create_app``, the app `airflow api-server` serves) on a migrated
SQLite DB holding one tiny DAG: the requests are the ones the UI makes.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mtl.paths import Paths
from tests.airflow.airflow_env import airflow, airflow_env, tail

REPO = Path(__file__).resolve().parents[2]
PROBE_DAG_ID = "links_probe"
PROBE_DAG = f"""
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG({PROBE_DAG_ID!r}, schedule=None):
    for task_id in ("full", "partial", "none"):
        EmptyOperator(task_id=task_id)
"""
PASSWORD = "plugin-test"
MLFLOW_UI = "http://mlflow.test:5000"

# Any subset of these fields may be pushed; "partial" lacks the experiment and the model.
FULL = {"mlflow_run_id": "9f8e7d", "mlflow_experiment_id": "7", "model_name": "mtl-ecommerce",
        "model_version": "3", "data_docs": "index.html"}
PARTIAL = {"mlflow_run_id": "0a1b2c", "data_docs": "validations/run 1.html"}

LOAD_PLUGINS = """
import json, sys
from airflow import plugins_manager
from airflow.sdk import plugins_manager as task_plugins_manager  # what task processes load

info = {p["name"]: p for p in plugins_manager.get_plugin_info()}
print("RESULT-JSON " + json.dumps({
    "import_errors": plugins_manager.get_import_errors(),
    "task_import_errors": task_plugins_manager._get_plugins()[1],
    "plugin": info.get("mtl_links"),
    "global_links": sorted(link.name for link in plugins_manager.get_global_operator_extra_links()),
    "fastapi_apps": [{k: str(v) for k, v in a.items()} for a in plugins_manager.get_fastapi_plugins()[0]],
    # With $MTL_PROJECT_DIR unset: the project the plugins folder belongs to.
    "data_docs_dir": str(sys.modules["mtl_links"].data_docs_dir()),
    "heavy_modules": sorted(m for m in ("mlflow", "torch", "pandas", "great_expectations", "mtl")
                            if m in sys.modules),
}, default=str))
"""

# Trigger a run, store the `mtl_links` XComs, ask for each task's links.
LINKS = """
import json, sys
from fastapi.testclient import TestClient
from sqlalchemy import select
from airflow import plugins_manager
from airflow.api_fastapi.app import create_app
from airflow.configuration import conf
from airflow.models.taskinstance import TaskInstance
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session

dag_id, password = sys.argv[1:3]
full, partial = json.loads(sys.argv[3]), json.loads(sys.argv[4])
out = {}
with TestClient(create_app()) as client:
    login = client.post("/auth/token", json={"username": "admin", "password": password})
    client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    run = client.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None})
    assert run.status_code == 200, run.text
    run_id = run.json()["dag_run_id"]
    tis = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
    # Stored as a task's push is (the value as JSON, not re-serialized) ...
    made = client.post(f"{tis}/full/xcomEntries", json={"key": "mtl_links", "value": full})
    assert made.status_code == 201, made.text
    # ... and serialized to a JSON string, as a task pushing json.dumps(...) leaves it.
    with create_session() as session:
        XComModel.set(key="mtl_links", value=partial, dag_id=dag_id, task_id="partial", run_id=run_id,
                      session=session)
    out["api"] = {t: client.get(f"{tis}/{t}/links").json()["extra_links"]
                  for t in ("full", "partial", "none")}

# get_link itself, as the links endpoint calls it (the API turns "" into null).
links = {link.name: link for link in plugins_manager.get_global_operator_extra_links()}
with create_session() as session:
    tis = session.scalars(select(TaskInstance).where(TaskInstance.run_id == run_id))
    keys = {ti.task_id: ti.key for ti in tis}
out["direct"] = {t: {n: link.get_link(None, ti_key=keys[t]) for n, link in links.items()} for t in keys}
conf.set("api", "base_url", "https://airflow.example.com/af/")
out["behind_base_url"] = links["GX Data Docs"].get_link(None, ti_key=keys["full"])
print("RESULT-JSON " + json.dumps(out))
"""

# Requests to the Data Docs app mounted in the API server. $MTL_PROJECT_DIR is switched between
# requests: the plugin looks the folder up per request.
DATA_DOCS = """
import json, os, sys
from fastapi.testclient import TestClient
from airflow.api_fastapi.app import create_app

password, with_docs, without_docs, absolute_secret = sys.argv[1:5]
paths = {
    "root": "/mtl/data-docs",
    "index": "/mtl/data-docs/",
    "page": "/mtl/data-docs/validations/run%201.html",
    "missing_file": "/mtl/data-docs/validations/nope.html",
    "dot_dot": "/mtl/data-docs/%2e%2e/secret.txt",
    "dot_dot_encoded_slash": "/mtl/data-docs/validations/..%2F..%2Fsecret.txt",
    "absolute": "/mtl/data-docs/" + absolute_secret,
    "symlink_out": "/mtl/data-docs/link-out.txt",
}

def probe(client, path):
    r = client.get(path, follow_redirects=False)
    return {"status": r.status_code, "body": r.text, "type": r.headers.get("content-type", ""),
            "location": r.headers.get("location")}

out = {}
os.environ["MTL_PROJECT_DIR"] = with_docs
with TestClient(create_app()) as client:
    out["anonymous"] = probe(client, paths["index"])
    login = client.post("/auth/token", json={"username": "admin", "password": password})
    token = login.json()["access_token"]
    client.cookies.set("_token", token)  # how the UI's browser session carries it
    out["ui_cookie"] = probe(client, paths["index"])
    client.cookies.clear()
    client.headers["Authorization"] = f"Bearer {token}"
    out.update({name: probe(client, path) for name, path in paths.items()})
    os.environ["MTL_PROJECT_DIR"] = without_docs
    out["no_folder"] = probe(client, paths["index"])
print("RESULT-JSON " + json.dumps(out))
"""


def run_child(script: str, env: dict[str, str], *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", script, *args], env=env, cwd=env["AIRFLOW_HOME"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=180,
    )
    assert proc.returncode == 0, tail(proc.stdout)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT-JSON ")), None)
    assert line is not None, tail(proc.stdout)
    return json.loads(line.removeprefix("RESULT-JSON "))


def plugin_env(home: Path, dags: Path, project: Path) -> dict[str, str]:
    """The checkout's plugins folder, the probe DAG, a known admin password, our MLflow UI."""
    env = airflow_env(home, None)
    passwords = home / "passwords.json"
    if not passwords.exists():
        passwords.write_text(json.dumps({"admin": PASSWORD}))
    env.update(
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(passwords),
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_hex(48),  # long enough for HS512, no warning
        MTL_PROJECT_DIR=str(project),
        MTL_MLFLOW_UI_URL=MLFLOW_UI + "/",  # the trailing slash must not double up
    )
    return env


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A migrated metadata DB holding the probe DAG, made once per module; tests use copies."""
    root = tmp_path_factory.mktemp("plugin_template")
    (root / "dags").mkdir()
    (root / "dags" / f"{PROBE_DAG_ID}.py").write_text(PROBE_DAG)
    (root / "home").mkdir()
    env = plugin_env(root / "home", root / "dags", root)
    for args in (["db", "migrate"], ["dags", "reserialize"]):
        proc = airflow(args, env, timeout=300)
        assert proc.returncode == 0, tail(proc.stdout)
    return root


def fresh_home(template: Path, dest: Path) -> Path:
    dest.mkdir()
    shutil.copy(template / "home" / "airflow.db", dest / "airflow.db")
    return dest


# --- loading -----------------------------------------------------------------------------


def test_plugin_registers_links_and_app_without_heavy_imports(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = plugin_env(home, tmp_path, tmp_path)
    del env["MTL_PROJECT_DIR"]
    loaded = run_child(LOAD_PLUGINS, env)

    assert loaded["import_errors"] == {}
    assert loaded["task_import_errors"] == {}
    assert loaded["plugin"]["source"] == "$PLUGINS_FOLDER/mtl_links.py"
    assert loaded["global_links"] == ["GX Data Docs", "MLflow run", "Model version"]
    assert [(a["url_prefix"], a["name"]) for a in loaded["fastapi_apps"]] == [("/mtl", "MTL GX Data Docs")]
    assert loaded["data_docs_dir"] == str(Paths.at(REPO).data_docs_dir)
    # Every Airflow component imports the plugins folder.
    assert loaded["heavy_modules"] == []


# --- the links -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def links(template, tmp_path_factory) -> dict:
    home = fresh_home(template, tmp_path_factory.mktemp("links") / "home")
    env = plugin_env(home, template / "dags", template)
    return run_child(LINKS, env, PROBE_DAG_ID, PASSWORD, json.dumps(FULL), json.dumps(PARTIAL))


def test_links_point_at_what_the_task_recorded(links):
    assert links["api"]["full"] == {
        "MLflow run": f"{MLFLOW_UI}/#/experiments/7/runs/9f8e7d",
        "Model version": f"{MLFLOW_UI}/#/models/mtl-ecommerce/versions/3",
        "GX Data Docs": "/mtl/data-docs/index.html",
    }


def test_missing_fields_hide_their_links(links):
    assert links["api"]["partial"] == {
        "MLflow run": f"{MLFLOW_UI}/#/runs/0a1b2c",  # no experiment id: MLflow's direct run route
        "Model version": None,
        "GX Data Docs": "/mtl/data-docs/validations/run%201.html",
    }
    assert links["direct"]["partial"]["Model version"] == ""


def test_no_xcom_no_links(links):
    assert links["api"]["none"] == {"MLflow run": None, "Model version": None, "GX Data Docs": None}
    assert links["direct"]["none"] == {"MLflow run": "", "Model version": "", "GX Data Docs": ""}
    assert links["direct"]["full"] == links["api"]["full"]


def test_data_docs_link_follows_api_base_url(links):
    assert links["behind_base_url"] == "https://airflow.example.com/af/mtl/data-docs/index.html"


# --- serving the Data Docs -------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_docs(template, tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("data_docs")
    with_docs, without_docs = base / "project", base / "empty_project"
    docs = Paths.at(with_docs).data_docs_dir  # where the validate stage writes them
    (docs / "validations").mkdir(parents=True)
    without_docs.mkdir()
    (docs / "index.html").write_text("<html>DOCS-INDEX</html>")
    (docs / "validations" / "run 1.html").write_text("<html>DOCS-RUN-1</html>")
    secret = docs.parent / "secret.txt"
    secret.write_text("TOP-SECRET")
    (docs / "link-out.txt").symlink_to(secret)

    home = fresh_home(template, base / "home")
    env = plugin_env(home, template / "dags", with_docs)
    return run_child(DATA_DOCS, env, PASSWORD, str(with_docs), str(without_docs), str(secret))


def test_data_docs_need_an_airflow_login(data_docs):
    assert data_docs["anonymous"]["status"] == 401
    assert data_docs["ui_cookie"]["status"] == 200


def test_data_docs_serves_the_validate_stage_html(data_docs):
    assert data_docs["index"]["status"] == 200
    assert "DOCS-INDEX" in data_docs["index"]["body"]
    assert data_docs["index"]["type"].startswith("text/html")
    assert data_docs["page"]["status"] == 200
    assert "DOCS-RUN-1" in data_docs["page"]["body"]
    # Without the trailing slash the pages' relative links would resolve one level too high.
    assert data_docs["root"]["status"] in (301, 302, 307)
    assert data_docs["root"]["location"] == "data-docs/"


def test_missing_data_docs_are_a_clear_404(data_docs):
    assert data_docs["missing_file"]["status"] == 404
    assert "nope.html" in data_docs["missing_file"]["body"]
    assert data_docs["no_folder"]["status"] == 404
    assert "validate" in data_docs["no_folder"]["body"]


@pytest.mark.parametrize("request_name", ["dot_dot", "dot_dot_encoded_slash", "absolute", "symlink_out"])
def test_data_docs_refuse_paths_outside_the_folder(data_docs, request_name):
    response = data_docs[request_name]
    assert response["status"] == 404
    assert "outside the GX Data Docs folder" in response["body"]  # refused, not merely not found
    assert "TOP-SECRET" not in response["body"]
