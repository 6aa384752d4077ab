"""Run workspaces (mtl/workspaces.py) on their own: what a workspace holds, what it shares with
the project, and how it ends. The DAG running in them is in tests/airflow/."""

from __future__ import annotations

import configparser
import os

import pytest
import yaml

from mtl import workspaces
from mtl.paths import Paths, home_of


@pytest.fixture
def ran(project):
    """The project with outputs of an earlier run (what a workspace starts from) and a user edit."""
    raw = project / "data" / "01_raw"
    raw.mkdir(parents=True)
    (raw / "impressions.parquet").write_bytes(b"rows")
    (project / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    (project / "data" / "quarantine" / "old").mkdir(parents=True)
    (project / "data" / "07_scores").mkdir(parents=True)
    (project / "notes.md").write_text("an untracked file of the user's")
    return project


def _make(home, run_id="r1", epochs=1):
    params = yaml.safe_load((home / "params.yaml").read_text())
    params["train"]["epochs"] = epochs
    return workspaces.create(home, run_id, params, {"run_id": run_id})


def test_a_workspace_holds_the_project_its_params_and_linked_outputs(ran):
    root = _make(ran)
    assert yaml.safe_load((root / "params.yaml").read_text())["train"]["epochs"] == 1
    assert (root / "notes.md").is_file()  # the user's uncommitted work comes along
    linked = root / "data" / "01_raw" / "impressions.parquet"
    assert os.stat(linked).st_ino == os.stat(ran / "data" / "01_raw" / "impressions.parquet").st_ino
    assert (root / "dvc.lock").read_text() == (ran / "dvc.lock").read_text()
    assert not (root / "data" / "quarantine").exists() and not (root / "data" / "07_scores").exists()
    config = configparser.ConfigParser()
    config.read(root / ".dvc" / "config.local")
    assert config["cache"]["dir"] == str(ran / ".dvc" / "cache") and config["core"]["no_scm"] == "true"
    # its stores and the user's files are the project's
    paths = Paths.at(root)
    assert home_of(root) == ran and paths.mlflow_db == ran / "mlflow.db" and paths.optuna_db == ran / "optuna.db"
    assert paths.resolve("data/incoming") == ran / "data" / "incoming"
    assert Paths.at(ran / ".dvc" / "tmp" / "exps" / "standalone" / "tmpab12").home == ran  # dvc exp run --temp


def test_an_existing_workspace_is_reused_or_refreshed(ran):
    root = _make(ran)
    (root / "data" / "04_model").mkdir(parents=True)
    (root / "data" / "04_model" / "model.pt").write_bytes(b"a model")
    assert _make(ran, epochs=5) == root  # a retried setup: as it was
    assert yaml.safe_load((root / "params.yaml").read_text())["train"]["epochs"] == 1
    params = yaml.safe_load((ran / "params.yaml").read_text()) | {"tune": {}}
    (ran / "notes.md").write_text("edited")
    (root / "dvc.lock").write_text("the workspace's own record")
    workspaces.create(ran, "r1", params, {"run_id": "r1"}, refresh=True)
    assert (root / "notes.md").read_text() == "edited" and (root / "data" / "04_model" / "model.pt").is_file()
    assert (root / "dvc.lock").read_text() == "the workspace's own record"


def test_a_finished_run_leaves_its_outputs_as_the_next_ones_start(ran):
    root = _make(ran)
    workspaces.started(root, "train")
    workspaces.finished(root, "train")
    (root / "data" / "04_model").mkdir(parents=True)
    (root / "data" / "04_model" / "model.pt").write_bytes(b"run 1")
    (root / "dvc.lock").write_text("run 1's lock")
    assert workspaces.close(root).startswith("removed")
    assert not root.exists()
    latest = workspaces.latest(ran)
    assert (latest / "dvc.lock").read_text() == "run 1's lock"
    nxt = _make(ran, "r2")
    assert (nxt / "data" / "04_model" / "model.pt").read_bytes() == b"run 1"
    assert (nxt / "dvc.lock").read_text() == "run 1's lock"
    assert (ran / "dvc.lock").read_text() != "run 1's lock"  # the checkout's own is untouched


def test_a_failed_run_is_kept_then_swept(ran):
    root = _make(ran)
    workspaces.started(root, "validate")  # and never finished
    assert "validate did not finish" in workspaces.close(root)
    assert root.is_dir() and workspaces.latest(ran) is None
    assert workspaces.sweep(ran, keep_failed_hours=72) == []
    stamp = float((root / ".mtl" / workspaces.FAILED_AT).read_text())
    assert workspaces.sweep(ran, keep_failed_hours=72, now=stamp + 73 * 3600) == [root]
    assert not root.exists()
