"""The training pipeline as an Airflow DAG: one task per ``dvc.yaml`` stage, in declared order.

The DAG restates nothing: the stage list is read from ``dvc.yaml`` and each task runs its stage
through ``mtl.pipeline.run_stage`` (``dvc repro --single-item``), the same DVC path ``mtl run`` takes, so
``dvc.lock`` and the DVC cache record what Airflow ran. The scheduler parses this file constantly,
so module level does only a small YAML read; ``mtl`` and everything heavy load inside the task.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import yaml
from airflow.sdk import chain, dag, task

# The workspace whose dvc.yaml, params.yaml and data/ the tasks run on. Passed to run_stage
# explicitly so that the worker's current directory never matters.
PROJECT_DIR = Path(os.environ.get("MTL_PROJECT_DIR") or Path(__file__).resolve().parents[1]).resolve()

# Bad data does not get better on a second try: a failed validation fails the run at once.
NO_RETRY = {"validate"}


def _stages(root: Path) -> dict[str, dict]:
    dvc_yaml = root / "dvc.yaml"
    if not dvc_yaml.is_file():
        raise FileNotFoundError(f"{dvc_yaml} not found: set $MTL_PROJECT_DIR to the project workspace")
    return yaml.safe_load(dvc_yaml.read_text())["stages"]


STAGES = _stages(PROJECT_DIR)


def _stage_table(stages: dict[str, dict]) -> str:
    """Markdown rows: each stage, its command, and the paths it writes, as dvc.yaml declares them."""
    rows = []
    for name, spec in stages.items():
        entries = [e for kind in ("outs", "metrics", "plots") for e in spec.get(kind, [])]
        writes = ", ".join(f"`{e if isinstance(e, str) else next(iter(e))}`" for e in entries)
        rows.append(f"| {name} | `{spec.get('cmd', '')}` | {writes} |")
    return "\n".join(rows)


DOC_MD = f"""
# Multi-task learning training pipeline

Runs the stages of `dvc.yaml` in `{PROJECT_DIR}`, one task each, in the order declared there:

| task | command | writes |
|---|---|---|
{_stage_table(STAGES)}

Each task runs `dvc repro --single-item <stage>`: a stage whose inputs did not change is skipped,
and `dvc.lock` records what ran. A failed task stops everything after it; bad data fails the
run at `validate` (see its Data Docs under `data/02_validation/data_docs`). Configuration lives in
`params.yaml`. Runs are serialised (`max_active_runs=1`) because they share one DVC workspace.
"""


@task
def run_dvc_stage(stage: str) -> None:
    """Run one dvc.yaml stage; its output streams into this task's log. Raises if the stage fails."""
    import logging

    from mtl.pipeline import run_stage

    run_stage(stage, root=PROJECT_DIR, echo=logging.getLogger(f"mtl.{stage}").info)


@dag(
    dag_id="mtl_training",
    schedule=None,  # triggered by hand from the UI or `airflow dags trigger`
    catchup=False,
    max_active_runs=1,
    tags=["mtl", "training", "dvc"],
    doc_md=DOC_MD,
    default_args={"owner": "mtl", "retries": 1, "retry_delay": timedelta(minutes=1)},
)
def mtl_training():
    tasks = []
    for stage, spec in STAGES.items():
        overrides = {"retries": 0} if stage in NO_RETRY else {}
        doc = f"`dvc repro --single-item {stage}` (runs `{spec.get('cmd', '?')}`)"
        tasks.append(run_dvc_stage.override(task_id=stage, doc_md=doc, **overrides)(stage))
    chain(*tasks)


mtl_training()
