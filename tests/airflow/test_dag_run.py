"""`mtl_training` end to end with `airflow dags test`, on SQLite and on the local PostgreSQL server.

`airflow dags test` runs one DAG run in-process (no scheduler, no executor), writing task and run
states to the metadata DB, which is where the tests read them from. The scheduler-driven paths
(the UI's trigger form, asset-triggered retraining) are in test_ui.py and test_retraining.py.
"""

from __future__ import annotations

import json
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mtl import workspaces
from mtl.pipeline import run_stage
from tests.airflow.airflow_env import DAG_ID, airflow, airflow_env, run_states, tail
from tests.conftest import set_params

pytestmark = pytest.mark.slow

# Small and quick: no single-task baselines, few bootstrap resamples; floors a one-epoch model on
# 30k rows clears (the gate's own behaviour is tested in tests/code/test_policy.py).
FAST = {"evaluation.baselines": False, "evaluation.bootstrap": 30, "gate.tasks.click.floor": 0.5,
        "gate.tasks.add_to_cart.floor": 0.5, "gate.tasks.purchase.floor": 0.5}
MODEL_TASKS = ["click", "add_to_cart", "purchase", "dwell"]
PIPELINE = ["configure", "generate", "validate", "preprocess", "baseline", "train", "score",
            *(f"evaluate_task[{i}]" for i in range(len(MODEL_TASKS))), "evaluate", "gate", "promote", "close_workspace"]
POSTGRES = "postgresql://postgres@127.0.0.1:5432"


def _migrate(env: dict) -> None:
    proc = airflow(["db", "migrate"], env, timeout=300)
    assert proc.returncode == 0, tail(proc.stdout)
    proc = airflow(["pools", "set", "mtl_gpu", "1", "GPU training"], env)
    assert proc.returncode == 0, tail(proc.stdout)


@pytest.fixture(scope="module")
def migrated_db(tmp_path_factory) -> Path:
    """An empty, migrated metadata DB, made once per module; each test runs on its own copy."""
    home = tmp_path_factory.mktemp("airflow_template")
    _migrate(airflow_env(home, None))
    return home / "airflow.db"


@pytest.fixture
def airflow_home(tmp_path, migrated_db) -> Path:
    home = tmp_path / "airflow_home"
    home.mkdir()
    shutil.copy(migrated_db, home / "airflow.db")
    return home


def _workspaces(project: Path) -> list[Path]:
    """The runs' workspaces left in the project (not the last finished run's outputs)."""
    folder = workspaces.runs_dir(project)
    return sorted(p for p in folder.iterdir() if p.name != workspaces.LATEST) if folder.is_dir() else []


def _dags_test(env: dict, conf: dict | None = None):
    return airflow(["dags", "test", DAG_ID, *(["--conf", json.dumps(conf)] if conf else [])], env)


def _registry(project: Path, uri: str | None = None):
    """(model versions, champion version) of the project's MLflow store."""
    from mlflow import MlflowClient

    uri = uri or f"sqlite:///{project / 'mlflow.db'}"
    # registry_uri too: without it the client takes whatever store an earlier test in this
    # process set with mlflow.set_registry_uri, and counts that store's versions
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    versions = client.search_model_versions("name = 'mtl-ecommerce'")
    champion = client.get_model_version_by_alias("mtl-ecommerce", "champion").version if versions else None
    return sorted(int(v.version) for v in versions), champion and int(champion)


NOTIFIER = '''
import json

from airflow.sdk import BaseNotifier


class FileNotifier(BaseNotifier):
    """Appends what it is told to a file: a notifier as an installed provider would ship one."""

    def __init__(self, path):
        super().__init__()
        self.path = path

    def notify(self, context):
        with open(self.path, "a") as fh:
            fh.write(json.dumps({"event": context.get("mtl_event", "failure"), "task": context["ti"].task_id,
                                 "reason": context.get("mtl_reason")}) + "\\n")
'''


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


