"""Links from every task to what it produced: its MLflow run, a registered model version, GX Data Docs.

A task that has something to link pushes ONE XCom, key ``mtl_links``, holding a JSON object with
any of these fields (absent fields just hide their button)::

    {"mlflow_run_id": "...", "mlflow_experiment_id": "...",
     "model_name": "mtl-ecommerce", "model_version": "3",
     "data_docs": "index.html"}     # relative to data/02_validation/data_docs

The three links are *global* extra links, offered on every task. Airflow 3 resolves them in the
API server when the UI asks for a task's links, so they read the XCom straight from the metadata
DB (``XComModel``). The Task SDK's ``XCom.get_value`` only works inside a running task
(apache/airflow#59093).

The API server also serves the Data Docs folder at ``/mtl/data-docs/``, to logged-in users only:
Airflow does not authenticate plugin apps, so this one checks the caller's Airflow token itself.

Airflow imports this module in every component, so module level imports only Airflow and FastAPI
and touches nothing: the DB, the configuration and the filesystem are read per call.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse

from airflow.plugins_manager import AirflowPlugin
from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.models.taskinstancekey import TaskInstanceKey

XCOM_KEY = "mtl_links"
URL_PREFIX = "/mtl"
DATA_DOCS_ROUTE = "/data-docs"
DEFAULT_MLFLOW_UI = "http://127.0.0.1:5000"
# Where the `validate` stage writes its Data Docs, as in mtl.paths.Paths.data_docs_dir. Restated
# rather than imported: the API server need not have the pipeline's dependencies.
DATA_DOCS_SUBDIR = Path("data", "02_validation", "data_docs")
# Where an Airflow run's Data Docs are published from its workspace (mtl.orchestration.
# publish_data_docs), served under runs/: the workspace itself goes when the run ends.
RUN_DOCS_SUBDIR = Path(".mtl", "data_docs")


# --- reading the XCom -------------------------------------------------------------------------


def read_mtl_links(ti_key: TaskInstanceKey) -> dict[str, Any]:
    """The ``mtl_links`` XCom of one task instance, or ``{}`` if it pushed none (or not an object)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.execute(
            XComModel.get_many(
                key=XCOM_KEY,
                run_id=ti_key.run_id,
                dag_ids=ti_key.dag_id,
                task_ids=ti_key.task_id,
                map_indexes=ti_key.map_index,
            ).with_only_columns(XComModel.value)
        ).first()
        value = XComModel.deserialize_value(row) if row is not None else None
    # A task may push the dict itself or its json.dumps string; deserialize_value decodes both.
    return value if isinstance(value, dict) else {}


def _field(links: dict[str, Any], name: str) -> str:
    value = links.get(name)
    return "" if value is None else str(value).strip()


# --- the URLs (pure) ----------------------------------------------------------------------------


def mlflow_ui_base() -> str:
    return (os.environ.get("MTL_MLFLOW_UI_URL") or DEFAULT_MLFLOW_UI).rstrip("/")


def mlflow_run_url(links: dict[str, Any], base: str) -> str:
    run_id = _field(links, "mlflow_run_id")
    if not run_id:
        return ""
    experiment_id = _field(links, "mlflow_experiment_id")
    if not experiment_id:
        # The MLflow UI's direct run route, which redirects to the run under its experiment.
        return f"{base}/#/runs/{quote(run_id, safe='')}"
    return f"{base}/#/experiments/{quote(experiment_id, safe='')}/runs/{quote(run_id, safe='')}"


def model_version_url(links: dict[str, Any], base: str) -> str:
    name, version = _field(links, "model_name"), _field(links, "model_version")
    if not (name and version):
        return ""
    return f"{base}/#/models/{quote(name, safe='')}/versions/{quote(version, safe='')}"


def data_docs_url(links: dict[str, Any], api_base_url: str) -> str:
    """``api_base_url`` is Airflow's ``[api] base_url``: empty gives a URL relative to the UI's host."""
    page = _field(links, "data_docs").lstrip("/")
    if not page:
        return ""
    return f"{api_base_url.rstrip('/')}{URL_PREFIX}{DATA_DOCS_ROUTE}/{quote(page, safe='/')}"


def _api_base_url() -> str:
    from airflow.configuration import conf

    return conf.get("api", "base_url", fallback="") or ""


# --- the links ----------------------------------------------------------------------------------


class MlflowRunLink(BaseOperatorLink):
    name = "MLflow run"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        return mlflow_run_url(read_mtl_links(ti_key), mlflow_ui_base())


class ModelVersionLink(BaseOperatorLink):
    name = "Model version"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        return model_version_url(read_mtl_links(ti_key), mlflow_ui_base())


class DataDocsLink(BaseOperatorLink):
    name = "GX Data Docs"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        return data_docs_url(read_mtl_links(ti_key), _api_base_url())


# --- serving Data Docs --------------------------------------------------------------------------


def project_dir() -> Path:
    return Path(os.environ.get("MTL_PROJECT_DIR") or Path(__file__).resolve().parents[1]).resolve()


def data_docs_dir() -> Path:
    return project_dir() / DATA_DOCS_SUBDIR


def resolve_data_docs_file(root: Path, path: str) -> Path:
    """The file under ``root`` that URL path ``path`` names (a folder gives its index.html).

    Raises HTTPException 404 when the folder or the file is missing, or when ``path`` leads
    outside ``root`` (``..``, an absolute path, a symlink out).
    """
    if not root.is_dir():
        raise HTTPException(
            404, f"No GX Data Docs yet: {root} does not exist. Run the `validate` stage to build them "
                 "(or set $MTL_PROJECT_DIR to the project workspace).",
        )
    root = root.resolve()
    try:
        target = (root / path).resolve()
    except (OSError, ValueError):  # e.g. a NUL byte in the path
        raise HTTPException(404, f"{path!r} is not a valid Data Docs path") from None
    if not target.is_relative_to(root):
        raise HTTPException(404, f"{path!r} is outside the GX Data Docs folder")
    if target.is_dir():
        target = target / "index.html"
    if not target.is_file():
        raise HTTPException(404, f"{path!r} not found in the GX Data Docs ({root})")
    return target


async def require_airflow_user(request: Request) -> None:
    """Let through only callers Airflow's API would: a valid JWT as bearer token or UI cookie.

    Delegates to the core API's own ``get_user`` (imported here: only the API server gets here).
    """
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    await get_user(request=request, _oauth_token=None, bearer_credentials=await bearer_scheme(request))


data_docs_app = FastAPI(
    title="MTL pipeline: GX Data Docs",
    dependencies=[Depends(require_airflow_user)],
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)


@data_docs_app.get(DATA_DOCS_ROUTE, include_in_schema=False)
def data_docs_root() -> RedirectResponse:
    # Data Docs pages link to each other relatively, which needs the trailing slash.
    return RedirectResponse(f"{DATA_DOCS_ROUTE.lstrip('/')}/")


@data_docs_app.get(DATA_DOCS_ROUTE + "/{path:path}", include_in_schema=False)
def data_docs_file(path: str) -> FileResponse:
    if path.startswith("runs/"):
        return FileResponse(resolve_data_docs_file(project_dir() / RUN_DOCS_SUBDIR, path[len("runs/"):]))
    return FileResponse(resolve_data_docs_file(data_docs_dir(), path))


class MtlLinksPlugin(AirflowPlugin):
    name = "mtl_links"
    global_operator_extra_links = [MlflowRunLink(), ModelVersionLink(), DataDocsLink()]
    fastapi_apps = [{"app": data_docs_app, "url_prefix": URL_PREFIX, "name": "MTL GX Data Docs"}]
