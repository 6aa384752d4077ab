"""The project's own folders that `mtl gc` prunes by age: quarantined batches, daily score files,
and the task history and logs of the project's DAGs in Airflow.

Only paths these settings name are looked at (validation.quarantine, airflow.scoring.output, the
Airflow home's logs of the project's DAG ids), and only names the pipeline writes there are
removed: a file someone else put beside them stays.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

from mtl.config import Config
from mtl.maintenance.plan import Item, describe_age, folder_bytes
from mtl.maintenance.policy import DAY, DAY_GLOB, day_of, day_start, quarantined_at, stale
from mtl.paths import Paths

# The DAGs this project ships (dags/*.py); Airflow history of any other DAG is not ours to clean.
DAG_IDS = ("mtl_training", "mtl_retraining", "mtl_ingest", "mtl_scoring", "mtl_maintenance")


def _leftovers(folder: Path, store: str) -> list[Item]:
    """Folders an interrupted gc renamed aside (.gc-NAME) and did not finish removing."""
    return [Item(store, "remove_path", (str(p),), folder_bytes(p), f"{p} (an interrupted gc's)")
            for p in sorted(folder.glob(".gc-*"))] if folder.is_dir() else []


def quarantine(cfg: Config, paths: Paths, now: float) -> list[Item]:
    base = paths.resolve(cfg.validation.quarantine)
    if not base.is_dir():
        return []
    items = [Item("quarantine", "remove_path", (str(p),), folder_bytes(p), f"{p.name} ({describe_age(t, now)})")
             for p in sorted(base.iterdir())
             if (t := quarantined_at(p.name)) is not None and stale(t, cfg.retention.quarantine_days, now)]
    return items + _leftovers(base, "quarantine")


def scores(cfg: Config, paths: Paths, now: float) -> list[Item]:
    """Score files (and their .json manifests) of days more than retention.score_days ago."""
    pattern = cfg.airflow.scoring.output
    root = Path(pattern) if Path(pattern).is_absolute() else paths.home
    rel = str(Path(pattern).relative_to(root)) if Path(pattern).is_absolute() else pattern
    items = []
    for glob in (rel.replace("{day}", DAY_GLOB), rel.replace("{day}", DAY_GLOB) + ".json"):
        for p in sorted(root.glob(glob)):
            day = day_of(rel, str(p.relative_to(root)))
            # a day's scores expire once the whole day is score_days behind
            if day and stale(day_start(day) + DAY, cfg.retention.score_days, now):
                items.append(Item("scores", "remove_path", (str(p),), folder_bytes(p), f"{p.relative_to(root)} ({day})"))
    return items


def workspaces(cfg: Config, paths: Paths, now: float) -> list[Item]:
    """Workspaces of failed mtl_training runs kept past airflow.keep_failed_hours (the training
    DAG sweeps them too, when it starts a run)."""
    from mtl import workspaces as ws

    return [Item("workspaces", "remove_path", (str(p),), folder_bytes(p), f"{p.name} (a failed run's workspace)")
            for p in ws.expired(paths.home, cfg.airflow.keep_failed_hours, now)]


def airflow_home(paths: Paths) -> Path | None:
    """The Airflow this project runs under: $AIRFLOW_HOME (a DAG task, or the user's choice), else
    the project's own (`make airflow`: .airflow); None when there is neither."""
    if os.environ.get("AIRFLOW_HOME"):
        return Path(os.environ["AIRFLOW_HOME"])
    own = paths.home / ".airflow"
    return own if (own / "airflow.cfg").is_file() else None


def airflow(cfg: Config, paths: Paths, now: float) -> list[Item]:
    """Task logs of the project's DAGs older than retention.airflow_days, and one item for the
    metadata rows `airflow db clean` removes (counted by Airflow itself, not here)."""
    home = airflow_home(paths)
    if home is None:
        return []
    items = []
    for dag in DAG_IDS:
        for run in sorted((home / "logs" / f"dag_id={dag}").glob("run_id=*")):
            if stale(run.stat().st_mtime, cfg.retention.airflow_days, now):
                items.append(Item("airflow", "remove_path", (str(run),), folder_bytes(run), f"logs {dag} {run.name[7:]}"))
    if shutil.which("airflow", path=str(Path(sys.executable).parent)) or shutil.which("airflow"):
        before = dt.datetime.fromtimestamp(now - cfg.retention.airflow_days * DAY, dt.timezone.utc)
        items.append(Item("airflow", "airflow_db_clean", (str(home), before.isoformat()), None,
                          f"`airflow db clean` of {', '.join(DAG_IDS)}: task history before {before:%Y-%m-%d %H:%M} UTC"))
    return items


# The run history `airflow db clean` purges. Not `dag` or `dag_version`: those are the DAGs'
# definitions, not their history, and a `dag` row not parsed since the date is still referenced
# by its task instances (PostgreSQL refuses the delete: the team-stack test ran into it).
HISTORY_TABLES = ("dag_run", "task_instance", "task_instance_history", "task_reschedule", "xcom", "log", "job")


def airflow_db_clean(home: str, before: str, dry_run: bool = False) -> str:
    """Airflow's own purge of the metadata rows of the project's DAGs' runs before ``before``."""
    exe = Path(sys.executable).parent / "airflow"
    cmd = [str(exe) if exe.is_file() else "airflow", "db", "clean", "--clean-before-timestamp", before,
           "--dag-ids", ",".join(DAG_IDS), "--tables", ",".join(HISTORY_TABLES), "--skip-archive", "--yes",
           *(["--dry-run"] if dry_run else [])]
    out = subprocess.run(cmd, env=dict(os.environ, AIRFLOW_HOME=home), capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed (exit {out.returncode}):\n{out.stderr[-2000:]}")
    return out.stdout