def test_form_run_rerun_and_bad_data(project, airflow_home, tmp_path):
    """A run with form values; the same run again (a no-op: no new model version); a run on bad
    data, which stops at validate, never promotes, and leaves the champion and params.yaml alone."""
    from mlflow import MlflowClient

    told = tmp_path / "told.jsonl"  # what airflow.notify's notifier heard (a BaseNotifier of the plugins folder)
    (project / "plugins" / "mtl_test_notifier.py").write_text(NOTIFIER)
    set_params(project, FAST | {"airflow.notify": {"notifier": "mtl_test_notifier:FileNotifier",
                                                   "args": {"path": str(told)}}})
    own_params = (project / "params.yaml").read_bytes()
    env = airflow_env(airflow_home, project)
    conf = {"epochs": 1, "architecture": "shared_bottom", "tasks": ["click", "purchase", "dwell"], "gate": "relaxed"}

    proc = _dags_test(env, conf)
    assert proc.returncode == 0, tail(proc.stdout)
    state, tasks = run_states(airflow_home)
    assert state == "success", tasks
    expected = [t for t in PIPELINE if not t.startswith("evaluate_task")] + [f"evaluate_task[{i}]" for i in range(3)]
    assert tasks == {t: "success" for t in expected}
    assert (project / "params.yaml").read_bytes() == own_params  # never written: the run had a workspace
    assert not (project / "dvc.lock").exists()  # nor the checkout's dvc.lock and data/
    assert _workspaces(project) == []  # removed at the end; its outputs are the next run's start:
    latest = workspaces.latest(project)
    # The run used the form's values: DVC recorded them, and so did the MLflow run.
    lock = yaml.safe_load((latest / "dvc.lock").read_text())["stages"]
    assert lock["train"]["params"]["params.yaml"]["train"]["epochs"] == 1
    assert [t["name"] for t in lock["train"]["params"]["params.yaml"]["tasks"]] == ["click", "purchase", "dwell"]
    run_id = json.loads((latest / "data" / "04_model" / "train.json").read_text())["run_id"]
    run = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}").get_run(run_id)
    overrides = json.loads(run.data.tags["mtl.overrides"])
    assert overrides["train.epochs"] == 1 and overrides["model.architecture"] == "shared_bottom"
    assert "dwell" in overrides["gate"]["tasks"]  # kept: it was chosen
    assert overrides["gate"]["require_improvement"] is False  # relaxed
    assert "add_to_cart" not in overrides["gate"]["tasks"]  # dropped with its task
    assert run.data.params["train.epochs"] == "1" and run.data.params["model.architecture"] == "shared_bottom"
    assert run.data.tags["mtl.airflow_dag_id"] == DAG_ID
    assert set(json.loads((latest / "data" / "05_evaluation" / "metrics.json").read_text())["tasks"]) == \
        {"click", "purchase", "dwell"}
    assert _registry(project) == ([1], 1)

    # mtl_scoring scores a day (the form's; a scheduled run takes its data interval's) with the
    # champion just promoted.
    day_rows = pd.read_parquet(latest / "data" / "03_features" / "test_raw.parquet").head(700)
    (project / "data" / "to_score").mkdir(parents=True)
    day_rows.to_csv(project / "data" / "to_score" / "2026-11-29.csv", index=False)
    proc = airflow(["dags", "test", "mtl_scoring", "--conf", json.dumps({"day": "2026-11-29"})], env)
    assert proc.returncode == 0, tail(proc.stdout)
    assert run_states(airflow_home, "mtl_scoring") == ("success", {"wait_for_input": "success", "score": "success"})
    scores = pd.read_parquet(project / "data" / "07_scores" / "2026-11-29.parquet")
    assert len(scores) == 700 and scores["user_id"].tolist() == day_rows["user_id"].tolist()
    assert scores[["click", "purchase"]].apply(lambda s: s.between(0, 1).all()).all()
    manifest = json.loads((project / "data" / "07_scores" / "2026-11-29.parquet.json").read_text())
    assert manifest["model_uri"] == "models:/mtl-ecommerce/1" and manifest["rows"] == 700

    # The same form again: every stage is up to date, the gate finds the candidate is already
    # the champion, promotion is skipped, and the registry gets no second version.
    proc = _dags_test(env, conf)
    assert proc.returncode == 0, tail(proc.stdout)
    state, tasks = run_states(airflow_home)
    assert state == "success"
    assert tasks["gate"] == "success" and tasks["promote"] == "skipped", tasks
    assert "Stage 'train' didn't change, skipping" in proc.stdout
    assert _registry(project) == ([1], 1)
    (rejection,) = [json.loads(line) for line in told.read_text().splitlines()]  # the first run: nothing told
    assert rejection["event"] == "rejection" and rejection["task"] == "gate" and "champion" in rejection["reason"]

    # Bad data through the form's data source: validation fails the run; nothing after it runs.
    bad = _log_without_purchases(project, tmp_path / "no_purchase.parquet")
    proc = _dags_test(env, {"data_source": str(bad)})
    assert proc.returncode != 0, tail(proc.stdout)
    state, tasks = run_states(airflow_home)
    assert state == "failed"
    assert tasks["generate"] == "success" and tasks["validate"] == "failed"
    after = PIPELINE[PIPELINE.index("preprocess"):PIPELINE.index("evaluate_task[0]")] + ["evaluate_task", "evaluate",
                                                                                        "gate", "promote"]
    assert {tasks[t] for t in after} == {"upstream_failed"}, tasks
    assert tasks["close_workspace"] == "success"
    (kept,) = _workspaces(project)  # the failed run's workspace stays for debugging
    assert (kept / ".mtl" / "running" / "validate").is_file()
    assert not (kept / "data" / "02_validation" / "passed.json").exists()
    assert any("purchase" in line and "missing" in line for line in proc.stdout.splitlines()), tail(proc.stdout)
    assert _registry(project) == ([1], 1)  # the champion is untouched
    failure = json.loads(told.read_text().splitlines()[-1])
    assert failure["event"] == "failure" and failure["task"] == "validate"
    assert (project / "params.yaml").read_bytes() == own_params
    assert bad.is_file()  # the user's file is only read
    # the ingested batch and its report moved to quarantine
    (quarantined,) = (project / "data" / "quarantine").iterdir()
    assert (quarantined / "batch" / "impressions.parquet").is_file() and (quarantined / "summary.txt").is_file()

    # mtl_maintenance (`mtl gc` on its schedule): a dry run removes nothing; the run then applies
    # the policy, under which the scored day, the quarantined batch and the failed run's workspace
    # have expired, keeps the champion, and runs `airflow db clean` on this metadata DB (whose
    # history is younger than retention.airflow_days: nothing of it goes).
    set_params(project, {"retention.score_days": 1, "retention.quarantine_days": 0, "airflow.keep_failed_hours": 0})
    for dry_run in (True, False):
        proc = airflow(["dags", "test", "mtl_maintenance", "--conf", json.dumps({"dry_run": dry_run})], env)
        assert proc.returncode == 0, tail(proc.stdout)
        assert run_states(airflow_home, "mtl_maintenance") == ("success", {"gc": "success"})
        there = [(project / "data" / "07_scores" / "2026-11-29.parquet").is_file(), quarantined.is_dir(), kept.is_dir()]
        assert there == [dry_run] * 3, tail(proc.stdout)
        assert ("would remove" if dry_run else "gc: removed") in proc.stdout, tail(proc.stdout)
    assert _registry(project) == ([1], 1)
    assert run_states(airflow_home)[0] == "failed"  # the training DAG's history is still there


