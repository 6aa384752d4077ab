"""`mtl_scoring`: each day's rows scored with the current champion (params.yaml airflow.scoring).

    wait_for_input (sensor, reschedule mode: the day's file may land late)
      -> score (the champion, pinned to its version for the whole file; output + manifest)

The day is the one the run's data interval covers, so the run a @daily schedule starts at
midnight scores the day that just ended; a manual run, or one a new champion started
(airflow.scoring.after_promotion), scores the day chosen in the form (default: yesterday). Scoring reads the registry and writes only its own output, never the DVC workspace,
so several days may score at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import Asset, AssetOrTimeSchedule, CronDataIntervalTimetable, Param, chain, dag, task

from mtl.orchestration import CHAMPION_ASSET, default_args, project_dir, read_config

PROJECT_DIR = project_dir(__file__)
CFG = read_config(PROJECT_DIR)  # the typed params.yaml, as every stage reads it
SCORING = CFG.airflow.scoring
INPUT, OUTPUT, SCHEDULE = SCORING.input, SCORING.output, SCORING.schedule
MODEL = CFG.scoring.model or f"models:/{CFG.gate.model_name}@champion"


def _day(context) -> str:
    from mtl.serving.daily import run_day

    return run_day(context["params"].get("day"), context.get("data_interval_start"))


@task.sensor(poke_interval=300, timeout=SCORING.wait_hours * 3600, mode="reschedule")
def wait_for_input(**context) -> bool:
    """Until the day's input exists (the sensor fails after airflow.scoring.wait_hours)."""
    from mtl.serving.daily import day_input

    day = _day(context)
    found = day_input(PROJECT_DIR, INPUT, day)
    print(f"{day}: input {found}" if found else f"{day}: no input yet at {INPUT.replace('{day}', day)}")
    return found is not None


@task
def score(**context) -> dict:
    """Score the day's rows with the model the registry holds now; the manifest names its version."""
    from mtl.config import load_config
    from mtl.paths import Paths
    from mtl.serving.batch import score as score_rows
    from mtl.serving.daily import day_input, day_output

    day = _day(context)
    source = day_input(PROJECT_DIR, INPUT, day)
    if source is None:  # gone since the sensor saw it
        raise FileNotFoundError(f"{day}: no input at {INPUT.replace('{day}', day)}")
    cfg = load_config(PROJECT_DIR / "params.yaml")
    result = score_rows(cfg, Paths.at(PROJECT_DIR), source, day_output(PROJECT_DIR, OUTPUT, day))
    print(result.describe())
    return {"day": day, "rows": result.rows, "model_uri": result.model_uri, "output": result.output}


def _schedule():
    """The day's schedule; with airflow.scoring.after_promotion, also each new champion (the
    Asset mtl_training's `announce` updates)."""
    clock = CronDataIntervalTimetable(SCHEDULE, timezone="UTC") if SCHEDULE else None
    if not SCORING.after_promotion:
        return clock
    champion = Asset(name=CHAMPION_ASSET.format(model=CFG.gate.model_name), group="mtl")
    return AssetOrTimeSchedule(timetable=clock, assets=[champion]) if clock else [champion]


@dag(
    dag_id="mtl_scoring",
    schedule=_schedule(),
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,  # `airflow backfill create` scores past days on demand
    max_active_runs=4,
    tags=["mtl", "scoring"],
    doc_md=f"Scores each day's rows at `{INPUT}` with `{MODEL}` into `{OUTPUT}` (and a `.json` manifest "
    "naming the model version). Trigger with a **day** to score that day again.",
    params={"day": Param(None, type=["null", "string"], format="date",
                         description="YYYY-MM-DD; empty: the run's data interval (scheduled) or yesterday")},
    default_args=default_args(CFG.airflow) | {"retry_delay": timedelta(minutes=5)},
)
def mtl_scoring():
    chain(wait_for_input(), score())


mtl_scoring()
