"""Retraining: `mtl_ingest` publishes new data files as an Airflow Asset; `mtl_retraining` runs on
the schedule in params.yaml (airflow.retraining.schedule) and whenever that Asset is updated.

    mtl_ingest:      publish_new_files  (outlet: the incoming folder's Asset; skipped, so no
                                         event, when nothing is new)
    mtl_retraining:  data_changed (short-circuit: the same data as the last retraining is a no-op)
                       -> retrain (triggers mtl_training on the newest window_days of the incoming
                          files and waits for it) -> record

Retraining runs the pipeline through `mtl_training` rather than beside it, so every run that
writes the DVC workspace is one `mtl_training` run (max_active_runs=1): two never overlap.
"""

from __future__ import annotations

import json

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, chain, dag, task

from mtl.orchestration import default_args, incoming_dir, project_dir, read_config

PROJECT_DIR = project_dir(__file__)
AIRFLOW = read_config(PROJECT_DIR).airflow  # the typed params.yaml, as every stage reads it
RETRAINING = AIRFLOW.retraining
INCOMING_DIR = incoming_dir(PROJECT_DIR, AIRFLOW)
INCOMING = Asset(name="mtl_incoming", uri=INCOMING_DIR.as_uri(), group="mtl")
STATE = PROJECT_DIR / ".mtl"


def _read_state(name: str) -> dict:
    path = STATE / name
    return json.loads(path.read_text()) if path.is_file() else {}


def _write_state(name: str, payload: dict) -> None:
    STATE.mkdir(exist_ok=True)
    tmp = STATE / f"{name}.tmp"
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    tmp.replace(STATE / name)


@task(outlets=[INCOMING])
def publish_new_files(*, outlet_events=None) -> dict:
    """Publish the incoming folder as updated when a data file is new or changed since the last
    publication. Write files under a temporary name (or a dot-name) and rename them when complete:
    those are not picked up half-written."""
    from airflow.exceptions import AirflowSkipException

    from mtl.orchestration import listing

    now = listing(INCOMING_DIR)
    published = _read_state("ingest.json").get("files", {})
    new = sorted(name for name, stat in now.items() if published.get(name) != stat)
    if not new:
        raise AirflowSkipException(f"nothing new in {INCOMING_DIR} ({len(now)} file(s) already published)")
    outlet_events[INCOMING].extra = {"new_files": new, "files": len(now)}
    _write_state("ingest.json", {"files": now})
    print(f"published {len(new)} new or changed file(s) of {INCOMING_DIR}: {new}")
    return {"new_files": new}


@dag(
    dag_id="mtl_ingest",
    schedule=RETRAINING.scan_schedule,
    catchup=False,
    max_active_runs=1,
    tags=["mtl", "ingest", "asset"],
    doc_md=f"Looks for new data files in `{INCOMING_DIR}` and publishes the folder as the Asset "
    f"`mtl_incoming`, which triggers `mtl_retraining`. Runs on `airflow.retraining.scan_schedule`.",
    default_args=default_args(AIRFLOW),
)
def mtl_ingest():
    publish_new_files()


def _retraining_conf() -> dict:
    """mtl_training's form values for a retraining run: the incoming files, the newest window."""
    source = RETRAINING.source
    folder = str(INCOMING_DIR)
    conf = {"window_days": RETRAINING.window_days}
    if source == "files":
        conf |= {"data_source": folder, "data_path": None}
    else:
        conf |= {"data_source": source, "data_path": folder}
    return conf


@task.short_circuit
def data_changed(**context) -> bool:
    """False (skip the rest: a no-op) when the incoming data and the retraining settings are the
    ones the last successful retraining used."""
    import hashlib

    from mtl.orchestration import content_fingerprint, data_files

    files = data_files(INCOMING_DIR)
    if not files:
        print(f"no data files in {INCOMING_DIR}: nothing to retrain on")
        return False
    settings = json.dumps(_retraining_conf(), sort_keys=True) + (PROJECT_DIR / "params.yaml").read_text()
    fingerprint = content_fingerprint(files, INCOMING_DIR) + "-" + hashlib.md5(settings.encode()).hexdigest()[:12]
    last = _read_state("retraining.json")
    if last.get("fingerprint") == fingerprint:
        print(f"same data and settings as the retraining of {last.get('run_id')}: nothing to do")
        return False
    context["ti"].xcom_push(key="fingerprint", value=fingerprint)
    print(f"{len(files)} file(s) in {INCOMING_DIR}, new since the last retraining: retraining")
    return True


@task
def record(**context) -> None:
    fingerprint = context["ti"].xcom_pull(task_ids="data_changed", key="fingerprint")
    _write_state("retraining.json", {"fingerprint": fingerprint, "run_id": context["run_id"],
                                     "conf": _retraining_conf()})


def _schedule():
    cron = RETRAINING.schedule
    if not cron:
        return [INCOMING]
    return AssetOrTimeSchedule(timetable=CronTriggerTimetable(cron, timezone="UTC"), assets=[INCOMING])


@dag(
    dag_id="mtl_retraining",
    schedule=_schedule(),
    catchup=False,
    max_active_runs=1,
    tags=["mtl", "retraining", "asset"],
    doc_md=f"Retrains on the newest `{RETRAINING.window_days}` days of the files in "
    f"`{INCOMING_DIR}`: on `{RETRAINING.schedule}` and whenever `mtl_ingest` publishes new files. "
    "Unchanged data is a no-op. The training itself is an `mtl_training` run (gated promotion included).",
    default_args=default_args(AIRFLOW),
)
def mtl_retraining():
    retrain = TriggerDagRunOperator(
        task_id="retrain",
        trigger_dag_id="mtl_training",
        trigger_run_id="retraining__{{ run_id }}",
        conf=_retraining_conf(),
        wait_for_completion=True,
        # deferred while the training runs: the wait sits in the triggerer, not in a worker slot
        deferrable=True,
        poke_interval=15,
        allowed_states=["success"],
        failed_states=["failed"],
        retries=0,  # a retry would start a second training run of the same data
    )
    chain(data_changed(), retrain, record())


mtl_ingest()
mtl_retraining()