def test_bad_form_value_fails_at_configure_naming_it(project, airflow_home):
    proc = _dags_test(airflow_env(airflow_home, project), {"data_source": "no/such/folder"})
    assert proc.returncode != 0
    state, tasks = run_states(airflow_home)
    assert tasks["configure"] == "failed" and tasks["generate"] == "upstream_failed"
    assert "no/such/folder" in proc.stdout, tail(proc.stdout)
    assert _workspaces(project) == []  # nothing made



# configs/supply_chain.yaml, small: 30 series x 150 days, one epoch. No floors: the run must
# reach promotion (what the gate decides is tested in tests/code/test_forecast_gate.py).
SUPPLY_CHAIN_SMALL = {"data.synthetic.items": 15, "data.synthetic.warehouses": 2, "data.synthetic.days": 150,
                      "data.panel.lookback": 14, "train.epochs": 1, "train.num_threads": 1,
                      "train.min_steps_per_epoch": None,
                      "evaluation.bootstrap": 20, "model.temporal.dilations": [1, 2, 4],
                      **{f"gate.tasks.{t}.floor": None for t in ("demand", "stockout", "late_delivery")}}
SUPPLY_CHAIN_TASKS = ["demand", "demand_p50", "demand_p90", "demand_14d", "demand_21d", "demand_14d_p90",
                      "demand_21d_p90", "stockout", "late_delivery"]


