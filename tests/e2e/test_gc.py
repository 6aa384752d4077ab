"""`mtl gc` on a project with a history: four real `mtl run`s (three promoted, one rejected), a
quarantined batch and daily score files, aged by `--as-of` so that the policy expires some of it.

One project serves the whole story, in the order an operator meets it: a dry run that changes
nothing, a gc killed midway that leaves every kept version whole, and a gc run to the end that
removes exactly what the dry run named."""

import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from mtl import tracking
from mtl.config import load_config
from mtl.maintenance.gc import gc
from mtl.paths import Paths
from mtl.promotion import registry
from tests.conftest import SMALL_OVERRIDES, copy_project, set_params

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("gc")]

NAME = "mtl-ecommerce"
BASE = SMALL_OVERRIDES | {"data.synthetic.rows": 10_000, "train.epochs": 1, "evaluation.baselines": [],
                          "gate.require_improvement": False, "gate.slices": {},
                          "gate.tasks": {"click": {"floor": 0.5, "max_regression": 1.0}}}
# History: v1 promoted, v2 promoted, v3 rejected (an impossible floor), v4 promoted; each on a
# new batch from the same process (more rows), as weekly retraining sees.
RUNS = [{}, {"data.synthetic.rows": 11_000}, {"data.synthetic.rows": 12_000,
                                               "gate.tasks.click.floor": 0.99},
        {"data.synthetic.rows": 13_000, "gate.tasks.click.floor": 0.5}]
POLICY = {"retention.versions": 0, "retention.champions": 2, "retention.candidate_days": 7,
          "retention.quarantine_days": 7, "retention.score_days": 30}
LATER = datetime.now(timezone.utc) + timedelta(days=60)  # every run, batch and score file is old by then
OLD_DAYS, RECENT_DAY = ["2026-01-01", "2026-01-02"], (LATER - timedelta(days=2)).strftime("%Y-%m-%d")


