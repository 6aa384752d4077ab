"""Promotion against a real MLflow registry: rollback, lineage, the load check, and a race."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from mtl import cli, stagelist, tracking
from mtl.config import load_config
from mtl.paths import Paths
from mtl.promotion import registry
from mtl.stages import promote
from tests.conftest import SMALL_OVERRIDES, copy_project, set_params
from tests.e2e.test_stages import run_chain

NAME = "mtl-ecommerce"
# A second model is promoted on a floor alone: a 30k-row log's test split is too small for a
# seed change to be better (or worse) beyond noise, and these tests are about the registry.
LENIENT = {"gate.require_improvement": False, "gate.slices": {},
           "gate.tasks": {"click": {"floor": 0.5, "max_regression": 1.0}}}


def versions() -> dict[str, dict]:
    return {str(v.version): v.tags for v in MlflowClient().search_model_versions(f"name='{NAME}'")}


@pytest.mark.slow
def test_rollback_lineage_and_a_broken_package(project, capsys):
    """One registry's life: two promotions, lineage, rollback, nothing left to roll back, and a
    candidate whose packaged weights are corrupt stopped by the load check."""
    set_params(project, LENIENT)
    paths = run_chain(project)
    set_params(project, {"train.seed": 7})
    run_chain(project)
    tracking.configure(paths)
    assert str(registry.get_champion(NAME).version) == "2"
    assert str(registry.get_alias(NAME, registry.PREVIOUS).version) == "1"

    assert cli.main(["lineage", "2"]) == 0
    out = capsys.readouterr().out
    assert "replaced              v2 <- v1" in out
    assert f"MLflow run            {json.loads(paths.train_info.read_text())['run_id']}" in out
    assert "feature transform" in out and "validation            passed" in out and "train.seed = 7" in out

    assert cli.main(["rollback"]) == 0
    assert "version 1 is @champion again" in capsys.readouterr().out
    assert str(registry.get_champion(NAME).version) == "1"
    assert registry.get_alias(NAME, registry.PREVIOUS) is None  # version 1 replaced nothing
    assert versions()["2"][registry.DECISION] == "rolled_back"
    assert cli.main(["champion"]) == 0
    assert "mtl-ecommerce version 1 (@champion)" in capsys.readouterr().out
    # Nothing left to roll back to: a clear error, exit 2, the champion untouched.
    assert cli.main(["rollback"]) == 2
    assert "no previous_champion" in capsys.readouterr().err
    assert str(registry.get_champion(NAME).version) == "1"

    # A third candidate that passes the gate, but whose packaged weights (what the registry
    # would serve, not the local copy evaluate used) are corrupt: the load check stops it.
    set_params(project, {"train.seed": 8})
    cfg = load_config(project / "params.yaml")
    for name in ("train", "score", "evaluate_task", "evaluate", "gate"):
        stagelist.functions()[name](cfg, paths)
    model_id = json.loads(paths.train_info.read_text())["model_uri"].split("/")[-1]
    location = Path(mlflow.get_logged_model(model_id).artifact_location.removeprefix("file://"))
    (location / "artifacts" / "model.pt").write_bytes(b"not a checkpoint")
    decision = promote.run(cfg, paths)
    assert not decision.promote
    assert not decision.load_check["passed"]
    assert "failed the load check in a fresh process" in decision.summary
    assert str(registry.get_champion(NAME).version) == "1"
    assert versions()[decision.registered_version][registry.DECISION] == "rejected"


def _candidate(root: Path, overrides: dict, data_from: Path | None = None) -> Path:
    """A workspace trained and evaluated in-process (tracking to $MLFLOW_TRACKING_URI), reusing
    ``data_from``'s raw data and features when given (the same data, as competing runs share)."""
    import shutil

    copy_project(root)
    set_params(root, overrides)
    names = list(stagelist.functions())[:-1]  # all but promote
    if data_from is not None:
        for layer in ("01_raw", "02_validation", "03_features"):
            shutil.copytree(data_from / "data" / layer, root / "data" / layer)
        names = ["train", "score", "evaluate_task", "evaluate", "gate"]
    cfg, paths = load_config(root / "params.yaml"), Paths.at(root)
    for name in names:
        stagelist.functions()[name](cfg, paths)
    return root


@pytest.mark.slow
def test_two_concurrent_promotions_end_with_the_better_model(tmp_path, monkeypatch):
    """Two candidates judged against the same champion promote at once: the second to take the
    lock finds the champion changed, is judged again against the first, and the better model
    ends as champion; both decisions stay on record as version tags."""
    store = f"sqlite:///{tmp_path / 'shared.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.chdir(tmp_path)  # a store given by URI keeps artifacts under ./mlruns
    # Gated on click alone, the task with enough positives in a 2k-row test split to rank these
    # models reliably: the champion is all but untrained, "weak" a little better, "strong" much.
    base = SMALL_OVERRIDES | {"gate.slices": {}, "gate.tasks": {"click": {"max_regression": 0.0}}}
    first = _candidate(tmp_path / "first", base | {"train.epochs": 1, "train.learning_rate": 0.00001})
    promote.run(load_config(first / "params.yaml"), Paths.at(first))
    strong = _candidate(tmp_path / "strong", base | {"train.epochs": 3, "train.seed": 7}, data_from=first)
    weak = _candidate(tmp_path / "weak", base | {"train.epochs": 1, "train.learning_rate": 0.0002, "train.seed": 8},
                      data_from=first)
    mlflow.set_tracking_uri(store)
    assert str(registry.get_champion(NAME).version) == "1"

    # Hold the promotion lock while both start, so both judge against version 1 and then queue.
    lock = registry.promotion_lock(NAME, store, registry.lock_dir_for(store))
    with lock:
        procs = {ws.name: subprocess.Popen([sys.executable, "-m", "mtl.cli", "promote"], cwd=ws,
                                           env={**os.environ, "MTL_PROJECT_DIR": str(ws)},
                                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for ws in (weak, strong)}
        deadline, started = 240, time.time()
        while len(versions()) < 3 and time.time() - started < deadline:
            time.sleep(1)
        # Registered means judged: both were judged against version 1 before either can promote.
        assert len(versions()) == 3, "both candidates should have registered while the lock was held"
    outputs = {n: p.communicate(timeout=300)[0] for n, p in procs.items()}
    assert all(p.returncode == 0 for p in procs.values()), outputs

    decisions = {ws.name: json.loads((ws / "data/06_promotion/decision.json").read_text()) for ws in (weak, strong)}
    assert decisions["strong"]["promote"], decisions["strong"]["summary"]
    assert str(registry.get_champion(NAME).version) == decisions["strong"]["registered_version"]
    # Exactly one of them was judged again under the lock, against the other's version.
    rejudged = [n for n, d in decisions.items() if d["rejudged"]]
    assert len(rejudged) == 1, outputs
    other = "strong" if rejudged[0] == "weak" else "weak"
    assert decisions[rejudged[0]]["champion_version"] == decisions[other]["registered_version"]
    if rejudged[0] == "weak":  # promoted second against the strong one: it must lose
        assert not decisions["weak"]["promote"]
    tags = versions()
    assert {tags[d["registered_version"]][registry.DECISION] for d in decisions.values()} <= {"promoted", "rejected"}
    assert tags[decisions["strong"]["registered_version"]][registry.DECISION] == "promoted"
