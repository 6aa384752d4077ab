"""The ``scoring`` and ``airflow`` sections: batch scoring and how the DAGs run the pipeline."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from mtl.config.base import Frozen, PositiveInt


class RetrainingConfig(Frozen):
    """The `mtl_retraining` DAG: when it runs and on what data (dags/mtl_retraining.py)."""

    # A cron expression or preset (@daily, @weekly); null: only when new files land.
    schedule: str | None = "@weekly"
    # Folder (relative to the project, or absolute) where new data files are dropped. The
    # `mtl_ingest` DAG publishes new files there as an Airflow Asset, which triggers retraining.
    incoming: str = "data/incoming"
    # How often `mtl_ingest` looks at the folder (cron or preset); null: only when triggered.
    scan_schedule: str | None = "*/10 * * * *"
    # The adapter that reads the incoming files (files | ali_ccp | aliexpress | census_income | m5).
    source: str = "files"
    # Retrain on the newest N days of data.schema.time across the incoming files (null: all rows,
    # e.g. for data without a time column).
    window_days: PositiveInt | None = 14


class ScoringConfig(Frozen):
    """Batch scoring with a registered model (`mtl score`, the `mtl_scoring` DAG; mtl/serving/)."""

    # A model URI (models:/name/3, models:/name@alias, runs:/...); null: the champion of gate.model_name.
    model: str | None = None
    # Rows read, scored and written at once: bounds memory whatever the input size.
    chunk_rows: PositiveInt = 200_000
    # Input columns copied beside the scores (keys to join them back); each must be in the input.
    keep: tuple[str, ...] = ()


class DailyScoringConfig(Frozen):
    """The `mtl_scoring` DAG (dags/mtl_scoring.py): each day's rows scored with the champion."""

    # A cron expression or preset; null: only when triggered (with a day in the form).
    schedule: str | None = "@daily"
    # The day's input and output, relative to the project or absolute; {day} is YYYY-MM-DD (the
    # day the run's data interval covers). The input is a parquet/CSV file or a folder of them;
    # without a suffix, {day}.parquet, {day}.csv and the folder {day} are looked for.
    input: Annotated[str, Field(min_length=1)] = "data/to_score/{day}"
    output: Annotated[str, Field(min_length=1)] = "data/07_scores/{day}.parquet"
    # How long a run waits for its day's input to appear before failing.
    wait_hours: Annotated[float, Field(ge=0)] = 6.0
    # Also score right after a new champion is promoted (mtl_training's `announce` task updates
    # the Asset mtl_champion), so the day's scores come from the new model without waiting.
    after_promotion: bool = False

    @field_validator("input", "output")
    @classmethod
    def _has_day(cls, value: str) -> str:
        if "{day}" not in value:
            raise ValueError(f"{value!r} has no {{day}}: each day needs its own file")
        return value


class NotifyConfig(Frozen):
    """Who hears about a failed run or a rejected candidate: an Airflow notifier from an installed
    provider (a BaseNotifier subclass), called with its task's context."""

    # "module:Class", e.g. airflow.providers.smtp.notifications.smtp:SmtpNotifier; null: nobody
    notifier: str | None = None
    args: dict[str, Any] = {}  # its keyword arguments (SmtpNotifier: to, from_email, subject...)
    events: tuple[Literal["failure", "rejection"], ...] = ("failure", "rejection")

    @field_validator("notifier")
    @classmethod
    def _module_and_class(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[\w.]+:\w+", value):
            raise ValueError(f"{value!r}: name the notifier as module:Class, e.g. "
                             f"airflow.providers.smtp.notifications.smtp:SmtpNotifier")
        return value


class AirflowConfig(Frozen):
    """How the Airflow DAGs run the pipeline (dags/). Read by the DAG files at parse time."""

    # Stop before promotion until a person approves in the Airflow UI (Required actions).
    approval: bool = False
    # Without an answer in this time the candidate is rejected (the champion stays).
    approval_timeout_hours: Annotated[float, Field(gt=0)] = 24.0
    # Retries of a failed task (never for validation: bad data does not get better), with
    # exponential backoff starting from retry_delay_seconds.
    retries: Annotated[int, Field(ge=0)] = 2
    retry_delay_seconds: Annotated[float, Field(ge=0)] = 30.0
    # Pool the training tasks run in when they will use a GPU (size it to the GPUs of a worker);
    # `make airflow` creates it with one slot.
    gpu_pool: str = "mtl_gpu"
    # Celery queue for GPU training work (only the CeleryExecutor routes by queue); null: default.
    # A deployment may override it with $MTL_GPU_QUEUE (docker-compose.yaml sets it from .env).
    gpu_queue: str | None = None
    # DVC remote that mtl_training pushes the run's outputs to once they are evaluated (raw data,
    # features, model: what dvc.lock records), so other clones and machines can `dvc pull` them;
    # null: no push. $MTL_DVC_REMOTE overrides it (the compose stack: its MinIO bucket).
    dvc_remote: str | None = None
    # Each mtl_training run works in a workspace of its own (.mtl/runs/RUN, mtl/workspaces.py):
    # this many run at once; a failed run's workspace is kept this long for debugging.
    max_active_runs: Annotated[int, Field(ge=1)] = 2
    keep_failed_hours: Annotated[float, Field(ge=0)] = 72.0
    retraining: RetrainingConfig = RetrainingConfig()
    scoring: DailyScoringConfig = DailyScoringConfig()
    notify: NotifyConfig = NotifyConfig()
