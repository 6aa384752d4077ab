"""MLflow setup and lineage tags. The only module that decides where runs are tracked."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

from mtl.paths import Paths

EXPERIMENT = "mtl-training"
TUNE_EXPERIMENT = "mtl-tuning"  # `mtl tune`: a parent run per study, a child run per trial


def tracking_uri(paths: Paths) -> str:
    """$MLFLOW_TRACKING_URI (e.g. a PostgreSQL store or a server), else a SQLite file in the project."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{paths.mlflow_db}"


def configure(paths: Paths, experiment: str = EXPERIMENT) -> str:
    """Point MLflow at the store and make sure ``experiment`` exists; returns its id."""
    import mlflow

    user_uri = os.environ.get("MLFLOW_TRACKING_URI")
    uri = tracking_uri(paths)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    # set_tracking_uri also exports MLFLOW_TRACKING_URI; undo that, or a later configure() in
    # this process (another project) would take this project's store for the user's choice.
    if user_uri is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    existing = mlflow.get_experiment_by_name(experiment)
    if existing is not None:
        return existing.experiment_id
    # With the default local store, keep artifacts inside the project too (MLflow would otherwise
    # pick ./mlruns relative to whatever directory the process happens to run in).
    location = None if user_uri else paths.mlflow_artifacts.as_uri()
    return mlflow.create_experiment(experiment, artifact_location=location)


def git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                           capture_output=True, text=True, timeout=10).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


def dvc_hashes(root: Path) -> dict[str, str]:
    """DVC's content hashes of the stage outputs recorded in dvc.lock, e.g. {"data/01_raw": "ab12...dir"}.

    `dvc repro` writes each stage's lock entry as soon as that stage finishes, so a later stage
    sees the exact hashes of the data it reads.
    """
    lock = root / "dvc.lock"
    if not lock.is_file():
        return {}
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    hashes = {}
    for stage in stages.values():
        for out in stage.get("outs", []):
            if "md5" in out:
                hashes[out["path"]] = out["md5"]
    return hashes


def lineage_tags(paths: Paths) -> dict[str, str]:
    tags = {"mtl.project_dir": str(paths.root)}
    commit = git_commit(paths.root)
    if commit:
        tags["mtl.git_commit"] = commit
    for path, md5 in dvc_hashes(paths.root).items():
        if path.startswith("data/0") and path.count("/") == 1:
            tags[f"mtl.dvc.{path.split('/')[1]}"] = md5
    run_id = os.environ.get("AIRFLOW_CTX_DAG_RUN_ID")
    if run_id:
        tags["mtl.airflow_run_id"] = run_id
    pipeline_run = os.environ.get("MTL_PIPELINE_RUN_ID") or run_id
    if pipeline_run:
        tags["mtl.pipeline_run_id"] = pipeline_run
    from mtl.orchestration import active_run

    active = active_run(paths.root)  # an Airflow run's form values, applied over params.yaml
    if active is not None and active.get("run_id") == run_id:
        tags["mtl.airflow_dag_id"] = str(active.get("dag_id"))
        tags["mtl.overrides"] = json.dumps(active.get("overrides", {}), sort_keys=True, default=str)[:5000]
    return tags