def test_the_supply_chain_preset_runs_through_the_dags_unchanged(project, airflow_home):
    """`cp configs/supply_chain.yaml params.yaml`, then the same DAGs as the ranking log: every
    stage of `mtl_training` (the forecasts beside seasonal naive, the trees and the oracle, gated
    on WAPE and pinball, promoted after the package forecast raw history in a fresh process),
    then `mtl_scoring` and `mtl score` turn raw recent history into next week's forecasts."""
    from mlflow import MlflowClient

    from mtl.cli import main

    shutil.copy(project / "configs" / "supply_chain.yaml", project / "params.yaml")
    set_params(project, SUPPLY_CHAIN_SMALL)
    env = airflow_env(airflow_home, project)
    proc = _dags_test(env)
    assert proc.returncode == 0, tail(proc.stdout)
    state, tasks = run_states(airflow_home)
    expected = [t for t in PIPELINE if not t.startswith("evaluate_task")]
    assert state == "success" and tasks == {t: "success" for t in expected} | {
        f"evaluate_task[{i}]": "success" for i in range(len(SUPPLY_CHAIN_TASKS))}, tasks
    latest = workspaces.latest(project)
    evaluation = json.loads((latest / "data" / "05_evaluation" / "metrics.json").read_text())
    metrics = evaluation["tasks"]
    assert list(metrics) == SUPPLY_CHAIN_TASKS
    demand = metrics["demand"]
    assert demand["gate_metric"] == "wape" and demand["forecast"]["naive"]["wape"] > 0
    assert demand["forecast"]["oracle"]["wape"] < demand["forecast"]["naive"]["wape"]
    assert {"wape", "mase", "rmsse"} <= set(demand["gbdt"]) and "auc" in metrics["stockout"]["gbdt"]
    assert set(demand["forecast"]["slices"]) == {"warehouse_id", "category_id"}
    assert metrics["demand_p90"]["gate_metric"] == "pinball" and 0 <= metrics["demand_p90"]["forecast"]["coverage"] <= 1
    cost = evaluation["decision_cost"]
    assert cost["tasks"] == {"7": "demand_p90", "14": "demand_14d_p90", "21": "demand_21d_p90"} and cost["inventory"]
    assert {"model P90", "seasonal naive", "trees P90", "oracle mean"} <= set(cost["policies"])
    assert sum(cost["rows_by_horizon"].values()) == cost["rows"] > 0 and cost["rows_by_horizon"]["7"] == 0
    assert metrics["demand_21d_p90"]["forecast"]["horizon"] == 21
    # the point forecast at each horizon, scored as the week's is
    for task, days in (("demand_14d", 14), ("demand_21d", 21)):
        forecast = metrics[task]["forecast"]
        assert forecast["horizon"] == days and {"wape", "mase", "rmsse", "bias"} <= set(forecast), forecast
        assert {"wape", "mase"} <= set(forecast["naive"]) and "wape" in forecast["oracle"]
    decision = json.loads((latest / "data" / "06_promotion" / "decision.json").read_text())
    assert {t["task"]: t["metric"] for t in decision["tasks"]}["demand"] == "wape"
    assert decision["promote"] and decision["load_check"]["passed"], decision
    train = json.loads((latest / "data" / "04_model" / "train.json").read_text())
    # those it helped on validation
    assert set(train["quantile_calibration"]) <= {"demand_p50", "demand_p90", "demand_14d_p90", "demand_21d_p90"}

    # A day's raw history (each series' last days, the newest 3 planned only: prices and
    # promotions known, sales not yet) -> one forecast per series from its newest observed day.
    (raw_file,) = (latest / "data" / "01_raw").glob("*.parquet")
    raw = pd.read_parquet(raw_file)
    last = raw["date"].max()
    history = raw[raw["date"] > last - pd.Timedelta(days=20)].drop(columns=["demand", "expected_demand"])
    planned = history[history["date"] > last - pd.Timedelta(days=3)].index
    history.loc[planned, ["units_sold", "stock_on_hand", "on_order"]] = None
    (project / "data" / "to_score").mkdir(parents=True)
    history.to_parquet(project / "data" / "to_score" / "2026-11-29.parquet")
    proc = airflow(["dags", "test", "mtl_scoring", "--conf", json.dumps({"day": "2026-11-29"})], env)
    assert proc.returncode == 0, tail(proc.stdout)
    assert run_states(airflow_home, "mtl_scoring") == ("success", {"wait_for_input": "success", "score": "success"})
    forecast = pd.read_parquet(project / "data" / "07_scores" / "2026-11-29.parquet")
    assert len(forecast) == 30 and set(forecast.columns) >= {"item_id", "warehouse_id", "origin", *SUPPLY_CHAIN_TASKS}
    assert (pd.to_datetime(forecast["origin"]) == last - pd.Timedelta(days=3)).all()  # the newest observed day
    assert (forecast["demand"] >= 0).all() and forecast["stockout"].between(0, 1).all()
    # `mtl score` with the registered version: the same forecasts
    uri = f"sqlite:///{project / 'mlflow.db'}"  # and as the registry: an earlier test may have set another
    (version,) = MlflowClient(tracking_uri=uri, registry_uri=uri).search_model_versions("name='mtl-supply-chain'")
    assert main(["--project", str(project), "score", "--input", str(project / "data" / "to_score" / "2026-11-29.parquet"),
                 "--output", str(project / "forecast.csv"), "--model", f"models:/mtl-supply-chain/{version.version}"]) == 0
    by_cli = pd.read_csv(project / "forecast.csv")
    assert np.allclose(by_cli["demand"], forecast["demand"]) and np.allclose(by_cli["demand_p90"], forecast["demand_p90"])

@contextmanager
def _postgres_database(prefix: str):
    import psycopg2

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(f"{POSTGRES}/postgres")
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        yield f"{POSTGRES}/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_dag_runs_on_postgresql(project, tmp_path):
    """The same DAG with Airflow's metadata DB and the MLflow store on the local PostgreSQL server."""
    set_params(project, FAST)
    home = tmp_path / "airflow_home"
    home.mkdir()
    with _postgres_database("mtl_airflow") as airflow_db, _postgres_database("mtl_mlflow") as mlflow_db:
        env = airflow_env(home, project) | {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_db.replace("postgresql://", "postgresql+psycopg2://"),
            "MLFLOW_TRACKING_URI": mlflow_db,
        }
        _migrate(env)
        proc = _dags_test(env)
        assert proc.returncode == 0, tail(proc.stdout)
        state, tasks = run_states(env)
        assert state == "success"
        assert tasks == {t: "success" for t in PIPELINE}
        assert _registry(project, mlflow_db) == ([1], 1)
        assert not (project / "mlflow.db").exists()  # everything went to PostgreSQL