def _mtl(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "MTL_PROJECT_DIR": str(root), "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run([sys.executable, "-m", "mtl.cli", *args], cwd=root, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"mtl {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    for var in ("MLFLOW_TRACKING_URI", "AIRFLOW_HOME"):
        mp.delenv(var, raising=False)
    root = copy_project(tmp_path_factory.mktemp("gc") / "project")
    set_params(root, BASE)
    for overrides in RUNS:
        set_params(root, overrides)
        _mtl(root, "run")
    # A batch from another latent world, run with its own params file (so in its own workspace,
    # .mtl/runs/params-drift): drift stops it at validation and the batch is quarantined in the
    # project. The workspace is then removed, leaving its raw data in the cache unreferenced.
    drift = yaml.safe_load((root / "params.yaml").read_text())
    drift["data"]["synthetic"]["seed"] = 7
    (root / "drift.yaml").write_text(yaml.safe_dump(drift, sort_keys=False))
    assert _mtl(root, "--params", str(root / "drift.yaml"), "run", check=False).returncode != 0
    shutil.rmtree(root / ".mtl" / "runs" / "params-drift")
    set_params(root, POLICY)
    assert _dvc_status(root) == "Data and pipelines are up to date."
    for day in [*OLD_DAYS, RECENT_DAY]:
        _mtl(root, "score", "--input", "data/03_features/test_raw.parquet", "--output", f"data/07_scores/{day}.parquet")
    yield root
    mp.undo()


def _dvc_status(root: Path) -> str:
    out = subprocess.run([sys.executable, "-m", "dvc", "status"], cwd=root, capture_output=True, text=True)
    return out.stdout.strip()


def _files(root: Path) -> set[str]:
    """Every file of the stores gc prunes, relative to the project."""
    out = set()
    for sub in (".dvc/cache", "mlartifacts", "data/quarantine", "data/07_scores"):
        out |= {str(p.relative_to(root)) for p in (root / sub).rglob("*") if p.is_file()}
    return out


def _entities(client) -> dict[str, Path | None]:
    """Every run and logged model of the project, with its artifact folder."""
    from mtl.maintenance.mlflow_store import entities, local_path

    return {f"{e.kind}:{e.id}": local_path(e.artifacts) for e in entities(client)}


def _lineage_ok(root: Path, version: str) -> None:
    out = _mtl(root, "lineage", version, "--verify").stdout
    assert "each hashing as recorded" in out and "transform in the cache matches" in out, out


def test_dry_run_then_a_killed_gc_then_gc_keep_every_kept_version_whole(history):
    root = history
    cfg, paths = load_config(root / "params.yaml"), Paths.at(root)
    tracking.configure(paths)
    client = MlflowClient()
    assert str(registry.get_champion(NAME).version) == "4" and str(registry.get_alias(NAME, "previous_champion").version) == "2"
    files_before, entities_before = _files(root), _entities(client)

    # 1. The dry run: what goes, by store, and nothing deleted.
    plan = gc(cfg, paths, dry_run=True, now=LATER.timestamp())
    assert plan.classes == {4: "full", 2: "full", 1: "lineage", 3: "expired"}
    assert _files(root) == files_before and _entities(client) == entities_before
    by_store = {s: [i for i in plan.items if i.store == s] for s in ("mlflow", "dvc", "quarantine", "scores")}
    assert len(by_store["quarantine"]) == 1
    assert sorted(Path(i.args[0]).stem for i in by_store["scores"]) == sorted([f"{d}.parquet" for d in OLD_DAYS] + OLD_DAYS)
    v1, v3 = ({v.version: v for v in plan.versions}[n] for n in (1, 3))
    doomed = {f"{i.action[6:]}:{i.args[0]}" for i in by_store["mlflow"] if i.action.startswith("purge_")}
    # v3 (rejected) loses its run and model; v1 (an old champion) its model only
    assert doomed >= {f"run:{v3.run_id}", f"model:{v3.model_id}", f"model:{v1.model_id}"}
    assert f"run:{v1.run_id}" not in doomed
    assert by_store["dvc"], "v3's data is referenced by nothing else and must be planned for removal"

    # 2. A gc killed (SIGKILL) between deleting an MLflow run or model and purging it, the second
    # time: every kept version is still whole.
    killer = ("import os, signal, sys\n"
              "from mtl.maintenance import mlflow_store as m\n"
              "calls, real = [0], m._purge\n"
              "def dying(*args, **kwargs):\n"
              "    calls[0] += 1\n"
              "    if calls[0] == 2: os.kill(os.getpid(), signal.SIGKILL)\n"
              "    real(*args, **kwargs)\n"
              "m._purge = dying\n"
              "from mtl.cli import main\n"
              f"sys.exit(main(['gc', '--as-of', '{LATER:%Y-%m-%d}']))\n")
    killed = subprocess.run([sys.executable, "-c", killer], cwd=root, capture_output=True, text=True,
                            env={**os.environ, "MTL_PROJECT_DIR": str(root)})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert str(registry.get_champion(NAME).version) == "4"
    for version in ("1", "2", "4"):
        _lineage_ok(root, version)

    # 3. gc again, to the end: it removes the rest of the dry run's plan and nothing else.
    done = gc(cfg, paths, now=LATER.timestamp())
    assert {(i.action, i.args) for i in done.items} <= {(i.action, i.args) for i in plan.items}
    planned = [Path(i.args[0]) for i in plan.items if i.action == "remove_path"]
    purged = [where for key, where in entities_before.items() if key in doomed and where is not None]
    for rel in files_before:
        f = root / rel
        if any(f == p or p in f.parents for p in planned + purged):
            assert not f.exists(), f"{rel} was planned for removal"
        else:
            assert f.exists(), f"{rel} was removed, but no plan item named it"
    assert set(_entities(client)) == set(entities_before) - doomed
    assert gc(cfg, paths, dry_run=True, now=LATER.timestamp()).items == []  # nothing left to do

    # What stays: the champion and the previous champion score; every kept lineage resolves.
    for version in ("1", "2", "4"):
        _lineage_ok(root, version)
    assert "removed by `mtl gc`" in _mtl(root, "lineage", "3").stdout
    assert client.get_model_version(NAME, "3").tags[registry.DECISION] == "rejected"
    for model in (f"models:/{NAME}@champion", f"models:/{NAME}/2"):
        out = _mtl(root, "score", "--input", "data/03_features/test_raw.parquet", "--output",
                   str(root / "check.parquet"), "--model", model).stdout
        assert "rows" in out
    assert _dvc_status(root) == "Data and pipelines are up to date."
    assert (root / "data/07_scores" / f"{RECENT_DAY}.parquet").is_file()
    assert json.loads((root / "data/06_promotion/decision.json").read_text())["promote"]
