"""`mtl_maintenance`: the retention policy on a schedule (params.yaml ``retention``).

    gc (`mtl gc`): expired MLflow runs, models and versions; unreferenced DVC cache entries; old
        quarantined batches, score files and failed runs' workspaces; Airflow's history of the
        project's DAGs

gc waits for running pipelines (it takes the store lock their DVC commands share) and for a
promotion in progress (the promotion lock), so it is safe to schedule at any hour. Trigger it
with **dry_run** to see in the task log what it would remove, without removing anything.
"""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import Param, dag, task

from mtl.orchestration import default_args, project_dir, read_config

PROJECT_DIR = project_dir(__file__)
CFG = read_config(PROJECT_DIR)  # the typed params.yaml, as every stage reads it


@task
def gc(**context) -> dict:
    """`mtl gc` with the policy params.yaml holds now; the report is the task's log."""
    from mtl.config import load_config
    from mtl.maintenance.gc import gc as run_gc
    from mtl.paths import Paths

    dry_run = bool(context["params"].get("dry_run"))
    done = run_gc(load_config(PROJECT_DIR / "params.yaml"), Paths.at(PROJECT_DIR), dry_run=dry_run, verbose=True)
    return {"dry_run": dry_run, "items": len(done.items), "bytes": sum(i.bytes or 0 for i in done.items),
            "classes": {str(v): c for v, c in done.classes.items()}}


@dag(
    dag_id="mtl_maintenance",
    schedule=CFG.retention.schedule,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["mtl", "maintenance"],
    doc_md=__doc__,
    params={"dry_run": Param(False, type="boolean", description="only report what would be removed")},
    default_args=default_args(CFG.airflow),
)
def mtl_maintenance():
    gc()


mtl_maintenance()
